"""NextTurn: when a run ends, however it ends, the slot it frees goes to the next waiting
job and its sweep (a trial's) takes its next step, now rather than at the next reaper
pass, which does both too (worker/reaper.py): so a Redis error here is only logged.
"""

import logging

import redis

from shared.runtime.queue import queue_of, send_released
from shared.sweeps.runner import advance as advance_sweep

log = logging.getLogger(__name__)


class NextTurn:
    def __init__(self, svc, job):
        self.svc = svc
        self.job = job

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        release_now(self.svc, [queue_of(self.job)])
        if self.job.get("sweep_id"):
            _next_trial(self.svc, self.job["sweep_id"])


def release_now(svc, queues):
    """A slot of `queues` is free: the next turn now, not at the next reaper pass."""
    try:
        release_waiting(svc, queues)
    except redis.RedisError as e:
        log.warning("releasing the next job failed (%s); a reaper does it", type(e).__name__)


def release_waiting(svc, queues):
    """Give the free slots of `queues` to waiting jobs, fairly, and send them."""
    for queue in queues:
        send_released(svc.celery, queue, svc.jobs.scheduler.dispatch(queue))


def _next_trial(svc, sweep_id):
    try:
        advance_sweep(svc, sweep_id)
    except redis.RedisError as e:
        log.warning("advancing sweep %s failed (%s); a reaper does it", sweep_id,
                    type(e).__name__)
