"""The job store: job records in Redis and their atomic, fenced status transitions.

A job is one Redis hash (fields JSON-encoded, see shared/runtime/redis_db.py) with an event stream
beside it, listed from its owner's index. Status moves

    queued -> running -> succeeded | failed | cancelled
    queued -> cancelled
    running -> queued          only when its lease expired (the next attempt)

and terminal states are final. Every write after creation goes through one Lua script
(_TRANSITION_LUA) that checks the status and, for a runner, its attempt, and writes in the
same atomic step: a late, duplicate or superseded runner can never write anything.

A running job holds a lease (`lease_expires_ms`, Redis server time, so hosts' clocks do not
matter) that its worker renews; `reap()` hands a job whose lease expired to the next
attempt, or fails it once TEXTGEN_MAX_ATTEMPTS are spent. A released job that no worker
started long after its message was sent is presumed to have lost it: `claim_resend()`
tells from the record alone, without reading the broker.
"""

import enum
import json
from typing import NamedTuple

from shared.stores.admission import Admission
from shared.runtime.clock import is_id, new_id, utc_now_iso
from shared.contracts.errors import ConflictError, NotFoundError
from shared.runtime.json_values import finite_json
from shared.stores.pages import creation_score, newest_first
from shared.runtime.queue import QUEUES, queue_of
from shared.runtime.redis_db import decode_fields, encode_fields


class Applied(NamedTuple):
    written: bool  # the transition was allowed and made
    status: "JobStatus"  # the job's status after it
    appended: bool  # its event went into the stream (an epoch reported before does not)


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self):
        return self in TERMINAL


TERMINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


class JobType(str, enum.Enum):
    TRAIN = "train"
    GENERATE = "generate"
    EVALUATE = "evaluate"  # scores models on a text (contracts/evaluations.py); generate queue


class StoppedReason(str, enum.Enum):
    """Why a training job stopped: what `stopped_reason` says on a finished job."""

    EPOCHS_DONE = "epochs_done"  # every epoch asked for ran
    TIME_LIMIT = "time_limit"  # training.max_seconds was spent
    EARLY_STOPPING = "early_stopping"  # val_loss stopped improving for `patience` epochs
    CANCELLED = "cancelled"  # a user cancelled it
    PRUNED = "pruned"  # a sweep's pruner stopped the trial at a rung (shared/sweep_study)


ATTEMPTS_EXHAUSTED = "attempts_exhausted"  # error.code of a job whose every attempt died
STALLED = "stalled"  # error.code of a job whose last attempt got stuck in a step (worker/stall)

# KEYS[1]: the job hash; KEYS[2]: its event stream; KEYS[3]: a record to write with it (a
# model), or the job hash again. ARGV[1]: JSON {allowed: [statuses], attempt: n or null,
# fields: {name: JSON text}, lease_ms: n or null, record: {name: JSON text} or null,
# event: [type, JSON text] or null, epoch: n or null, cap: n or null, time: ISO text,
# max_events: n}. With `cap`, the event is appended only while the job has appended fewer
# than `cap` capped events (`capped_events` counts them).
# `epoch` marks an epoch_end event, written at most once per epoch over all attempts (a
# resumed attempt redoes the epoch its predecessor died in, and reports it only if that
# one had not). Returns {1, status} when written, {0, status} when refused, {-1, ''} when
# the job does not exist. Statuses are stored JSON-encoded ('"queued"').
_TRANSITION_LUA = """
local raw = redis.call('HGET', KEYS[1], 'status')
if not raw then return {-1, ''} end
local status = cjson.decode(raw)
local op = cjson.decode(ARGV[1])
local ok = false
for _, s in ipairs(op.allowed) do if s == status then ok = true end end
if ok and op.attempt ~= cjson.null then
  ok = tonumber(cjson.decode(redis.call('HGET', KEYS[1], 'attempt'))) == op.attempt
end
if not ok then return {0, status} end
for k, v in pairs(op.fields) do redis.call('HSET', KEYS[1], k, v) end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if op.lease_ms ~= cjson.null then
  redis.call('HSET', KEYS[1], 'lease_expires_ms', tostring(now_ms + op.lease_ms),
             'heard_ms', tostring(now_ms))
end
if op.record ~= cjson.null then
  for k, v in pairs(op.record) do redis.call('HSET', KEYS[3], k, v) end
end
local emit = op.event ~= cjson.null
if emit and op.epoch ~= cjson.null then
  local last = tonumber(redis.call('HGET', KEYS[1], 'last_epoch_event') or '0')
  emit = op.epoch > last
  if emit then redis.call('HSET', KEYS[1], 'last_epoch_event', tostring(op.epoch)) end
end
if emit and op.cap ~= cjson.null then
  emit = redis.call('HINCRBY', KEYS[1], 'capped_events', 1) <= op.cap
end
if emit then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', op.max_events, '*',
             'type', op.event[1], 'time', op.time, 'data', op.event[2])
end
local new = redis.call('HGET', KEYS[1], 'status')
return {1, cjson.decode(new), emit and 1 or 0}
"""

# KEYS[1]: the job hash; KEYS[2]: its stream. ARGV: max attempts, time now (ISO), max events,
# and, when an attempt gives itself up (a stuck step), JSON {attempt, code, message}. A
# running job whose lease expired, or that the running attempt gives up, goes back to
# queued as the next attempt, or fails once its attempts are spent: with the code of the
# last attempt's end (`stalled`), else attempts_exhausted. Returns 'requeued', 'exhausted'
# or '' (lease alive, not running, or given up by an attempt that is not the current one).
_REAP_LUA = """
local raw = redis.call('HGET', KEYS[1], 'status')
if not raw or cjson.decode(raw) ~= 'running' then return '' end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local attempt = tonumber(cjson.decode(redis.call('HGET', KEYS[1], 'attempt')))
local given = ARGV[4] and cjson.decode(ARGV[4])
if given then
  if given.attempt ~= attempt then return '' end
else
  local expires = tonumber(redis.call('HGET', KEYS[1], 'lease_expires_ms') or '0')
  if expires > now_ms then return '' end
end
local max_attempts = tonumber(ARGV[1])
-- Why the attempt ended, in the event that starts the next one.
local reason = {code = 'lease_expired',
                message = 'the worker of attempt ' .. attempt .. ' stopped answering'}
if given then reason = {code = given.code, message = given.message} end
-- The lost attempt joins `attempts` (ended attempts, oldest first), so that a client can
-- show each attempt's time, not only the last one's (started_at is the last start). A
-- silent one ended when its worker was last heard from (heard_ms: its last renewal).
local attempts = cjson.decode(redis.call('HGET', KEYS[1], 'attempts') or '[]')
attempts[#attempts + 1] = {attempt = attempt, outcome = 'lost', reason = reason.message,
  ended_at = ARGV[2],
  heard_ms = (not given) and tonumber(redis.call('HGET', KEYS[1], 'heard_ms') or '0') or nil,
  worker = cjson.decode(redis.call('HGET', KEYS[1], 'worker') or 'null'),
  started_at = cjson.decode(redis.call('HGET', KEYS[1], 'started_at') or 'null')}
redis.call('HSET', KEYS[1], 'attempts', cjson.encode(attempts))
local data
if attempt >= max_attempts then
  local err = {code = 'attempts_exhausted', message = 'the job was started ' .. attempt ..
    ' times and its worker stopped answering each time (TEXTGEN_MAX_ATTEMPTS is ' ..
    max_attempts .. '); it may be crashing its worker'}
  if given then
    err = {code = given.code, message = 'the job was started ' .. attempt ..
      ' times (TEXTGEN_MAX_ATTEMPTS is ' .. max_attempts .. ') and the last attempt ended: ' ..
      given.message}
  end
  redis.call('HSET', KEYS[1], 'status', cjson.encode('failed'), 'error', cjson.encode(err),
             'finished_at', cjson.encode(ARGV[2]), 'lease_expires_ms', '0')
  data = cjson.encode({status = 'failed', error = err})
else
  redis.call('HSET', KEYS[1], 'status', cjson.encode('queued'),
             'attempt', cjson.encode(attempt + 1), 'worker', cjson.encode(nil),
             'lease_expires_ms', '0', 'enqueued_ms', tostring(now_ms))
  data = cjson.encode({status = 'queued', attempt = attempt + 1, reason = reason.message,
                       code = reason.code})
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'type', 'status', 'time', ARGV[2],
           'data', data)
if attempt >= max_attempts then return 'exhausted' end
return 'requeued'
"""

# KEYS[1]: a released job's hash. ARGV: lost_after_ms, max_wait_ms. Its message is presumed
# lost while the job is still queued (no worker started it) lost_after_ms after it was
# sent; each message sent again then waits as long as the job has waited since its
# release (the waits double), max_wait_ms at most. `enqueued_ms` is when it was released
# (shared/stores/scheduler.py) or queued for its next attempt (above): a `resent_ms` older than
# that is an earlier release's. Redis' clock for both. Returns 1 when the caller is to
# send it again (noted in resent_ms), else 0.
_RESEND_LUA = """
local raw = redis.call('HGET', KEYS[1], 'status')
if not raw or cjson.decode(raw) ~= 'queued' then return 0 end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local released = tonumber(redis.call('HGET', KEYS[1], 'enqueued_ms') or '0')
local last = math.max(released, tonumber(redis.call('HGET', KEYS[1], 'resent_ms') or '0'))
local wait = math.max(tonumber(ARGV[1]), math.min(last - released, tonumber(ARGV[2])))
if now_ms - last < wait then return 0 end
redis.call('HSET', KEYS[1], 'resent_ms', tostring(now_ms))
return 1
"""

# Events kept per job; a few per epoch, so this is thousands of epochs. Approximate (~)
# trimming lets Redis cut whole stream nodes, which is cheap.
MAX_EVENTS = 10_000
# Streamed events a job may append over all its attempts: a generation's text (ten a second
# at most, worker/text_stream.py; past the cap only each batch's last one goes in) or a
# training's progress (twice a second at most, worker/runs.py; past the cap, ~40 minutes
# in, the record alone has it). Half the stream, so that they can never trim away the
# status events a client waits for.
STREAMED_EVENT_CAP = MAX_EVENTS // 2

_EMPTY_PROGRESS = {"epoch": 0, "epochs": None, "step": 0, "steps": None, "fraction": 0.0,
                   "eta_seconds": None}


class JobStore:
    def __init__(self, redis_client, keys, scheduler):
        self.redis = redis_client
        self.keys = keys
        self.scheduler = scheduler  # shared/stores/scheduler.py: when a queued job may start
        self._transition = redis_client.register_script(_TRANSITION_LUA)
        self._reap = redis_client.register_script(_REAP_LUA)
        self._resend = redis_client.register_script(_RESEND_LUA)
        self._admission = Admission(redis_client, keys, scheduler, QUEUES)

    # --- creating and reading ---------------------------------------------------------

    def new_record(self, job_type, spec, owner, **lineage):
        """A new queued job of `owner`, not stored yet (admit stores it); `lineage` holds
        corpus_id, model_id, init_from_model."""
        return {
            "id": new_id("job"),
            "type": JobType(job_type).value,
            "status": JobStatus.QUEUED.value,
            "owner": owner,
            "spec": spec,
            **lineage,
            "created_at": utc_now_iso(),
            "started_at": None,
            "finished_at": None,
            "attempt": 1,
            "worker": None,
            "progress": dict(_EMPTY_PROGRESS),
            "metrics": {},
            "result": None,
            "error": None,
            "stopped_reason": None,
            "enqueued_ms": 0,  # set when it is released to a worker (shared/stores/scheduler.py)
        }

    def admit(self, record, *, max_queued, answer=None, release=True, required=(),
              reservation=None):
        """Store the new job `record` and queue it for its turn, in one step with the
        owner's quota (TooManyQueuedJobsError with `max_queued` jobs waiting already), the
        records it needs (`required`: (key, error) pairs; the error when one is gone), a
        training job's storage `reservation` (StorageQuotaError when it does not fit) and
        the Idempotency-Key's `answer` (api/idempotency.py). Returns the ids of the jobs
        released to a worker now, which the caller sends (shared/runtime/queue.py `send`); none
        without `release`, and then the next reaper pass releases them."""
        event_type, data = _status_event(JobStatus.QUEUED)
        return self._admission.admit(
            record, encode_fields(record), (event_type, record["created_at"], json.dumps(data)),
            queue_of(record), score=creation_score(), max_events=MAX_EVENTS,
            max_queued=max_queued, answer=answer, release=release, required=required,
            reservation=reservation)

    def create(self, job_type, spec, owner, *, max_queued, **lineage):
        """Store a new queued job and return it; it waits for a reaper pass to release it."""
        record = self.new_record(job_type, spec, owner, **lineage)
        self.admit(record, max_queued=max_queued, release=False)
        return record

    def get(self, job_id, owner=None):
        """The job; NotFoundError if there is none, or (with `owner`) it is another's."""
        raw = self.redis.hgetall(self.keys.job(job_id)) if is_id(job_id, "job") else {}
        record = decode_fields(raw) if raw else None
        if record is None or (owner is not None and record.get("owner") != owner):
            raise NotFoundError(f"no job with id {job_id!r}")
        return record

    def get_many(self, job_ids):
        pipe = self.redis.pipeline()
        for job_id in job_ids:
            pipe.hgetall(self.keys.job(job_id))
        return [decode_fields(raw) if raw else None for raw in pipe.execute()]

    def page(self, owner, *, after=None, limit=50, status=None, job_type=None):
        """The owner's jobs, newest first, optionally of one status and type."""
        def keep(job):
            return ((status is None or job["status"] == status)
                    and (job_type is None or job["type"] == job_type))
        filtered = status is not None or job_type is not None
        return newest_first(self.redis, self.keys.owner_index(owner, "jobs"), self.get_many,
                            after=after, limit=limit, keep=keep if filtered else None)

    def active_of(self, owner):
        """The owner's queued and running jobs."""
        ids = sorted(self.redis.smembers(self.keys.owner_active(owner)))
        return [job for job in self.get_many(ids)
                if job is not None and not JobStatus(job["status"]).is_terminal]

    def active_using(self, owner, record_id):
        """Ids of the owner's queued and running jobs that use the corpus or model
        `record_id` (a corpus to train on, a model to sample, continue or evaluate)."""
        return [job["id"] for job in self.active_of(owner)
                if record_id in (job.get("corpus_id"), job.get("model_id"),
                                 job.get("init_from_model"), *job.get("model_ids", ()))]

    def events(self, job_id, after="0", limit=100):
        """(events, cursor): up to `limit` events after the cursor `after`, oldest first.

        Pass the returned cursor back to get what came since; it stays put when there is
        nothing new. An event is {id, type, time, data}.
        """
        return read_events(self.redis, self.keys.events(job_id), after, limit)

    def last_event_id(self, job_id):
        """The id of the job's newest event, or "0" when it has none: a cursor past every
        event, for a reader that waits for the next and needs none of their data."""
        newest = self.redis.xrevrange(self.keys.events(job_id), count=1)
        return newest[0][0] if newest else "0"

    def delete(self, job):
        """Remove a finished job's record, events and index entries."""
        pipe = self.redis.pipeline()
        pipe.delete(self.keys.job(job["id"]), self.keys.events(job["id"]))
        pipe.zrem(self.keys.owner_index(job["owner"], "jobs"), job["id"])
        pipe.execute()

    # --- transitions ----------------------------------------------------------------

    def _apply(self, job_id, allowed, fields, attempt=None, *, event=None, lease_ms=None,
               record=None, epoch=None, cap=None):
        """Write `fields` (and append `event`, a (type, data) pair; and write `record`, a
        model record of this job) if the job's status is in `allowed` and its attempt is
        `attempt` (when given). `lease_ms` renews the lease from Redis' clock.

        Returns Applied(written, status now, whether the event was appended). Terminal jobs
        leave the active sets. A job that is gone is NotFoundError, except to a runner (an
        `attempt`): a deleted job is one more that is no longer its attempt's to write.
        """
        now = utc_now_iso()
        event_type, event_data = event or (None, None)
        op = {"allowed": [s.value for s in allowed], "attempt": attempt,
              "fields": encode_fields({**fields, "updated_at": now}),
              "lease_ms": lease_ms,
              "record": encode_fields(record) if record else None,
              "event": None if event is None else
              [event_type, finite_json(event_data)],
              "epoch": epoch, "cap": cap, "time": now, "max_events": MAX_EVENTS}
        extra_key = self.keys.model(record["id"]) if record else self.keys.job(job_id)
        written, status, *appended = self._transition(
            keys=[self.keys.job(job_id), self.keys.events(job_id), extra_key],
            args=[json.dumps(op)])
        if written == -1 and attempt is None:
            raise NotFoundError(f"no job with id {job_id!r}")
        if written == -1:
            return Applied(False, None, False)
        status = JobStatus(status)
        if written == 1 and status.is_terminal:
            self.forget_active(job_id)
        return Applied(written == 1, status, bool(appended and appended[0]))

    def forget_active(self, job_id):
        """A job that ended leaves its owner's active set and its queue: its slot is free
        (shared/stores/scheduler.py)."""
        job = self.get(job_id)
        self.scheduler.forget(job_id, job["owner"], queue_of(job))

    def start(self, job_id, worker, lease_ms):
        """queued -> running for `worker`, holding a lease of `lease_ms`; returns the
        attempt to run, or None if the job is not queued (cancelled meanwhile, or another
        delivery of a job that already runs)."""
        written, _, _ = self._apply(job_id, [JobStatus.QUEUED],
                                 {"status": JobStatus.RUNNING.value,
                                  "started_at": utc_now_iso(), "worker": worker},
                                 lease_ms=lease_ms,
                                 event=_status_event(JobStatus.RUNNING, worker=worker))
        if not written:
            return None
        job = self.get(job_id)
        # Normally released already; one started by another message takes its slot now.
        self.scheduler.claim(job_id, job["owner"], queue_of(job))
        return job["attempt"]

    def renew_lease(self, job_id, attempt, lease_ms):
        """Extend the running attempt's lease; False once the job is not this attempt's."""
        return self._apply(job_id, [JobStatus.RUNNING], {}, attempt, lease_ms=lease_ms)[0]

    def is_current(self, job_id, attempt):
        """True while the job runs as `attempt` (checked by a runner before each step)."""
        status, current = self.redis.hmget(self.keys.job(job_id), ["status", "attempt"])
        return (status is not None and json.loads(status) == JobStatus.RUNNING.value
                and json.loads(current) == attempt)

    def report_progress(self, job_id, attempt, progress, metrics=None, *, event=None):
        """Record progress of a running attempt, and with `event` append a `progress`
        event holding it (capped, as add_event's) in the same step; returns False once
        the job is no longer this attempt's to write (cancelled, or handed on)."""
        fields = {"progress": progress}
        if metrics is not None:
            fields["metrics"] = metrics
        return self._apply(job_id, [JobStatus.RUNNING], fields, attempt,
                           event=None if event is None else ("progress", event),
                           cap=None if event is None else STREAMED_EVENT_CAP)[0]

    def add_event(self, job_id, attempt, event_type, data, *, epoch=None, progress=None,
                  capped=False):
        """Append a runner's event: True when appended; False once the job is no longer
        this running attempt's, or (with `epoch`, an epoch_end) when that epoch was
        reported already: epoch_end is written once per epoch over all attempts. A
        `capped` event is dropped past STREAMED_EVENT_CAP of them. `progress` is written in
        the same step."""
        applied = self._apply(job_id, [JobStatus.RUNNING],
                              {} if progress is None else {"progress": progress}, attempt,
                              event=(event_type, data), epoch=epoch,
                              cap=STREAMED_EVENT_CAP if capped else None)
        return applied.written and applied.appended

    def succeed(self, job_id, attempt, result, metrics=None, *, model=None, **fields):
        """running -> succeeded, and the job's model record (`model`) written in the same
        step: a job that is cancelled meanwhile registers nothing. `fields` adds to the
        record (stopped_reason). False when refused."""
        fields = {"status": JobStatus.SUCCEEDED.value, "finished_at": utc_now_iso(),
                  "result": result, **fields}
        if metrics is not None:
            fields["metrics"] = metrics
        if model is not None:
            # Index first: a listing skips an id without a record, and the step below is
            # what makes the record exist.
            self.redis.zadd(self.keys.owner_index(model["owner"], "models"),
                            {model["id"]: creation_score()})
        return self._apply(job_id, [JobStatus.RUNNING], fields, attempt, record=model,
                           event=_status_event(JobStatus.SUCCEEDED)).written

    def fail(self, job_id, attempt, code, message, **fields):
        error = {"code": code, "message": message}
        fields = {"status": JobStatus.FAILED.value, "finished_at": utc_now_iso(),
                  "error": error, **fields}
        return self._apply(job_id, [JobStatus.RUNNING], fields, attempt,
                           event=_status_event(JobStatus.FAILED, error=error))[0]

    def cancel(self, job_id, owner=None):
        """queued | running -> cancelled; a terminal job answers ConflictError."""
        self.get(job_id, owner)
        written, status, _ = self._apply(
            job_id, ACTIVE, {"status": JobStatus.CANCELLED.value,
                             "finished_at": utc_now_iso(),
                             "stopped_reason": StoppedReason.CANCELLED.value},
            event=_status_event(JobStatus.CANCELLED))
        if not written:
            raise ConflictError(f"job {job_id} has already ended: {status.value}")
        return self.get(job_id)

    def reap(self, job_id, max_attempts, given_up=None):
        """Hand a running job whose lease expired to its next attempt (or fail it once
        `max_attempts` are spent). With `given_up` ({attempt, code, message}: the running
        attempt gives itself up, see worker/stall.py), whatever its lease, and the code
        and message say why. Returns 'requeued', 'exhausted' or ''."""
        args = [max_attempts, utc_now_iso(), MAX_EVENTS]
        if given_up is not None:
            args.append(json.dumps(given_up))
        outcome = self._reap(keys=[self.keys.job(job_id), self.keys.events(job_id)],
                             args=args)
        if outcome == "exhausted":
            self.forget_active(job_id)
        return outcome

    def claim_resend(self, job_id, lost_after_ms, max_wait_ms):
        """True when the released job's message is presumed lost (_RESEND_LUA) and this
        caller is to send it again: two reapers at once never both are."""
        return bool(self._resend(keys=[self.keys.job(job_id)],
                                 args=[int(lost_after_ms), int(max_wait_ms)]))


def _status_event(status, **details):
    return ("status", {"status": status.value, **details})


def read_events(redis_client, key, after="0", limit=100):
    """(events, cursor) of the event stream `key` (a job's, a sweep's): see JobStore.events."""
    entries = redis_client.xrange(key, min=f"({after}" if after != "0" else "-", count=limit)
    events = [_event(entry_id, fields) for entry_id, fields in entries]
    return events, (events[-1]["id"] if events else after)


def _event(entry_id, fields):
    return {"id": entry_id, "type": fields["type"], "time": fields["time"],
            "data": json.loads(fields["data"])}
