"""Fair turns: jobs wait in the job store, and are released to Celery one free worker slot
at a time, to the owner with the fewest running jobs (docs/capacity.md says why).

Per queue, in Redis (key names in shared/runtime/redis_db.py, `Keys.sched` and `Keys.waiting`):

- `waiting:<owner>`, a sorted set of the owner's jobs waiting for a worker, scored by turn
  number (a global counter: the order jobs were queued in);
- `owners`, a sorted set of the owners with waiting jobs, scored by their oldest one;
- `released`, a hash of the jobs that hold a slot (job id -> owner): a message was sent
  for them, or they run; `running`, owner -> how many of those are the owner's;
- `served`, owner -> the turn number of the owner's last release;
- `workers` (worker -> last heartbeat, ms) and `slots` (worker -> its concurrency): what
  the queue can run at once.

A release takes, while the live workers' slots outnumber the released jobs, the owner
with the fewest released jobs under TEXTGEN_MAX_RUNNING_PER_OWNER; among equals the one
served least recently (never: first), then the one whose oldest job is oldest; and
releases that owner's oldest job. One Lua script does it, so two dispatchers at once
never release more than the free slots or one job twice.

The scripts name keys they build from an owner or a job id (ARGV), not only KEYS: Redis
allows that on one node, which textgen needs anyway (Celery's Redis transport does not
run on Redis Cluster).
"""

import json

from shared.runtime.queue import QUEUES

# A worker whose heartbeat is older than this has no slots (shared/runtime/metrics.py counts live
# workers with the same horizon).
WORKER_SEEN_MS = 60_000
# Jobs one call releases at most: bounds the time a script holds Redis (a release reads
# each waiting owner's counts, ~1 us an owner) when many workers join at once.
RELEASE_BUDGET = 100

# Functions the scripts below share. `cfg` names one queue's keys and its limits (see
# Scheduler.config); statuses are stored JSON-encoded ('"queued"').
LIBRARY = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function set_head(cfg, owner)
  local head = redis.call('ZRANGE', cfg.waiting .. owner, 0, 0, 'WITHSCORES')
  if #head == 0 then redis.call('ZREM', cfg.owners, owner)
  else redis.call('ZADD', cfg.owners, head[2], owner) end
end

local function take_slot(cfg, job_id, owner)
  redis.call('HSET', cfg.released, job_id, owner)
  redis.call('HINCRBY', cfg.running, owner, 1)
  redis.call('HSET', cfg.served, owner, redis.call('INCR', cfg.seq))
end

local function capacity(cfg, now)
  local total = 0
  for _, name in ipairs(redis.call('ZRANGEBYSCORE', cfg.workers, now - cfg.seen_ms, '+inf')) do
    total = total + (tonumber(redis.call('HGET', cfg.slots, name)) or 0)
  end
  return total
end

local function dispatch(cfg, budget)
  local now = now_ms()
  local free = capacity(cfg, now) - redis.call('HLEN', cfg.released)
  local released = {}
  while free > 0 and #released < budget do
    local best, best_running, best_served
    for _, owner in ipairs(redis.call('ZRANGE', cfg.owners, 0, -1)) do
      local running = tonumber(redis.call('HGET', cfg.running, owner)) or 0
      local served = tonumber(redis.call('HGET', cfg.served, owner)) or 0
      if running < cfg.max_running and (best == nil or running < best_running
          or (running == best_running and served < best_served)) then
        best, best_running, best_served = owner, running, served
      end
    end
    if best == nil then break end
    local job_id = redis.call('ZPOPMIN', cfg.waiting .. best)[1]
    set_head(cfg, best)
    local job_key = job_id and cfg.job[1] .. job_id .. cfg.job[2]
    -- A job cancelled while it waited leaves here if its own step did not take it out.
    if job_id and redis.call('HGET', job_key, 'status') == '"queued"' then
      take_slot(cfg, job_id, best)
      -- When its message was sent: the reaper resends one that is lost (worker/reaper.py).
      redis.call('HSET', job_key, 'enqueued_ms', tostring(now))
      released[#released + 1] = job_id
      free = free - 1
    end
  end
  return released
end
"""

# ARGV: cfg, budget. Returns the ids released, to be sent to Celery by the caller.
_DISPATCH_LUA = LIBRARY + """
return dispatch(cjson.decode(ARGV[1]), tonumber(ARGV[2]))
"""

# ARGV: cfg, job id, owner, the owner's active set. A job that ended leaves the waiting set
# or frees its slot (1 when it freed one).
_FORGET_LUA = LIBRARY + """
local cfg, job_id, owner = cjson.decode(ARGV[1]), ARGV[2], ARGV[3]
redis.call('SREM', ARGV[4], job_id)
local holder = redis.call('HGET', cfg.released, job_id)
if holder then
  redis.call('HDEL', cfg.released, job_id)
  if redis.call('HINCRBY', cfg.running, holder, -1) <= 0 then
    redis.call('HDEL', cfg.running, holder)
  end
  return 1
end
if redis.call('ZREM', cfg.waiting .. owner, job_id) == 1 then set_head(cfg, owner) end
return 0
"""

# ARGV: cfg, job id, owner. A job that started without being released (a message sent
# by hand, or from before this scheduler) takes a slot, so that it counts and its lease
# is watched. 1 when it took one.
_CLAIM_LUA = LIBRARY + """
local cfg, job_id, owner = cjson.decode(ARGV[1]), ARGV[2], ARGV[3]
if redis.call('HEXISTS', cfg.released, job_id) == 1 then return 0 end
if redis.call('ZREM', cfg.waiting .. owner, job_id) == 1 then set_head(cfg, owner) end
take_slot(cfg, job_id, owner)
return 1
"""

# ARGV: cfg, worker name, its concurrency (0: it is leaving). Heartbeat of one worker of
# the queue, by Redis' clock; workers not heard of for cfg.seen_ms leave.
_WORKER_LUA = LIBRARY + """
local cfg, name, slots = cjson.decode(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local now = now_ms()
if slots > 0 then
  redis.call('ZADD', cfg.workers, now, name)
  redis.call('HSET', cfg.slots, name, slots)
else
  redis.call('ZREM', cfg.workers, name)
  redis.call('HDEL', cfg.slots, name)
end
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', cfg.workers, '-inf', now - cfg.seen_ms)) do
  redis.call('ZREM', cfg.workers, gone)
  redis.call('HDEL', cfg.slots, gone)
end
"""


class Scheduler:
    def __init__(self, redis_client, keys, max_running_per_owner):
        self.redis = redis_client
        self.keys = keys
        self.max_running_per_owner = max_running_per_owner
        self._dispatch = redis_client.register_script(_DISPATCH_LUA)
        self._forget = redis_client.register_script(_FORGET_LUA)
        self._claim = redis_client.register_script(_CLAIM_LUA)
        self._worker = redis_client.register_script(_WORKER_LUA)

    def config(self, queue):
        """One queue's keys and limits, as the scripts take them (`cfg`)."""
        sched = self.keys.sched
        before, after = self.keys.job("\0").split("\0")
        return {
            "owners": sched(queue, "owners"), "released": sched(queue, "released"),
            "running": sched(queue, "running"), "served": sched(queue, "served"),
            "workers": sched(queue, "workers"), "slots": sched(queue, "slots"),
            "waiting": self.keys.waiting(queue, ""), "seq": self.keys.sched_seq(),
            "job": [before, after], "max_running": self.max_running_per_owner,
            "seen_ms": WORKER_SEEN_MS}

    def dispatch(self, queue):
        """Release waiting jobs of `queue` to its free slots; the ids to send now."""
        return self._dispatch(args=[json.dumps(self.config(queue)), RELEASE_BUDGET])

    def forget(self, job_id, owner, queue):
        """The job ended: out of its waiting set, or its slot freed (True)."""
        return bool(self._forget(args=[json.dumps(self.config(queue)), job_id, owner,
                                       self.keys.owner_active(owner)]))

    def claim(self, job_id, owner, queue):
        """The job started: it holds a slot, released or not (True when it took one now)."""
        return bool(self._claim(args=[json.dumps(self.config(queue)), job_id, owner]))

    def worker_seen(self, name, queues, concurrency):
        """Heartbeat: the worker `name` runs `concurrency` jobs at once from `queues`
        (0: it is stopping, its slots go at once)."""
        pipe = self.redis.pipeline()
        for queue in queues:
            if queue in QUEUES:
                self._worker(args=[json.dumps(self.config(queue)), name, concurrency], client=pipe)
        pipe.execute()

    def released(self, queue):
        """{job id: owner} of the jobs holding a slot of `queue`: sent or running."""
        return self.redis.hgetall(self.keys.sched(queue, "released"))

    def counts_of(self, owner):
        """(the owner's jobs waiting for their turn, the owner's jobs holding a slot), over
        every queue: what TEXTGEN_MAX_QUEUED_JOBS and TEXTGEN_MAX_RUNNING_PER_OWNER count."""
        pipe = self.redis.pipeline()
        for queue in QUEUES:
            pipe.zcard(self.keys.waiting(queue, owner))
            pipe.hget(self.keys.sched(queue, "running"), owner)
        counts = pipe.execute()
        return sum(counts[0::2]), sum(int(n or 0) for n in counts[1::2])

    def waiting_counts(self, queue):
        """{owner: jobs waiting for a worker of `queue`}."""
        owners = self.redis.zrange(self.keys.sched(queue, "owners"), 0, -1)
        pipe = self.redis.pipeline()
        for owner in owners:
            pipe.zcard(self.keys.waiting(queue, owner))
        return dict(zip(owners, pipe.execute()))
