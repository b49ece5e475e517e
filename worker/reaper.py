"""The reaper: in every worker, a thread that reports the worker's slots, hands lost jobs
on and releases waiting jobs to free slots.

It looks only at the jobs that hold a worker slot (shared/stores/scheduler.py): a few per worker,
however many jobs wait for their turn. Two ways such a job gets lost, both invisible to
Celery on Redis (a dead worker's message is only redelivered after the visibility
timeout, days):

- a running job whose lease expired (its worker died or hung): the next attempt is queued,
  keeping the slot, and a message sent; or the job fails with `attempts_exhausted` after
  max_attempts (a stuck step's attempt gives its job up the same way at once,
  worker/stall.py);
- a released job that no worker started TEXTGEN_LOST_MESSAGE_S after its message was sent
  (the send failed, a Redis error lost it, or the worker that took it died before
  starting it): a message is sent again. The job store's records say so
  (JobStore.claim_resend); the broker's are not read.

A job that ended but still holds a slot (its process died between the two steps) frees
it. Then the free slots go to waiting jobs, fairly, and each running sweep takes its
step: the safety net behind the releases made when a job is submitted and when one ends,
and the step a sweep takes when its trial ends (worker/next_turn.py).

Every worker runs one; they may race, which is harmless: the job store's reap step and
the scheduler's release are atomic, and a second message for a job only finds it already
started and stops.
"""

import logging

import redis

from shared.stores.jobs import JobStatus
from shared.runtime.queue import QUEUES, enqueue
from shared.sweeps.runner import advance_running
from worker.next_turn import release_waiting
from worker.periodic import Periodic

log = logging.getLogger(__name__)


# The longest wait between two messages of a released job that no worker has started:
# the waits double from TEXTGEN_LOST_MESSAGE_S up to this (JobStore.claim_resend). A
# message that is not lost can still wait in the broker, when the scheduler counted a
# slot no worker can give it yet: a worker reading two queues counts its slots on each
# (docs/capacity.md), a dead worker's count until its heartbeat is 60 s old, a restarted
# one imports TensorFlow first. The extra messages are harmless, since the job store's
# start step takes only a queued job (each is one refused call), and few: about 11
# behind a 6-hour training job at the default 60 s. An hour bounds how late a message
# truly lost after such a wait is sent again.
RESEND_MAX_WAIT_S = 3600


class Reaper:
    def __init__(self, svc, worker=None, queues=(), node=None, concurrency=1):
        self.svc = svc
        self.worker = worker  # this worker's name and queues, reported each pass (metrics)
        self.queues = list(queues)
        # Its Celery node name (kept across restarts of the process) and how many jobs it
        # runs at once: its slots in the scheduler.
        self.node = node or worker
        self.concurrency = concurrency

    def start(self):
        try:  # a new worker's slots are free at once, not after a reap interval
            self.report()
            release_waiting(self.svc, QUEUES)
        except redis.RedisError as e:
            log.warning("reaper: Redis unavailable at start (%s); the passes go on",
                        type(e).__name__)
        return Periodic("reaper", self.svc.settings.reap_interval_s, self.run_once).start()

    def stop(self):
        """The worker stops: its slots go now, not once its heartbeat is old."""
        try:
            self.svc.jobs.scheduler.worker_seen(self.node, self.queues, 0)
        except redis.RedisError:
            pass  # they go when the heartbeat is WORKER_SEEN_MS old

    def run_once(self):
        self.reap_once()
        advance_running(self.svc)  # a sweep whose step was lost takes it now

    def report(self):
        if self.worker:
            self.svc.metrics.worker_alive(self.worker, self.queues)
            self.svc.jobs.scheduler.worker_seen(self.node, self.queues, self.concurrency)

    def reap_once(self):
        """One pass over the jobs holding slots, then releases; returns the ids sent again."""
        self.report()
        sent = []
        for queue in QUEUES:
            released = self.svc.jobs.scheduler.released(queue)
            ids = sorted(released)
            for job_id, job in zip(ids, self.svc.jobs.get_many(ids)):
                if self._reap(job_id, released[job_id], queue, job):
                    sent.append(job_id)
        release_waiting(self.svc, QUEUES)
        return sent

    def _reap(self, job_id, owner, queue, job):
        """Look after one job holding a slot; True when its message was sent again."""
        svc, settings = self.svc, self.svc.settings
        if job is None or JobStatus(job["status"]).is_terminal:
            svc.jobs.scheduler.forget(job_id, owner, queue)  # deleted, or ended
            return False
        if job["status"] == JobStatus.RUNNING:
            return self.reap_running(job) == "requeued"
        if not svc.jobs.claim_resend(job_id, settings.lost_message_s * 1000,
                                     RESEND_MAX_WAIT_S * 1000):
            return False
        log.warning("job %s: released, and no worker started it; sending it again", job_id)
        enqueue(svc.celery, job)
        svc.metrics.reaped("resent")
        return True

    def reap_running(self, job, given_up=None):
        """Hand on the running `job` if its lease expired, or (`given_up`, see
        JobStore.reap) because its attempt gives itself up; a requeued job keeps its slot
        and is sent again at once. Returns the outcome."""
        svc = self.svc
        outcome = svc.jobs.reap(job["id"], svc.settings.max_attempts, given_up)
        why = "lease of attempt %d expired" if given_up is None else "attempt %d gave up"
        if outcome == "requeued":
            log.warning("job %s: " + why + "; queued as attempt %d", job["id"],
                        job["attempt"], job["attempt"] + 1)
            enqueue(svc.celery, job)
        elif outcome == "exhausted":
            log.error("job %s: failed after %d attempts", job["id"], job["attempt"])
            svc.metrics.job_ended(job["type"], JobStatus.FAILED.value)
            svc.webhooks.notify(svc.jobs.get(job["id"]), "completed")
        if outcome:
            svc.metrics.reaped(outcome)
        return outcome
