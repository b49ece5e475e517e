"""Advancing a sweep: tell the study how ended trials did, ask it for new ones, and submit
each as an ordinary training job of the sweep's owner.

advance() is the one step that does it, under a per-sweep lock, and may run anywhere at any
time: the API runs it when the sweep is created, the worker whose trial just ended runs it,
and every reaper pass runs it for each running sweep (worker/reaper.py), which is what
makes a lost step (a worker killed, Redis away) harmless. docs/sweeps.md says why. When the
search's trials are done, the same step starts and then ends the final phase
(shared/sweeps/final.py).
"""

import contextlib
import logging
import time

import pydantic
import redis

from shared.contracts.errors import ConflictError, NotFoundError, TextgenError, ValidationError
from shared.stores.jobs import JobStatus, JobType, StoppedReason
from shared.runtime.queue import QUEUES
from shared.contracts.specs import resolve_train_spec
from shared.service.submissions import Submission, cancel_job, submit, validated
from shared.sweeps import final as sweep_final
from shared.sweeps.space import checked_space, grid_size, with_params
from shared.sweeps.store import FINAL_FIELD, SweepStatus, TrialState, best_of, trials_of

log = logging.getLogger(__name__)

LOCK_S = 60  # an advance takes milliseconds; a holder that died frees the lock after this
MIN_TRIAL_S = 1.0  # a trial gets at least this much of the budget (training.max_seconds' floor)


def start(svc, owner, body, answer=None):
    """Store the sweep of request `body` (a SweepRequest on `owner`'s corpus), create its
    study and submit its first trials; the new record. `answer(record)`: what a retry
    with the same Idempotency-Key gets, written with the record (api/idempotency.py); a
    request that dies after that step leaves its first trials to the reaper's pass."""
    corpus = svc.corpora.get(body.corpus_id, owner, field="corpus_id")
    base = validated(resolve_train_spec, body.preset, body.overrides())
    if base.training.validation_fraction == 0:
        raise ValidationError("a sweep minimizes the validation loss: give "
                              "training.validation_fraction above 0",
                              field="training.validation_fraction")
    ceiling_s = svc.settings.max_train_seconds
    if body.trial_seconds > ceiling_s:
        raise ValidationError(f"trial_seconds may be at most {ceiling_s:g} s here "
                              "(TEXTGEN_MAX_TRAIN_SECONDS)", field="trial_seconds",
                              extra={"limit_s": ceiling_s})
    space = checked_space(body)
    size = grid_size(space)
    trials = body.trials if size is None else min(body.trials, size)
    record = svc.sweeps.new_record(
        owner, corpus_id=corpus["id"], preset=body.preset, overrides=body.overrides(),
        space=space, trials=trials, trial_seconds=body.trial_seconds,
        budget_seconds=body.budget_seconds or trials * body.trial_seconds,
        final_fraction=body.final_fraction, parallel=body.parallel, objective=body.objective,
        sampler="tpe" if size is None else "grid", seed=base.training.seed,
        created_ms=int(time.time() * 1000))
    _studies().create(svc.settings.redis_url, svc.keys.sweep_study(record["id"]),
                      record["id"])
    svc.sweeps.put(record, answer=answer(record) if answer else None)
    advance(svc, record["id"])
    return svc.sweeps.get(record["id"])


def _studies():
    """shared/sweeps/study.py, imported by the first step that needs a study: Optuna takes
    ~20 MB and 0.15 s to load, which an API process that never sees a sweep is spared."""
    from shared.sweeps import study as sweep_study
    return sweep_study


def advance(svc, sweep_id):
    """One step of the sweep; does nothing while another process takes one."""
    with _locked(svc, sweep_id, wait_s=None) as held:
        if held:
            _advance(svc, svc.sweeps.get(sweep_id))


@contextlib.contextmanager
def _locked(svc, sweep_id, wait_s):
    """Hold the sweep's advance lock (waiting up to `wait_s`; None: not at all); yields
    whether it is held."""
    lock = svc.redis.lock(svc.keys.sweep_advance_lock(sweep_id), timeout=LOCK_S,
                          blocking=wait_s is not None, blocking_timeout=wait_s)
    held = lock.acquire()
    try:
        yield held
    finally:
        if held:
            try:
                lock.release()
            except redis.exceptions.LockError:
                pass  # it outlived LOCK_S: another holder may have it now


def advance_running(svc):
    """A step of every running sweep (the reaper's pass)."""
    for sweep_id in svc.sweeps.running():
        try:
            advance(svc, sweep_id)
        except redis.RedisError:
            raise  # the pass waits Redis out (worker/periodic.py)
        except Exception:  # noqa: BLE001 - one sweep that cannot step must not stall the rest
            log.exception("sweep %s: a step failed; trying again next pass", sweep_id)


def _advance(svc, sweep):
    if SweepStatus(sweep["status"]).is_terminal:
        return
    trials = trials_of(sweep)
    if sweep.get(FINAL_FIELD):
        _advance_final(svc, sweep, trials, sweep[FINAL_FIELD])
        return
    ended = _ended(svc, trials)
    active = sum(1 for trial in trials if trial["state"] is None) - len(ended)
    left_s = sweep_final.search_left_s(sweep)
    more = len(trials) < sweep["trials"] and left_s >= MIN_TRIAL_S
    if not ended and not (more and active < sweep["parallel"]) and active:
        return  # every pass of the reaper ends here while the trials run: no study opened
    study = _studies().open_study(svc.settings.redis_url, svc.keys.sweep_study(sweep["id"]),
                                  sweep)
    for trial, job in ended:
        _tell(svc, sweep, study, trial, job)
    while more and active < sweep["parallel"] and _has_room(svc, sweep["owner"]):
        trial = _new_trial(svc, sweep, study, min(sweep["trial_seconds"], left_s))
        trials.append(trial)
        active += trial["state"] is None
        more = len(trials) < sweep["trials"]
    if active == 0 and not more:
        _search_done(svc, sweep, trials)


def _search_done(svc, sweep, trials):
    """Every trial ended: the final phase starts, or (off, nothing to continue, no time
    left, refused) the sweep ends."""
    best = best_of(trials)
    if sweep_final.wanted(sweep, best):
        if not _has_room(svc, sweep["owner"]):
            return  # the owner's queue is full of other work: a later step tries again
        if sweep_final.begin(svc, sweep, best)["job_id"]:
            return
    _end(svc, sweep, trials)


def _advance_final(svc, sweep, trials, final):
    """The final phase: once its job ended, told, and the sweep ends with its best."""
    if final["state"] is None:
        job = svc.jobs.get_many([final["job_id"]])[0]
        if job is not None and not JobStatus(job["status"]).is_terminal:
            return
        state, value = _outcome(job)
        trial_value = next(t["value"] for t in trials if t["number"] == final["number"])
        final = sweep_final.told(svc, sweep, final, state, value, trial_value)
    _end(svc, sweep, trials, final)


def _end(svc, sweep, trials, final=None):
    svc.sweeps.end(sweep["id"], SweepStatus.SUCCEEDED, best=best_of(trials, final))
    log.info("sweep %s: done after %d trials%s", sweep["id"], len(trials),
             " and its final phase" if final else "")


def _ended(svc, trials):
    """(trial, its job or None if deleted) of each trial not told yet whose job ended."""
    open_trials = [trial for trial in trials if trial["state"] is None]
    jobs = svc.jobs.get_many([trial["job_id"] for trial in open_trials])
    return [(trial, job) for trial, job in zip(open_trials, jobs)
            if job is None or JobStatus(job["status"]).is_terminal]


def _tell(svc, sweep, study, trial, job):
    """The ended trial's outcome to the study and to its record, once."""
    state, value = _outcome(job)
    study.tell(trial["number"], state, value)
    trial.update(state=state.value, value=value)
    svc.sweeps.write_trial(sweep["id"], _stored(trial))
    svc.sweeps.add_event(sweep["id"], "trial_ended", {
        "number": trial["number"], "job_id": trial["job_id"], "state": state.value,
        "val_loss": value})


def _outcome(job):
    """(TrialState, the job's best validation loss or None) of an ended (or deleted) job."""
    if job is None or job["status"] != JobStatus.SUCCEEDED:
        return TrialState.FAILED, None
    value = (job.get("metrics") or {}).get("val_loss")
    if job.get("stopped_reason") == StoppedReason.PRUNED:
        return TrialState.PRUNED, value
    return (TrialState.COMPLETE, value) if value is not None else (TrialState.FAILED, None)


def _new_trial(svc, sweep, study, max_seconds):
    """Ask the study for settings and submit them as a job; a trial refused at submission
    (too large for this service, past the storage quota) is told failed at once."""
    trial_id, number, params = study.ask(sweep["space"])
    trial = {"number": number, "trial_id": trial_id, "params": params, "job_id": None,
             "state": None, "value": None, "error": None}
    try:
        trial["job_id"] = submit_trial(svc, sweep, trial, max_seconds)["id"]
        log.info("sweep %s: trial %d is job %s", sweep["id"], number, trial["job_id"])
    except TextgenError as e:
        log.info("sweep %s: trial %d refused: %s", sweep["id"], number, e.message)
        study.tell(number, TrialState.FAILED)
        trial.update(state=TrialState.FAILED.value, error={"code": e.code,
                                                           "message": e.message})
    svc.sweeps.write_trial(sweep["id"], trial)
    if trial["job_id"]:
        svc.sweeps.add_event(sweep["id"], "trial_started", {
            "number": number, "job_id": trial["job_id"], "params": params})
    else:
        svc.sweeps.add_event(sweep["id"], "trial_ended", {
            "number": number, "job_id": None, "state": trial["state"], "val_loss": None,
            "error": trial["error"]})
    return trial


def submit_trial(svc, sweep, trial, max_seconds):
    """The trial's training job, queued for its owner's turn like any other."""
    try:
        spec = resolve_train_spec(sweep["preset"], with_params(sweep["overrides"],
                                                               trial["params"]))
    except pydantic.ValidationError as e:  # values checked one by one; together, refused
        raise ConflictError(f"these settings make no valid spec: {e.errors()[0]['msg']}") \
            from None
    spec = spec.with_training(max_seconds=max_seconds).model_dump()
    corpus = svc.corpora.get(sweep["corpus_id"])
    return submit(svc, sweep["owner"], Submission(JobType.TRAIN, spec, {
        "corpus_id": corpus["id"], "resources": {"accelerator": "cpu"},
        "sweep_id": sweep["id"], "sweep_trial": trial["number"],
        "sweep_trial_id": trial["trial_id"]}, corpus))


def _has_room(svc, owner):
    """The owner may queue one more job: asked before a trial is, so that the study never
    holds a trial the owner's quota then refuses."""
    pipe = svc.redis.pipeline()
    for queue in QUEUES:
        pipe.zcard(svc.keys.waiting(queue, owner))
    return sum(pipe.execute()) < svc.settings.max_queued_jobs


def _stored(trial):
    """A trial as its `trial:<n>` field holds it (the rung fields are the worker's)."""
    return {key: value for key, value in trial.items() if key not in ("rung", "best_val_loss")}


def cancel(svc, sweep_id, owner):
    """Stop making trials and cancel the ones queued or running, and the final phase's job.
    Under the advance lock (waited for: an advance takes milliseconds), so no trial is made
    after it."""
    with _locked(svc, sweep_id, wait_s=LOCK_S):
        sweep = svc.sweeps.get(sweep_id, owner)
        if SweepStatus(sweep["status"]).is_terminal:
            raise ConflictError(f"sweep {sweep_id} is already {sweep['status']}")
        trials = trials_of(sweep)
        final = sweep.get(FINAL_FIELD)
        svc.sweeps.end(sweep_id, SweepStatus.CANCELLED, best=best_of(trials, final))
    for trial in [*trials, *([final] if final else [])]:
        if trial["job_id"] and trial["state"] is None:
            try:
                cancel_job(svc, trial["job_id"])
            except (ConflictError, NotFoundError):
                continue  # it ended meanwhile, or was deleted
    return svc.sweeps.get(sweep_id)
