"""Webhooks: a job's end (and, when asked, each epoch's end) POSTed to its owner's URL.

Signed the Standard Webhooks way (standardwebhooks.com): headers `webhook-id`,
`webhook-timestamp` and `webhook-signature` = "v1," + base64(HMAC-SHA256(key,
"{id}.{timestamp}.{body}")), the key being the owner's secret ("whsec_" + base64), which
`textgen token create` shows. A receiver verifies that, and drops a `webhook-id` it saw.

A delivery is queued in Redis when its event happens (one write: the job never waits for
a receiver) and sent by a thread in every worker (worker/webhook_sender.py). A delivery
is claimed for CLAIM_S before it is sent, so a sender that dies mid-way leaves it to
another; a 2xx answer deletes it (never sent again once acknowledged); anything else
retries with exponential back-off for RETRY_FOR_S, then the delivery is dropped.
Only https URLs are accepted, or http to hosts an operator listed
(TEXTGEN_WEBHOOK_ALLOW_HOSTS), and redirects are not followed: a user cannot point the
server at its own network.
"""

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from urllib.parse import urlsplit

import requests

from shared.clock import new_id, utc_now_iso
from shared.errors import ValidationError
from shared.schemas import Job

log = logging.getLogger(__name__)

EVENTS = ("completed", "epoch_end")
RETRY_FOR_S = 24 * 3600  # how long a failing receiver is retried
MAX_DELAY_S = 3600  # the back-off stops growing at an hour
CLAIM_S = 60  # a claimed delivery is due again if its sender has not finished by then
SEND_TIMEOUT_S = 10  # per attempt: a slow receiver holds one sender thread this long
_SECRET_BYTES = 24

# KEYS[1]: the due set. ARGV: now, claim until, max. Deliveries due by `now` get their
# score moved to `claim until` and are returned: two senders never claim the same one.
_CLAIM_LUA = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return due
"""


def check_webhook_url(url, allow_hosts):
    """Refuse a URL the server must not call (ValidationError on field `webhook`)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and (
            parts.hostname in allow_hosts or parts.netloc in allow_hosts):
        return url
    raise ValidationError("'webhook' must be an https URL (http only to hosts listed in "
                          "TEXTGEN_WEBHOOK_ALLOW_HOSTS)", field="webhook")


def signature(secret, message_id, timestamp, body):
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(signed.digest()).decode()


class Webhooks:
    def __init__(self, redis_client, keys, first_retry_s=5.0):
        self.redis = redis_client
        self.keys = keys
        self.first_retry_s = first_retry_s
        self._claim = redis_client.register_script(_CLAIM_LUA)

    def secret(self, owner):
        """The owner's signing secret, made on first use."""
        made = "whsec_" + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()
        self.redis.hsetnx(self.keys.webhook_secrets(), owner, made)
        return self.redis.hget(self.keys.webhook_secrets(), owner)

    def notify(self, job, event, data=None):
        """Queue a delivery of `event` ("completed" or "epoch_end") when the job asked."""
        if not job.get("webhook") or event not in (job.get("webhook_events") or ()):
            return None
        if event == "completed":
            body = {"type": "job.completed", "timestamp": utc_now_iso(),
                    "data": Job.of(job).model_dump(mode="json")}
        else:
            body = {"type": f"job.{event}", "timestamp": utc_now_iso(),
                    "data": {"job_id": job["id"], **(data or {})}}
        delivery_id = new_id("msg")
        pipe = self.redis.pipeline()
        pipe.hset(self.keys.webhook(delivery_id), mapping={
            "url": job["webhook"], "owner": job["owner"], "body": json.dumps(body),
            "first_at": time.time(), "attempts": 0})
        pipe.zadd(self.keys.webhooks_due(), {delivery_id: time.time()})
        pipe.execute()
        return delivery_id

    def claim_due(self, limit=20):
        now = time.time()
        return self._claim(keys=[self.keys.webhooks_due()], args=[now, now + CLAIM_S, limit])

    def send(self, delivery_id, http=requests):
        """One attempt at one delivery; True once the receiver acknowledged it."""
        stored = self.redis.hgetall(self.keys.webhook(delivery_id))
        if not stored:
            self.redis.zrem(self.keys.webhooks_due(), delivery_id)
            return False
        body = stored["body"].encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "webhook-id": delivery_id,
                   "webhook-timestamp": timestamp,
                   "webhook-signature": signature(self.secret(stored["owner"]), delivery_id,
                                                  timestamp, body)}
        try:
            response = http.post(stored["url"], data=body, headers=headers,
                                 timeout=SEND_TIMEOUT_S, allow_redirects=False)
            acknowledged = 200 <= response.status_code < 300
            outcome = str(response.status_code)
        except requests.RequestException as e:
            acknowledged, outcome = False, type(e).__name__
        if acknowledged:
            self._forget(delivery_id)
            return True
        attempts = int(stored["attempts"]) + 1
        if time.time() - float(stored["first_at"]) >= RETRY_FOR_S:
            log.warning("webhook %s to %s: giving up after %d attempts (last: %s)",
                        delivery_id, urlsplit(stored["url"]).netloc, attempts, outcome)
            self._forget(delivery_id)
            return False
        delay_s = min(self.first_retry_s * 2 ** (attempts - 1), MAX_DELAY_S)
        pipe = self.redis.pipeline()
        pipe.hset(self.keys.webhook(delivery_id), "attempts", attempts)
        pipe.zadd(self.keys.webhooks_due(), {delivery_id: time.time() + delay_s})
        pipe.execute()
        log.info("webhook %s: %s; retrying in %.0f s", delivery_id, outcome, delay_s)
        return False

    def _forget(self, delivery_id):
        pipe = self.redis.pipeline()
        pipe.delete(self.keys.webhook(delivery_id))
        pipe.zrem(self.keys.webhooks_due(), delivery_id)
        pipe.execute()
