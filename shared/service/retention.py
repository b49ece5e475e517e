"""Retention: finished jobs older than TEXTGEN_RETENTION_DAYS go, with their event streams
and checkpoints. Models stay until deleted; idempotency keys expire by themselves (24 h).

Every worker asks each CHECK_S whether a sweep is due (its own thread, started with the
worker: worker/tasks.py); a Redis lock lets one worker a SWEEP_INTERVAL_S do it.
"""

import logging
from datetime import datetime, UTC

from shared.service.deletions import remove_finished_job
from shared.stores.jobs import JobStatus

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 3600  # how often a sweep runs, fleet-wide
CHECK_S = 60.0  # how often each worker asks: a sweep runs within a minute of being due
_BATCH = 500  # job ids read from an owner's index at a time


def sweep_when_due(svc, worker):
    """Sweep, unless a worker did in the last SWEEP_INTERVAL_S; the count, or None."""
    if svc.redis.set(svc.keys.sweep_lock(), worker, nx=True, ex=SWEEP_INTERVAL_S):
        return sweep_finished_jobs(svc)
    return None


def sweep_finished_jobs(svc, now=None):
    """Delete the finished jobs that ended more than retention_days ago; their count."""
    now = now or datetime.now(UTC)
    cutoff = now.timestamp() - svc.settings.retention_days * 86400
    swept = 0
    for owner in sorted(svc.redis.smembers(svc.keys.owners())):
        index = svc.keys.owner_index(owner, "jobs")
        # A job ends after it is created: only those created before the cutoff can qualify.
        ids = svc.redis.zrangebyscore(index, "-inf", int(cutoff * 1_000_000))
        for start in range(0, len(ids), _BATCH):
            batch = ids[start:start + _BATCH]
            for job_id, job in zip(batch, svc.jobs.get_many(batch)):
                if job is None:
                    svc.redis.zrem(index, job_id)
                elif _ended_before(job, cutoff):
                    remove_finished_job(svc, job)
                    swept += 1
    if swept:
        log.info("retention: %d finished jobs older than %g days deleted", swept,
                 svc.settings.retention_days)
    return swept


def _ended_before(job, cutoff):
    if not JobStatus(job["status"]).is_terminal or not job.get("finished_at"):
        return False
    finished = datetime.fromisoformat(job["finished_at"].replace("Z", "+00:00"))
    return finished.timestamp() < cutoff
