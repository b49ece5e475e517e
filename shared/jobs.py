"""The job store: job records in Redis and their atomic status transitions.

A job is one Redis hash (fields JSON-encoded, see shared/redis_db.py) plus an entry in a
sorted index for newest-first listing. Status moves

    queued -> running -> succeeded | failed | cancelled
    queued -> cancelled

and terminal states are final. Every write after creation goes through one Lua script that
checks the current status (and, for a runner, its attempt number) and writes in the same
atomic step, so a late or duplicate runner can never move a finished job.

Each job also has an append-only event stream (a Redis stream): every status change is
appended by the same script that makes it, and a runner adds its own events (an epoch's
metrics and sample) under the same attempt fence. Readers page it with a cursor.
"""

import enum
import json
import time

from shared.clock import new_id, utc_now_iso
from shared.errors import ConflictError, NotFoundError
from shared.json_values import finite
from shared.redis_db import decode_fields, encode_fields


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self):
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobType(str, enum.Enum):
    TRAIN = "train"
    GENERATE = "generate"


# KEYS[1]: the job hash; KEYS[2]: its event stream. ARGV[1]: JSON list of statuses the job
# may be in; ARGV[2]: the attempt the caller runs ("" when any); ARGV[3]: JSON object of
# fields to set, each value already JSON text; ARGV[4]: event type ("" for none); ARGV[5]:
# event data (JSON text); ARGV[6]: event time; ARGV[7]: the stream's length cap. Returns
# {1, ""} when written, {0, current status} when refused, and {-1, ""} when the job does
# not exist. Statuses are stored JSON-encoded ('"queued"').
_TRANSITION_LUA = """
local raw = redis.call('HGET', KEYS[1], 'status')
if not raw then return {-1, ''} end
local status = cjson.decode(raw)
local allowed = cjson.decode(ARGV[1])
local ok = false
for _, s in ipairs(allowed) do if s == status then ok = true end end
if ok and ARGV[2] ~= '' then
  ok = redis.call('HGET', KEYS[1], 'attempt') == ARGV[2]
end
if not ok then return {0, status} end
local fields = cjson.decode(ARGV[3])
for k, v in pairs(fields) do redis.call('HSET', KEYS[1], k, v) end
if ARGV[4] ~= '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*',
             'type', ARGV[4], 'time', ARGV[6], 'data', ARGV[5])
end
return {1, ''}
"""

# Events kept per job; a few per epoch, so this is thousands of epochs. Approximate (~)
# trimming lets Redis cut whole stream nodes, which is cheap.
_MAX_EVENTS = 10_000

_EMPTY_PROGRESS = {"epoch": 0, "epochs": None, "step": 0, "steps": None, "fraction": 0.0,
                   "eta_seconds": None}


class JobStore:
    def __init__(self, redis_client, keys):
        self.redis = redis_client
        self.keys = keys
        self._transition = redis_client.register_script(_TRANSITION_LUA)

    def create(self, job_type, spec, **lineage):
        """Store a new queued job; `lineage` holds corpus_id or model_id."""
        job_id = new_id("job")
        record = {
            "id": job_id,
            "type": JobType(job_type).value,
            "status": JobStatus.QUEUED.value,
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
        }
        pipe = self.redis.pipeline()
        pipe.hset(self.keys.job(job_id), mapping=encode_fields(record))
        pipe.zadd(self.keys.jobs_index(), {job_id: time.time() * 1000})
        event_type, data = _status_event(JobStatus.QUEUED)
        pipe.xadd(self.keys.events(job_id), {"type": event_type, "time": record["created_at"],
                                             "data": json.dumps(data)})
        pipe.execute()
        return record

    def get(self, job_id):
        raw = self.redis.hgetall(self.keys.job(job_id))
        if not raw:
            raise NotFoundError(f"no job with id {job_id!r}")
        return decode_fields(raw)

    def list(self, limit=50, offset=0):
        """Jobs newest first."""
        ids = self.redis.zrevrange(self.keys.jobs_index(), offset, offset + limit - 1)
        pipe = self.redis.pipeline()
        for job_id in ids:
            pipe.hgetall(self.keys.job(job_id))
        return [decode_fields(raw) for raw in pipe.execute() if raw]

    def _apply(self, job_id, allowed, fields, attempt=None, event=None):
        """Write `fields` (and append `event`, a (type, data) pair) if the job's status is
        in `allowed` and its attempt matches `attempt` (when given).

        Returns None when written, else the job's current status (a JobStatus).
        """
        event_type, event_data = event or ("", None)
        written, status = self._transition(
            keys=[self.keys.job(job_id), self.keys.events(job_id)],
            args=[json.dumps([s.value for s in allowed]),
                  "" if attempt is None else json.dumps(attempt),
                  json.dumps(encode_fields(fields)),
                  event_type, json.dumps(finite(event_data), allow_nan=False), utc_now_iso(),
                  _MAX_EVENTS],
        )
        if written == -1:
            raise NotFoundError(f"no job with id {job_id!r}")
        return None if written == 1 else JobStatus(status)

    def start(self, job_id, worker):
        """queued -> running for `worker`; returns the attempt to run, or None if the job
        is not queued (cancelled meanwhile, or a duplicate delivery of a running job)."""
        refused = self._apply(job_id, [JobStatus.QUEUED],
                              {"status": JobStatus.RUNNING.value, "started_at": utc_now_iso(),
                               "worker": worker},
                              event=_status_event(JobStatus.RUNNING, worker=worker))
        return None if refused else self.get(job_id)["attempt"]

    def report_progress(self, job_id, attempt, progress, metrics=None):
        """Record progress of a running attempt; returns False once the job is no longer
        this attempt's to write (cancelled, or handed to another attempt)."""
        fields = {"progress": progress}
        if metrics is not None:
            fields["metrics"] = metrics
        return self._apply(job_id, [JobStatus.RUNNING], fields, attempt) is None

    def succeed(self, job_id, attempt, result, metrics=None):
        fields = {"status": JobStatus.SUCCEEDED.value, "finished_at": utc_now_iso(),
                  "result": result}
        if metrics is not None:
            fields["metrics"] = metrics
        return self._apply(job_id, [JobStatus.RUNNING], fields, attempt,
                           event=_status_event(JobStatus.SUCCEEDED)) is None

    def fail(self, job_id, attempt, code, message):
        error = {"code": code, "message": message}
        fields = {"status": JobStatus.FAILED.value, "finished_at": utc_now_iso(), "error": error}
        return self._apply(job_id, [JobStatus.RUNNING], fields, attempt,
                           event=_status_event(JobStatus.FAILED, error=error)) is None

    def cancel(self, job_id):
        """queued | running -> cancelled; a terminal job answers ConflictError."""
        refused = self._apply(job_id, [JobStatus.QUEUED, JobStatus.RUNNING],
                              {"status": JobStatus.CANCELLED.value,
                               "finished_at": utc_now_iso()},
                              event=_status_event(JobStatus.CANCELLED))
        if refused:
            raise ConflictError(f"job {job_id} is already {refused.value}")
        return self.get(job_id)

    def add_event(self, job_id, attempt, event_type, data):
        """Append a runner's event (e.g. "epoch_end"); refused (False) once the job is no
        longer this running attempt's."""
        return self._apply(job_id, [JobStatus.RUNNING], {}, attempt,
                           event=(event_type, data)) is None

    def events(self, job_id, after="0", limit=100):
        """(events, cursor): up to `limit` events after the cursor `after`, oldest first.

        Pass the returned cursor back to get what came since; it stays put when there is
        nothing new. An event is {id, type, time, data}.
        """
        self.get(job_id)  # an unknown job is a 404, not an empty list
        entries = self.redis.xrange(self.keys.events(job_id), min=f"({after}" if after != "0"
                                    else "-", count=limit)
        events = [{"id": entry_id, "type": f["type"], "time": f["time"],
                   "data": json.loads(f["data"])} for entry_id, f in entries]
        return events, (events[-1]["id"] if events else after)


def _status_event(status, **details):
    return ("status", {"status": status.value, **details})
