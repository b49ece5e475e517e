"""A running job's lease, renewed by a heartbeat thread while the job's work runs.

The thread keeps beating while TensorFlow runs a long step (TF releases the GIL), so a
slow step never loses the lease; a dead worker stops beating and its lease expires, and a
reaper (worker/reaper.py) hands the job on. When a renewal is refused (the job was
cancelled, or reaped and given to another attempt) the lease is `lost`: the run stops at
its next step and writes nothing more (the job store refuses its writes anyway).
"""

import contextvars
import logging
import threading

import redis

log = logging.getLogger(__name__)

BEATS_PER_LEASE = 6  # renew every lease_s / 6: five beats can be missed before it expires


class Lease:
    def __init__(self, jobs, job_id, attempt, lease_s):
        self.jobs = jobs
        self.job_id = job_id
        self.attempt = attempt
        self.lease_ms = int(lease_s * 1000)
        self.interval_s = lease_s / BEATS_PER_LEASE
        self.lost = threading.Event()
        self._stop = threading.Event()
        # In a copy of the caller's context: its log lines name the job (shared/logs.py).
        self._thread = threading.Thread(target=contextvars.copy_context().run,
                                        args=(self._beat,), name=f"lease-{job_id}",
                                        daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _beat(self):
        while not self._stop.wait(self.interval_s):
            try:
                if not self.jobs.renew_lease(self.job_id, self.attempt, self.lease_ms):
                    log.warning("job %s: attempt %d lost its lease (cancelled or handed "
                                "on); stopping", self.job_id, self.attempt)
                    self.lost.set()
                    return
            except redis.RedisError as e:
                # Redis is down or restarting: keep beating; the lease may expire meanwhile,
                # and then the first renewal after it is back tells us.
                log.warning("job %s: heartbeat failed (%s); retrying", self.job_id,
                            type(e).__name__)

    def still_ours(self):
        """Checked before every step: False once cancelled or handed on. One Redis read,
        so a cancel stops the run within a step, not at the next heartbeat."""
        if self.lost.is_set():
            return False
        try:
            current = self.jobs.is_current(self.job_id, self.attempt)
        except redis.RedisError:
            return True  # unknown: the heartbeat decides once Redis answers
        if not current:
            self.lost.set()
        return current
