"""Idempotency-Key on POST: the same key and body within 24 hours get the first answer.

Stripe's scheme: the first request with a key reserves it (SET NX) and runs; its answer,
when it is a success, is stored under the key and replayed to every later request with the
same key and the same body, also to those that arrived while it ran (they wait for it). The
same key with another body is a 409. A request that fails releases the key, so a retry
after a 4xx or a 503 runs again. Keys are per owner.
"""

import functools
import hashlib
import json
import time

from flask import Response, request

from api.auth import current_owner
from api.context import services
from shared.errors import ConflictError, IdempotencyKeyReusedError, ValidationError

TTL_S = 24 * 3600  # how long an answer is kept for replays
_WAIT_S = 30.0  # how long a concurrent request waits for the first one to finish
_POLL_S = 0.05
_MAX_KEY_CHARS = 255
IDEMPOTENCY = {"Idempotency-Key": (  # the header, as api/openapi.py documents it
    "same key and body within 24 h: the first answer again",
    {"type": "string", "minLength": 1, "maxLength": _MAX_KEY_CHARS})}


def idempotent(view):
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
        pending = json.dumps({"fingerprint": fingerprint, "state": "pending"})
        if not svc.redis.set(redis_key, pending, nx=True, ex=TTL_S):
            return _replay(svc.redis, redis_key, fingerprint)
        try:
            response = view(*args, **kwargs)
        except BaseException:
            svc.redis.delete(redis_key)
            raise
        response = _as_response(response)
        if 200 <= response.status_code < 300:
            svc.redis.set(redis_key, json.dumps({
                "fingerprint": fingerprint, "state": "done", "status": response.status_code,
                "body": response.get_data(as_text=True), "mimetype": response.mimetype,
                "location": response.headers.get("Location")}), ex=TTL_S)
        else:
            svc.redis.delete(redis_key)
        return response
    return wrapper


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
        body = request.get_json(silent=True, cache=True)
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
