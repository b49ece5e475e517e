"""A running job's lease, renewed by a heartbeat thread while the job's work runs.

The thread keeps beating while TensorFlow runs a long step (TF releases the GIL), so a
slow step never loses the lease; a dead worker stops beating and its lease expires, and a
reaper (worker/reaper.py) hands the job on. When a renewal is refused (the job was
cancelled, or reaped and given to another attempt) the lease is `lost`: the run stops at
its next step and writes nothing more (the job store refuses its writes anyway).

Two things end a lease without Redis saying so:
- a stuck step: the beat asks the run's StallWatchdog (worker/stall.py) first, and a run
  with no step ended for the stall limit is given up instead of renewed;
- no renewal for lease_s (Redis unreachable: a restart, or this host cut off): the lease
  may have expired and the job been handed on, so it is presumed lost. A lease renewed by
  a call sent at t lasts until at least t + lease_s (Redis' clock starts it later), so
  until then no other attempt can run and this one may still write; after, it must not,
  even if nobody can tell it so (the artifact store may still be reachable when Redis is
  not). This is the fencing rule of leases (Gray and Cheriton, 1989).
"""

import contextvars
import logging
import threading
import time

import redis

log = logging.getLogger(__name__)

BEATS_PER_LEASE = 6  # renew every lease_s / 6: five beats can be missed before it expires


class Lease:
    def __init__(self, jobs, job_id, attempt, lease_s, watchdog=None, granted_at=None):
        self.jobs = jobs
        self.job_id = job_id
        self.attempt = attempt
        self.lease_s = lease_s
        self.lease_ms = int(lease_s * 1000)
        self.interval_s = lease_s / BEATS_PER_LEASE
        self.watchdog = watchdog  # a StallWatchdog the run pings, or None
        # granted_at: time.monotonic() when the call that took the lease was sent.
        self.valid_until = (time.monotonic() if granted_at is None else granted_at) + lease_s
        self.lost = threading.Event()
        self._stop = threading.Event()
        # In a copy of the caller's context: its log lines name the job (shared/runtime/logs.py).
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
            stalled_s = self.watchdog.stalled_for() if self.watchdog else None
            if stalled_s is not None:
                self.lost.set()  # renewed no more; on_stall hands the job on
                self.watchdog.on_stall(stalled_s, self.watchdog.limit_s)
                return
            sent = time.monotonic()
            try:
                renewed = self.jobs.renew_lease(self.job_id, self.attempt, self.lease_ms)
            except redis.RedisError as e:
                # Redis is down, restarting or cut off: keep beating until the lease may
                # have expired; the first renewal after Redis is back tells us if it did.
                log.warning("job %s: heartbeat failed (%s); retrying", self.job_id,
                            type(e).__name__)
                if self.presumed_expired():
                    return
                continue
            if not renewed:
                log.warning("job %s: attempt %d lost its lease (cancelled, deleted or "
                            "handed on); stopping", self.job_id, self.attempt)
                self.lost.set()
                return
            self.valid_until = sent + self.lease_s

    def presumed_expired(self):
        """True (and the lease lost) once lease_s passed since the last renewal was sent."""
        if time.monotonic() < self.valid_until:
            return False
        if not self.lost.is_set():
            log.warning("job %s: attempt %d could not renew its lease for %g s: presumed "
                        "handed on; stopping", self.job_id, self.attempt, self.lease_s)
            self.lost.set()
        return True

    def still_ours(self):
        """Checked before every step: False once cancelled, handed on, or presumed so.
        One Redis read, so a cancel stops the run within a step, not at the next beat."""
        if self.lost.is_set() or self.presumed_expired():
            return False
        try:
            current = self.jobs.is_current(self.job_id, self.attempt)
        except redis.RedisError:
            return True  # unknown, and the lease has not expired: it is still ours
        if not current:
            self.lost.set()
        return current
