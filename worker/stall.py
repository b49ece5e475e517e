"""The stall watchdog: a heartbeat that proves progress, not only life.

The lease's heartbeat thread beats on while the training thread is stuck inside a step (a
deadlocked op, a hung device or data source: TensorFlow holds no GIL there), so a stuck
job would hold its lease forever. The training loop pings a StallWatchdog at the end of
every step (StepPulse); the heartbeat asks it before each renewal, and once no step ended
for the stall limit, the attempt gives the job up (worker/reaper.py: the next attempt is
queued at once and resumes from the last checkpoint on whichever worker takes it, or the
job fails as `stalled` after TEXTGEN_MAX_ATTEMPTS), and the worker process exits: a thread
stuck in native code cannot be stopped from Python, and its supervisor (`make up`'s stack,
systemd, Kubernetes, Celery's prefork pool) starts a fresh process.
"""

import functools
import logging
import os
import time

import keras

from shared.stores.jobs import STALLED
from worker.reaper import Reaper

log = logging.getLogger(__name__)

# The limit without TEXTGEN_STALL_S (issue 15): ten times the slowest step so far, and never
# under 5 minutes, so a step that is merely slow (the first traces the graph, an epoch's
# end validates, samples and checkpoints) is not taken for a stuck one.
STALL_FACTOR = 10
STALL_FLOOR_S = 300.0
# sysexits' EX_TEMPFAIL: "try again later", which is what a supervisor's restart does.
EXIT_STALLED = 75


class StallWatchdog:
    """When the last step ended, the slowest step so far, and whether the run is stuck.

    Written by the training thread, read by the heartbeat thread: each field is one
    assignment, and a reader that sees a new `last_step_end` with an old `slowest_s` only
    gets a limit that is briefly too short by the step just ended, never a false stall.
    """

    def __init__(self, limit_s=None, on_stall=None, clock=time.monotonic):
        self.fixed_limit_s = limit_s  # TEXTGEN_STALL_S, or None for the rule above
        # Called once, from the heartbeat thread, with (stalled_s, limit_s).
        self.on_stall = on_stall
        self.clock = clock
        self.last_step_end = None  # None until training starts: preparing text is no step
        self.slowest_s = 0.0

    def start(self):
        """Training begins: the first step is timed from now."""
        self.last_step_end = self.clock()

    def stop(self):
        """Training ended: saving and publishing the model are no steps."""
        self.last_step_end = None

    def step_ended(self):
        now = self.clock()
        if self.last_step_end is not None:
            self.slowest_s = max(self.slowest_s, now - self.last_step_end)
        self.last_step_end = now

    @property
    def limit_s(self):
        if self.slowest_s == 0:
            # The first step traces and compiles the model (seconds to minutes, and nothing
            # to compare it with yet): it gets the floor at least, whatever TEXTGEN_STALL_S.
            return max(STALL_FLOOR_S, self.fixed_limit_s or 0)
        if self.fixed_limit_s is not None:
            return self.fixed_limit_s
        return max(STALL_FLOOR_S, STALL_FACTOR * self.slowest_s)

    def stalled_for(self):
        """Seconds since the last step ended when that is past the limit, else None."""
        last = self.last_step_end
        if last is None:
            return None
        waited_s = self.clock() - last
        return waited_s if waited_s > self.limit_s else None


class StepPulse(keras.callbacks.Callback):
    """Pings the watchdog at the end of every step, the validation steps included (a long
    validation pass is progress too), between the start and the end of training."""

    def __init__(self, watchdog):
        super().__init__()
        self.watchdog = watchdog

    def on_train_begin(self, logs=None):
        self.watchdog.start()

    def on_train_batch_end(self, batch, logs=None):
        self.watchdog.step_ended()

    def on_test_batch_end(self, batch, logs=None):
        self.watchdog.step_ended()

    def on_train_end(self, logs=None):
        self.watchdog.stop()


def watchdog_for(svc, job, attempt):
    """The run's watchdog, for its lease to ask (worker/lease.py): TEXTGEN_STALL_S, and a
    stall gives the job up and exits the process."""
    return StallWatchdog(svc.settings.stall_s, on_stall=functools.partial(
        give_up_and_exit, Reaper(svc), job, attempt))


def give_up_and_exit(reaper, job, attempt, stalled_s, limit_s):
    """The on_stall of a worker: hand the job on as the reaper would, then exit the process
    so that its supervisor restarts it (the stuck thread goes with it)."""
    message = (f"no training step ended for {stalled_s:.0f} s (the limit is {limit_s:.0f} s, "
               "TEXTGEN_STALL_S); the worker gave the job up and restarted")
    log.error("job %s: attempt %d stalled: %s; exiting with code %d", job["id"], attempt,
              message, EXIT_STALLED)
    try:
        reaper.reap_running(job, given_up={"attempt": attempt, "code": STALLED,
                                           "message": message})
    except Exception:  # noqa: BLE001 - exiting is what matters; its lease expires instead
        log.exception("job %s: could not record the stall; its lease will expire", job["id"])
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_STALLED)
