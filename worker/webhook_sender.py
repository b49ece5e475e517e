"""The webhook sender: in every worker, a small pool of threads that sends the queued
deliveries (shared/webhooks/outbox.py), apart from the job's own thread, so a receiver never
delays a job.

A slow or hostile receiver holds one slot for at most one deadline (worker/webhook_post.py),
and one owner holds at most PER_OWNER of the SLOTS, so the other owners' deliveries keep
going out on time whatever one owner's receiver does.
"""

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from shared.webhooks.targets import RefusedDestinationError, resolve
from worker.periodic import Periodic
from worker.webhook_post import PostError, post

log = logging.getLogger(__name__)

POLL_S = 0.5  # how often due deliveries are looked for (sooner when a slot frees up)
# Threads per worker process: a delivery waits mostly on the network, so 8 cost little
# (each holds at most 64 KiB of a reply) and take 4 hostile owners to fill.
SLOTS = 8
PER_OWNER = 2  # slots one owner's deliveries may hold at once in one process


class WebhookSender:
    def __init__(self, webhooks, allow_hosts, slots=SLOTS, per_owner=PER_OWNER):
        self.webhooks = webhooks
        self.allow_hosts = allow_hosts
        self.slots = slots
        self.per_owner = per_owner
        self._pool = ThreadPoolExecutor(slots, thread_name_prefix="webhook")
        self._busy = Counter()  # owner -> deliveries being sent by this process
        self._lock = threading.Lock()
        self._loop = Periodic("webhooks", POLL_S, self.send_due)

    def start(self):
        self._loop.start()
        return self

    def send_due(self):
        with self._lock:
            free = self.slots - sum(self._busy.values())
            busy = dict(self._busy)
        if free <= 0:
            return
        for owner, delivery_id in self.webhooks.claim_due(free, busy, self.per_owner):
            with self._lock:
                self._busy[owner] += 1
            self._pool.submit(self._send_one, owner, delivery_id)

    def _send_one(self, owner, delivery_id):
        try:
            self.send(owner, delivery_id)
        except Exception:  # noqa: BLE001 - a pool thread's one boundary: log, keep the slot
            log.exception("webhook %s: sending failed", delivery_id)
        finally:
            with self._lock:
                self._busy[owner] -= 1
                if not self._busy[owner]:
                    del self._busy[owner]
            self._loop.wake()  # a slot is free: look for the next delivery now

    def send(self, owner, delivery_id):
        """One attempt at one delivery; True once the receiver acknowledged it."""
        stored = self.webhooks.delivery(delivery_id)
        if stored is None:  # acknowledged meanwhile by a sender whose claim had run out
            self.webhooks.forget(owner, delivery_id)
            return False
        body = stored["body"].encode()
        try:
            target = resolve(stored["url"], self.allow_hosts)
            status = post(target, stored["url"], body,
                          self.webhooks.headers(owner, delivery_id, body))
            outcome, where = f"HTTP {status}", target.label()
        except (RefusedDestinationError, PostError) as e:
            status, outcome, where = None, str(e), _where(stored["url"])
        if status is not None and 200 <= status < 300:
            self.webhooks.forget(owner, delivery_id)
            return True
        attempts = int(stored["attempts"]) + 1
        delay_s = self.webhooks.retry_later(owner, delivery_id, attempts)
        if delay_s is None:
            log.warning("webhook %s to %s: giving up after %d attempts (last: %s)",
                        delivery_id, where, attempts, outcome)
        else:
            log.info("webhook %s to %s: %s; retrying in %.0f s", delivery_id, where,
                     outcome, delay_s)
        return False


def _where(url):
    """The URL's host and port for a log line: never its user, password, path or query."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port or ''}"
    except ValueError:
        return "an invalid URL"
