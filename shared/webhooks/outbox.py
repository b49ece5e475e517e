"""Webhooks: a job's end (and, when asked, each epoch's end) queued for its owner's URL.

Signed the Standard Webhooks way (standardwebhooks.com): headers `webhook-id`,
`webhook-timestamp` and `webhook-signature` = "v1," + base64(HMAC-SHA256(key,
"{id}.{timestamp}.{body}")), the key being the owner's secret ("whsec_" + base64), which
`textgen token create` shows. After `textgen token rotate-webhook-secret` the header
carries one signature per secret, space-separated, until the old secret's grace period
ends: a receiver accepts a delivery when any of them verifies.

A delivery is queued in Redis when its event happens (one write: the job never waits for
a receiver) and sent by the pool of every worker (worker/webhook_sender.py). Each owner
has a due set of their own, and a claim takes one delivery per owner in turn, so one
owner's backlog (or hostile receiver) never holds back another owner's deliveries. A
claimed delivery is due again after CLAIM_S, so a sender that dies mid-way leaves it to
another; a 2xx answer deletes it (never sent again once acknowledged); anything else
retries with exponential back-off for RETRY_FOR_S, then the delivery is dropped.
"""

import base64
import hashlib
import hmac
import json
import secrets
import time

from shared.runtime.clock import new_id, utc_now_iso
from shared.contracts.schemas import Job

EVENTS = ("completed", "epoch_end")
RETRY_FOR_S = 24 * 3600  # how long a failing receiver is retried
MAX_DELAY_S = 3600  # the back-off stops growing at an hour
# A claimed delivery is due again if its sender has not finished by then: longer than a
# send's whole deadline (worker/webhook_post.py, 10 s) plus a wait for a pool slot.
CLAIM_S = 60
_SECRET_BYTES = 24

# KEYS[1]: an owner's due set; KEYS[2]: the owners' set; ARGV[1]: the owner. Scores the
# owner by their earliest delivery, or drops them once they have none: what every change
# to a due set ends with, so the owners' set always says who has something due when.
_RESCORE = """
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #head == 0 then redis.call('ZREM', KEYS[2], ARGV[1])
else redis.call('ZADD', KEYS[2], head[2], ARGV[1]) end
"""
# ARGV: owner, now, claim until. The owner's earliest delivery due by `now`, its score
# moved to `claim until`: two senders never claim the same one.
_CLAIM_LUA = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, 1)
if #due == 1 then redis.call('ZADD', KEYS[1], ARGV[3], due[1]) end
""" + _RESCORE + "return due[1]"
# ARGV: owner, delivery id, when it is due ('' to remove it).
_SCHEDULE_LUA = """
if ARGV[3] == '' then redis.call('ZREM', KEYS[1], ARGV[2])
else redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2]) end
""" + _RESCORE


def new_secret():
    return "whsec_" + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


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
        self._schedule = redis_client.register_script(_SCHEDULE_LUA)

    # --- secrets -----------------------------------------------------------------------

    def secret(self, owner):
        """The owner's signing secret, made on first use."""
        self.redis.hsetnx(self.keys.webhook_secrets(), owner, new_secret())
        return self.redis.hget(self.keys.webhook_secrets(), owner)

    def signing_secrets(self, owner):
        """The secrets a delivery is signed with now: the current one, and the one before
        it while its grace period lasts."""
        previous = self.redis.get(self.keys.webhook_secret_previous(owner))
        return [self.secret(owner)] + ([previous] if previous else [])

    def rotate_secret(self, owner, grace_s):
        """A new signing secret for `owner`; the old one still signs for `grace_s`."""
        old, made = self.secret(owner), new_secret()
        pipe = self.redis.pipeline()
        if grace_s > 0:
            pipe.set(self.keys.webhook_secret_previous(owner), old, ex=max(1, round(grace_s)))
        else:
            pipe.delete(self.keys.webhook_secret_previous(owner))
        pipe.hset(self.keys.webhook_secrets(), owner, made)
        pipe.execute()
        return made

    def headers(self, owner, delivery_id, body):
        timestamp = str(int(time.time()))
        return {"Content-Type": "application/json", "webhook-id": delivery_id,
                "webhook-timestamp": timestamp,
                "webhook-signature": " ".join(signature(s, delivery_id, timestamp, body)
                                              for s in self.signing_secrets(owner))}

    # --- the queue ---------------------------------------------------------------------

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
        self._reschedule(job["owner"], delivery_id, time.time(), pipe)
        pipe.execute()
        return delivery_id

    def claim_due(self, limit, busy=None, per_owner=None):
        """Up to `limit` due deliveries as (owner, delivery id), one owner after another in
        turn; an owner with `per_owner` deliveries in flight (`busy`: owner -> count, this
        process's) gets no more."""
        now = time.time()
        counts = dict(busy or {})
        owners = self.redis.zrangebyscore(self.keys.webhook_owners(), "-inf", now,
                                          start=0, num=max(limit, 1) * 4)
        claimed = []
        while owners and len(claimed) < limit:
            for owner in list(owners):
                if len(claimed) >= limit:
                    break
                delivery_id = None
                if per_owner is None or counts.get(owner, 0) < per_owner:
                    delivery_id = self._claim(
                        keys=[self.keys.webhooks_due(owner), self.keys.webhook_owners()],
                        args=[owner, now, now + CLAIM_S])
                if delivery_id is None:
                    owners.remove(owner)
                    continue
                counts[owner] = counts.get(owner, 0) + 1
                claimed.append((owner, delivery_id))
        return claimed

    def delivery(self, delivery_id):
        """The stored delivery (url, owner, body, first_at, attempts), or None."""
        return self.redis.hgetall(self.keys.webhook(delivery_id)) or None

    def retry_later(self, owner, delivery_id, attempts):
        """Record a failed attempt; the delay until the next one, or None when the delivery
        has failed for RETRY_FOR_S and is dropped instead."""
        first_at = float(self.redis.hget(self.keys.webhook(delivery_id), "first_at") or 0)
        if time.time() - first_at >= RETRY_FOR_S:
            self.forget(owner, delivery_id)
            return None
        delay_s = min(self.first_retry_s * 2 ** (attempts - 1), MAX_DELAY_S)
        pipe = self.redis.pipeline()
        pipe.hset(self.keys.webhook(delivery_id), "attempts", attempts)
        self._reschedule(owner, delivery_id, time.time() + delay_s, pipe)
        pipe.execute()
        return delay_s

    def forget(self, owner, delivery_id):
        pipe = self.redis.pipeline()
        pipe.delete(self.keys.webhook(delivery_id))
        self._reschedule(owner, delivery_id, "", pipe)
        pipe.execute()

    def _reschedule(self, owner, delivery_id, due_at, pipe):
        self._schedule(keys=[self.keys.webhooks_due(owner), self.keys.webhook_owners()],
                       args=[owner, delivery_id, due_at], client=pipe)
