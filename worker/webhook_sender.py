"""The webhook sender: in every worker, a thread that sends the queued webhook deliveries
(shared/webhooks.py). Apart from the job's own thread, so a slow receiver never delays
a job; several senders claim different deliveries."""

import logging
import threading

import redis

log = logging.getLogger(__name__)

POLL_S = 0.5  # how often due deliveries are looked for


class WebhookSender:
    def __init__(self, webhooks):
        self.webhooks = webhooks
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()

    def _run(self):
        while not self._stop.wait(POLL_S):
            try:
                for delivery_id in self.webhooks.claim_due():
                    self.webhooks.send(delivery_id)
            except redis.RedisError as e:
                log.warning("webhooks: Redis unavailable (%s); trying again later",
                            type(e).__name__)
            except Exception:  # noqa: BLE001 - the thread must outlive any one bad delivery
                log.exception("webhooks: a pass failed")
