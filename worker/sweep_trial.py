"""A sweep's trial in training: each epoch's validation loss goes to the sweep's study,
and training stops at the epoch's end when its pruner says so (successive halving)."""

import logging
import math

import keras
import redis

from shared.sweeps import study as sweep_study

log = logging.getLogger(__name__)


class PruneTrial(keras.callbacks.Callback):
    """Reports val_loss at each epoch's end (the step is the epoch: a rung is epochs
    reported) and stops the run when the trial should be pruned; `pruned` says so after.

    Redis away: the epoch goes unreported and training goes on (the pruner decides on the
    next one); a resumed attempt reports its redone epoch again, which Optuna ignores.
    """

    def __init__(self, svc, job):
        super().__init__()
        self.svc = svc
        self.job_id = job["id"]
        self.sweep = svc.sweeps.get(job["sweep_id"])
        self.number = job["sweep_trial"]
        self.trial_id = job["sweep_trial_id"]
        self.best = None
        self.pruned = False
        self.study = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_loss")
        if value is None or not math.isfinite(value):
            return
        self.best = value if self.best is None else min(self.best, value)
        try:
            if self.study is None:
                self.study = sweep_study.open_study(
                    self.svc.settings.redis_url, self.svc.keys.sweep_study(self.sweep["id"]),
                    self.sweep)
            trial = {"number": self.number, "job_id": self.job_id}
            self.svc.sweeps.write_rung(self.sweep["id"], trial, epoch + 1, float(value),
                                       self.best)
            prune = self.study.report(self.trial_id, epoch + 1, float(value))
            if prune:
                self.svc.sweeps.add_event(self.sweep["id"], "trial_pruned", {
                    **trial, "rung": epoch + 1, "val_loss": float(value)})
        except redis.RedisError as e:
            log.warning("job %s: epoch %d not reported to its sweep (%s)", self.job_id,
                        epoch + 1, type(e).__name__)
            return
        if prune:
            log.info("job %s: pruned by sweep %s after epoch %d", self.job_id,
                     self.sweep["id"], epoch + 1)
            self.pruned = True
            self.model.stop_training = True
