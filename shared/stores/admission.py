"""Admitting a new job: the owner's quota, the record, its indexes, its first event, its
place in its queue, a training job's storage reservation and the Idempotency-Key's
answer, written in one atomic step.

One step, so that the quotas never count a job whose record was never written, a request
whose answer is lost after this step is replayed (never run again), and a submission
costs one round trip to Redis. The same step releases jobs to the queue's free worker
slots (shared/stores/scheduler.py), so an idle service starts a new job without waiting for a
reaper pass.
"""

import json

from shared.contracts.errors import TooManyQueuedJobsError
from shared.stores import scheduler, storage_quota

# KEYS[1]: the job hash; [2] its event stream; [3] the owner's job index; [4] the owner's
# active set; [5] the set of all owners; [6] the Idempotency-Key (or the job hash again);
# [7, 8, 9] the owner's storage items, used and reserved (shared/stores/storage_quota.py;
# the job hash again without a reservation); [10...] records the job needs (its model,
# its corpus), which must exist.
# ARGV[1]: JSON {job_id, owner, fields: {name: JSON text}, score (text), event: [type,
# time, data], max_events, queued: [the owner's waiting sets, every queue], max_queued,
# sched: the queue's cfg, budget, answer: {pending, value, ttl_s} or null, reserve:
# {size, limit} (bytes) or null}.
# The answer is written only over the request's own pending marker; with no marker
# (pending null) only while the key is free, which claims it.
# Returns {-2} when the key is held by another request, {-1, n} when the nth needed
# record is gone, {-3, used, reserved} when the reservation does not fit the storage
# quota, {0} over the queued-jobs quota, else {1, ids released now...}.
_ADMIT_LUA = scheduler.LIBRARY + storage_quota.LIBRARY + """
local op = cjson.decode(ARGV[1])
local answer = op.answer
if answer ~= cjson.null then
  local held = redis.call('GET', KEYS[6])
  if answer.pending == cjson.null then
    if held then return {-2} end
  elseif held ~= answer.pending then
    answer = cjson.null  -- our marker expired, and another request may hold the key now
  end
end
for i = 10, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then return {-1, i - 9} end
end
local reserve = op.reserve
if reserve ~= cjson.null then
  local used = tonumber(redis.call('GET', KEYS[8]) or '0')
  local reserved = storage_reserved(KEYS[7], KEYS[9], KEYS[4])
  if used + reserved + reserve.size > reserve.limit then return {-3, used, reserved} end
end
local queued = 0
for _, key in ipairs(op.queued) do queued = queued + redis.call('ZCARD', key) end
if queued >= op.max_queued then return {0} end
-- The record is the first write: should it fail, nothing else was written (Redis does not
-- roll a script back, it stops it).
local fields = {}
for name, value in pairs(op.fields) do
  fields[#fields + 1] = name
  fields[#fields + 1] = value
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('XADD', KEYS[2], 'MAXLEN', '~', op.max_events, '*', 'type', op.event[1],
           'time', op.event[2], 'data', op.event[3])
redis.call('ZADD', KEYS[3], op.score, op.job_id)
redis.call('SADD', KEYS[4], op.job_id)
redis.call('SADD', KEYS[5], op.owner)
if reserve ~= cjson.null then redis.call('HSET', KEYS[9], op.job_id, reserve.size) end
local cfg = op.sched
local turn = redis.call('INCR', cfg.seq)
redis.call('ZADD', cfg.waiting .. op.owner, turn, op.job_id)
redis.call('ZADD', cfg.owners, 'NX', turn, op.owner)  -- an older waiting job stays the head
if answer ~= cjson.null then
  redis.call('SET', KEYS[6], answer.value, 'EX', answer.ttl_s)
end
local result = {1}
for _, job_id in ipairs(dispatch(cfg, op.budget)) do result[#result + 1] = job_id end
return result
"""



class IdempotencyKeyTakenError(Exception):
    """Raised when a submission would claim its Idempotency-Key (no pending marker of its
    own) and another request holds it: nothing was stored; api/idempotency.py answers
    it as that key's holder decides."""


# How long an owner over the quota is told to wait before trying again, in seconds: about
# one short job's length; a client polls its jobs meanwhile.
RETRY_AFTER_S = 30


class Admission:
    def __init__(self, redis_client, keys, scheduler, queues):
        self.keys = keys
        self.scheduler = scheduler
        self.queues = queues
        self._admit = redis_client.register_script(_ADMIT_LUA)

    def admit(self, record, fields, event, queue, *, score, max_events, max_queued,
              answer=None, release=True, required=(), reservation=None):
        """Store `record` (its `fields` encoded) with its first `event` ((type, time,
        data)) and queue it on `queue`; return the ids released to a worker now, for the
        caller to send (none unless `release`). `answer`: {key, pending, value, ttl_s}.
        `required`: (key, error) of each record the job needs; the error is raised, and
        nothing stored, when its key is gone (shared/stores/records.py `required`).
        `reservation`: a training job's storage_quota.Reservation, taken with the job or
        refused (its error raised, nothing stored)."""
        job_id, owner = record["id"], record["owner"]
        op = {"job_id": job_id, "owner": owner, "fields": fields, "score": str(score),
              "event": list(event), "max_events": max_events, "max_queued": max_queued,
              "queued": [self.keys.waiting(q, owner) for q in self.queues],
              "sched": self.scheduler.config(queue),
              "budget": scheduler.RELEASE_BUDGET if release else 0,
              "answer": answer and {k: answer[k] for k in ("pending", "value", "ttl_s")},
              "reserve": reservation and {"size": reservation.size,
                                          "limit": reservation.limit_bytes}}
        keys = [self.keys.job(job_id), self.keys.events(job_id),
                self.keys.owner_index(owner, "jobs"), self.keys.owner_active(owner),
                self.keys.owners(), answer["key"] if answer else self.keys.job(job_id),
                *(reservation.keys if reservation else [self.keys.job(job_id)] * 3),
                *(key for key, _ in required)]
        admitted, *released = self._admit(keys=keys, args=[json.dumps(op)])
        if admitted == -2:
            raise IdempotencyKeyTakenError(answer["key"])
        if admitted == -1:
            raise required[released[0] - 1][1]
        if admitted == -3:
            raise reservation.refusal(*released)
        if not admitted:
            raise TooManyQueuedJobsError(
                f"{owner} already has {max_queued} jobs waiting for a worker "
                "(TEXTGEN_MAX_QUEUED_JOBS); wait for some to start or cancel some",
                headers={"Retry-After": str(RETRY_AFTER_S)})
        return released
