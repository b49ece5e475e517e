"""A sweep's final phase: once the search's trials are done, its best trial goes on as one
more training job of the sweep's owner, with the trial's settings, from the trial's weights
(`init_from_model`, as a user continues a model), for what is left of the budget.

Why: a trial trains on one worker among `parallel`, for at most `trial_seconds`; the model
the sweep hands back is worth more trained longer on everything the workers have. The search
keeps `budget_seconds x (1 - final_fraction)`; the final job runs when every trial has ended,
so it has the training workers to itself. It becomes the sweep's best only if its
validation loss is lower than its trial's (the same split: one spec, one corpus).

Called by the runner's advance step (shared/sweeps/runner.py) under the sweep's lock: the
record's `final` field ({number, job_id, max_seconds, state, value, error}) is written
only there, as a trial's is.
"""

import logging
import time

from shared.contracts.errors import TextgenError
from shared.contracts.specs import TrainSpec
from shared.runtime.redis_db import model_id_of
from shared.service.submissions import Submission, submit
from shared.stores.jobs import JobType
from shared.sweeps.store import TrialState

log = logging.getLogger(__name__)

# Less budget left than this when the search ends: no final job. Ten seconds is about the
# shortest run that does more than load the corpus and build the model (a few seconds) and
# still trains (bench/README.md, quality per minute: 10 s budgets learn).
MIN_FINAL_S = 10.0


def budget_left_s(sweep):
    """Seconds of the whole budget left, counted from the sweep's creation."""
    return sweep["budget_seconds"] - (time.time() - sweep["created_ms"] / 1000)


def search_left_s(sweep):
    """Seconds left for the search's trials: the budget less the final phase's share."""
    return budget_left_s(sweep) - sweep["budget_seconds"] * sweep.get("final_fraction", 0.0)


def wanted(sweep, best):
    """The search is done: is there a final job to run (on, a best trial, time left)?"""
    return bool(sweep.get("final_fraction")) and best is not None \
        and budget_left_s(sweep) >= MIN_FINAL_S


def begin(svc, sweep, best):
    """Submit the final job continuing `best` (store.best_of's trial) for what is left of
    the budget; its `final` record. One refused at submission (its trial's job or model
    deleted, the storage quota) is recorded failed, with why."""
    left_s = min(budget_left_s(sweep), svc.settings.max_train_seconds)
    final = {"number": best["number"], "job_id": None, "max_seconds": round(left_s, 3),
             "state": None, "value": None, "error": None}
    try:
        final["job_id"] = _submit(svc, sweep, best, final["max_seconds"])["id"]
        log.info("sweep %s: final phase is job %s (trial %d, %.0f s)", sweep["id"],
                 final["job_id"], best["number"], left_s)
    except TextgenError as e:
        log.info("sweep %s: final phase refused: %s", sweep["id"], e.message)
        final.update(state=TrialState.FAILED.value, error={"code": e.code, "message": e.message})
    svc.sweeps.write_final(sweep["id"], final)
    if final["job_id"]:
        svc.sweeps.add_event(sweep["id"], "final_started", {
            "number": best["number"], "job_id": final["job_id"],
            "max_seconds": final["max_seconds"], "params": best["params"]})
    else:
        _ended_event(svc, sweep, final, improved=False)
    return final


def told(svc, sweep, final, state, value, trial_value):
    """The final job ended as (`state`, `value`): on its record and in the events, once;
    the record."""
    final = {**final, "state": TrialState(state).value, "value": value}
    svc.sweeps.write_final(sweep["id"], final)
    _ended_event(svc, sweep, final, improved=value is not None and value < trial_value)
    return final


def _ended_event(svc, sweep, final, improved):
    svc.sweeps.add_event(sweep["id"], "final_ended", {
        "number": final["number"], "job_id": final["job_id"], "state": final["state"],
        "val_loss": final["value"], "improved": improved,
        **({"error": final["error"]} if final["error"] else {})})


def _submit(svc, sweep, best, max_seconds):
    """The best trial's job again, from its model, for `max_seconds`, queued for its
    owner's turn like any job (the memory, size and storage checks)."""
    trial_job = svc.jobs.get(best["job_id"])  # NotFoundError once deleted
    model = svc.models.get(model_id_of(trial_job["id"]))  # the weights it starts from
    spec = TrainSpec.model_validate(trial_job["spec"]).with_training(max_seconds=max_seconds)
    corpus = svc.corpora.get(sweep["corpus_id"])
    return submit(svc, sweep["owner"], Submission(JobType.TRAIN, spec.model_dump(), {
        "corpus_id": corpus["id"], "resources": trial_job["resources"],
        "init_from_model": model["id"], "sweep_id": sweep["id"], "sweep_final": True},
        corpus))
