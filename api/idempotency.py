"""Idempotency-Key on POST: the same key and body within 24 hours get the first answer.

Stripe's scheme: the first request with a key reserves it (SET NX) and runs; its answer,
when it is a success, is stored under the key and replayed to every later request with the
same key and the same body, also to those that arrived while it ran (they wait for it). The
same key with another body is a 409. A request that fails releases the key, so a retry
after a 4xx or a 503 runs again. Keys are per owner.

A view that stores something passes `stored_answer(response)` to the step that stores it
(shared/stores/admission.py for a job, shared/sweeps/store.py for a sweep), which
writes the answer in that same step: once the job or sweep exists, a retry is answered
with it, whatever fails after. The pending marker of a request that died before that
step (its process killed) expires after PENDING_TTL_S. A job's submission (training or
generation, the most frequent requests) writes no marker: its storing step claims the key
(`claimed_in_storing_step`).
"""

import functools
import hashlib
import json
import logging
import time

import redis
from flask import Response, g, request

from api.auth import current_owner
from api.bodies import parsed_json
from api.context import services
from shared.stores.admission import IdempotencyKeyTakenError
from shared.contracts.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    MalformedRequestError,
    ValidationError,
)

log = logging.getLogger(__name__)

TTL_S = 24 * 3600  # how long an answer is kept for replays
# How long a pending marker outlives a request that died holding it: longer than any
# request takes to reach its storing step (an upload of the largest corpus to S3 takes
# seconds), short enough that a client's retry a minute later runs.
PENDING_TTL_S = 60
# Deletes the key only while it is still this request's pending marker.
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_WAIT_S = 30.0  # how long a concurrent request waits for the first one to finish
_POLL_S = 0.05
_MAX_KEY_CHARS = 255
IDEMPOTENCY = {"Idempotency-Key": (  # the header, as api/openapi.py documents it
    "same key and body within 24 h: the first answer again",
    {"type": "string", "minLength": 1, "maxLength": _MAX_KEY_CHARS})}


def idempotent(view=None, *, claimed_in_storing_step=False):
    """The decorator. With `claimed_in_storing_step` (a view whose every success stores
    its answer in one atomic step, which also refuses a key that is held: the job
    admission's), the key is claimed by that step instead of by a SET NX before the view
    runs: a round trip fewer, the same answers (`_claimed_in_storing_step`)."""
    if view is None:
        return functools.partial(idempotent, claimed_in_storing_step=claimed_in_storing_step)

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view(*args, **kwargs)
        if not 1 <= len(key) <= _MAX_KEY_CHARS:
            raise ValidationError(f"Idempotency-Key must be 1 to {_MAX_KEY_CHARS} characters",
                                  field="Idempotency-Key")
        svc = services()
        redis_key = svc.keys.idempotency(
            current_owner(), hashlib.sha256(f"{request.path}\n{key}".encode()).hexdigest())
        fingerprint = _fingerprint()
        if claimed_in_storing_step:
            return _claimed_in_storing_step(svc.redis, redis_key, fingerprint,
                                            lambda: view(*args, **kwargs))
        pending = json.dumps({"fingerprint": fingerprint, "state": "pending"})
        if not svc.redis.set(redis_key, pending, nx=True, ex=PENDING_TTL_S):
            return _replay(svc.redis, redis_key, fingerprint)
        g.idempotency = {"key": redis_key, "fingerprint": fingerprint, "pending": pending}
        try:
            response = _as_response(view(*args, **kwargs))
        except BaseException:
            _release(svc.redis, redis_key, pending)
            raise
        if 200 <= response.status_code < 300:
            _keep_final_answer(svc.redis, redis_key, fingerprint, response)
        else:
            _release(svc.redis, redis_key, pending)
        return response
    return wrapper


def _claimed_in_storing_step(redis_client, redis_key, fingerprint, run_view):
    """Run the view with no pending marker: its storing step writes the answer only while
    no other request holds the key, else raises IdempotencyKeyTakenError, and then, as
    when a view fails or refuses while another request holds the key, this request is
    answered as a SET NX that found the key would have had it (_replay: the first answer,
    a wait for it, or a 409 for another body). Two requests with one key may both run
    their checks; only one stores a job."""
    g.idempotency = {"key": redis_key, "fingerprint": fingerprint, "pending": None}
    try:
        response = _as_response(run_view())
    except IdempotencyKeyTakenError:
        return _replay(redis_client, redis_key, fingerprint)
    except Exception:
        if _held_by_another(redis_client, redis_key):
            return _replay(redis_client, redis_key, fingerprint)
        raise
    if 200 <= response.status_code < 300:
        _keep_final_answer(redis_client, redis_key, fingerprint, response)
    elif _held_by_another(redis_client, redis_key):
        return _replay(redis_client, redis_key, fingerprint)
    return response


def _held_by_another(redis_client, redis_key):
    """True when the key holds another request's marker or answer, not this one's."""
    try:
        held = redis_client.get(redis_key)
    except redis.RedisError as e:  # the request fails anyway, with its own error
        log.warning("idempotency key not read (%s)", type(e).__name__)
        return False
    return held is not None and held != g.idempotency.get("value")


def _keep_final_answer(redis_client, redis_key, fingerprint, response):
    """Store a success as the key's answer, unless the storing step stored it already
    (a Prefer: wait answers with the job as it ended, not with the 202 stored)."""
    if response is g.idempotency.get("stored"):  # as it was stored: not encoded again
        return
    answer = _answer(fingerprint, response)
    if answer != g.idempotency.get("value"):
        redis_client.set(redis_key, answer, ex=TTL_S)


def stored_answer(response):
    """What the storing step writes under this request's Idempotency-Key: `response` as
    the answer to replay ({key, pending, value, ttl_s}; pending None: the step claims
    the key, see idempotent); None without a key."""
    pending = g.get("idempotency")
    if pending is None:
        return None
    pending["value"] = _answer(pending["fingerprint"], response)
    pending["stored"] = response
    return {"key": pending["key"], "pending": pending["pending"], "value": pending["value"],
            "ttl_s": TTL_S}


def _answer(fingerprint, response):
    return json.dumps({
        "fingerprint": fingerprint, "state": "done", "status": response.status_code,
        "body": response.get_data(as_text=True), "mimetype": response.mimetype,
        "location": response.headers.get("Location")})


def _release(redis_client, redis_key, pending):
    """Free the key for a retry, unless the request's answer was stored meanwhile."""
    try:
        redis_client.eval(_RELEASE_LUA, 1, redis_key, pending)
    except redis.RedisError as e:
        # The request fails anyway; its marker expires within PENDING_TTL_S.
        log.warning("idempotency key not released (%s)", type(e).__name__)


def _replay(redis_client, redis_key, fingerprint):
    deadline = time.monotonic() + _WAIT_S
    while True:
        raw = redis_client.get(redis_key)
        if raw is None:
            raise ConflictError("the first request with this Idempotency-Key failed; "
                                "send it again to retry")
        stored = json.loads(raw)
        if stored["fingerprint"] != fingerprint:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was used with another request body",
                field="Idempotency-Key")
        if stored["state"] == "done":
            response = Response(stored["body"], status=stored["status"],
                                mimetype=stored["mimetype"])
            if stored["location"]:
                response.headers["Location"] = stored["location"]
            response.headers["Idempotent-Replayed"] = "true"
            return response
        if time.monotonic() > deadline:
            raise ConflictError("a request with this Idempotency-Key is still running; "
                                "try again shortly", headers={"Retry-After": "1"})
        time.sleep(_POLL_S)


def _fingerprint():
    """What makes two requests 'the same body': the parsed content, not its bytes (a
    multipart upload of the same file has another boundary each time)."""
    digest = hashlib.sha256(request.path.encode())
    if request.mimetype == "multipart/form-data":
        files = []
        for name, upload in request.files.items(multi=True):
            files.append((name, hashlib.sha256(upload.read()).hexdigest()))
            upload.seek(0)
        digest.update(_canonical(files) + _canonical(request.form.items(multi=True)))
    elif request.is_json:
        try:
            body = parsed_json()
        except MalformedRequestError:
            body = None
        digest.update(json.dumps(body, sort_keys=True).encode() if body is not None
                      else request.get_data(cache=True))
    else:
        digest.update(request.get_data(cache=True))
    digest.update(_canonical(request.args.items(multi=True)))
    return digest.hexdigest()


def _canonical(pairs):
    """(name, value) pairs as bytes that ignore their order. Each pair becomes JSON before
    sorting: a malformed multipart part parses with no name (None), which does not sort
    beside strings."""
    return json.dumps(sorted(json.dumps(pair) for pair in pairs)).encode()


def _as_response(result):
    """A view's return value (a Response, or (body, status)) as a Response."""
    if isinstance(result, Response):
        return result
    from flask import make_response

    return make_response(result)
