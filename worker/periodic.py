"""A daemon thread that does one thing every few seconds in a worker (the reaper, the
retention sweep, the webhook sender), and outlives any one failed pass: a Redis outage is
logged and waited out, anything else logged with its traceback."""

import logging
import threading

import redis

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name, interval_s, action):
        self.name = name
        self.interval_s = interval_s
        self.action = action  # called with no arguments, once a pass
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._wake.set()

    def wake(self):
        """Run the next pass now rather than at the end of the interval."""
        self._wake.set()

    def _run(self):
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.action()
            except redis.RedisError as e:
                log.warning("%s: Redis unavailable (%s); trying again later", self.name,
                            type(e).__name__)
            except Exception:  # noqa: BLE001 - the thread must outlive any one bad pass
                log.exception("%s: a pass failed", self.name)
