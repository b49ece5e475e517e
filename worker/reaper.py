"""The reaper: in every worker, a thread that hands lost jobs on.

Two ways a job gets lost, both invisible to Celery on Redis (a dead worker's message is
only redelivered after the visibility timeout, days):

- a running job whose lease expired (its worker died or hung): the next attempt is queued
  and a message sent, or the job fails with `attempts_exhausted` after max_attempts
  (a stuck step's attempt gives its job up the same way at once, worker/stall.py);
- a queued job with no message in the broker (the enqueue after creating it failed, or a
  Redis error lost it): a message is sent again.

Every worker runs one; they may race, which is harmless: the job store's reap step is
atomic, and a second message for a job only finds it already started and stops.
"""

import logging

from shared.jobs import JobStatus
from shared.queue import enqueue, messages_in_flight
from shared.retention import SWEEP_INTERVAL_S, sweep_finished_jobs
from worker.periodic import Periodic

log = logging.getLogger(__name__)

class Reaper:
    def __init__(self, svc, worker=None, queues=()):
        self.svc = svc
        self.worker = worker  # this worker's name and queues, reported each pass (metrics)
        self.queues = list(queues)

    def start(self):
        return Periodic("reaper", self.svc.settings.reap_interval_s, self.run_once).start()

    def run_once(self):
        self.reap_once()
        # One worker a SWEEP_INTERVAL_S sweeps old finished jobs (shared/retention).
        if self.svc.redis.set(self.svc.keys.sweep_lock(), self.worker or "worker", nx=True,
                              ex=SWEEP_INTERVAL_S):
            sweep_finished_jobs(self.svc)

    def reap_once(self):
        """One pass over the active jobs; returns the ids it sent again."""
        svc = self.svc
        if self.worker:
            svc.metrics.worker_alive(self.worker, self.queues)
        settings = svc.settings
        sent = []
        ids = sorted(svc.jobs.active_ids())
        in_flight = None  # read from the broker only when a queued job is old enough
        for job in svc.jobs.get_many(ids):
            if job is None:
                continue
            status = JobStatus(job["status"])
            if status.is_terminal:
                svc.jobs.forget_active(job["id"], job["owner"])
            elif status is JobStatus.RUNNING:
                if self.reap_running(job) == "requeued":
                    sent.append(job["id"])
            elif svc.jobs.mark_enqueued(job["id"],
                                        older_than_ms=int(settings.lost_message_s * 1000)):
                if in_flight is None:
                    in_flight = messages_in_flight(svc.redis, settings.redis_prefix)
                if job["id"] not in in_flight:
                    log.warning("job %s: queued with no message in the broker; sending it "
                                "again", job["id"])
                    self._send(job, mark=False)
                    sent.append(job["id"])
                    svc.metrics.reaped("resent")
        return sent

    def reap_running(self, job, given_up=None):
        """Hand on the running `job` if its lease expired, or (`given_up`, see
        JobStore.reap) because its attempt gives itself up. Returns the outcome."""
        svc = self.svc
        outcome = svc.jobs.reap(job["id"], svc.settings.max_attempts, given_up)
        why = "lease of attempt %d expired" if given_up is None else "attempt %d gave up"
        if outcome == "requeued":
            log.warning("job %s: " + why + "; queued as attempt %d", job["id"],
                        job["attempt"], job["attempt"] + 1)
            self._send(job)
        elif outcome == "exhausted":
            log.error("job %s: failed after %d attempts", job["id"], job["attempt"])
            svc.metrics.job_ended(job["type"], JobStatus.FAILED.value)
            svc.webhooks.notify(svc.jobs.get(job["id"]), "completed")
        if outcome:
            svc.metrics.reaped(outcome)
        return outcome

    def _send(self, job, mark=True):
        enqueue(self.svc.celery, job)
        if mark:
            self.svc.jobs.mark_enqueued(job["id"])
