"""Every error answer, in one place: application/problem+json (RFC 9457) with a stable code.

Our own errors carry their code, status, field and headers; a request body that fails its
model is a 422 listing every field at fault; Werkzeug's HTTP errors (404 for an unknown
path, 405 with its Allow header, 413 from the upload limit) get the same shape; Redis out
of reach is a 503 (the client timeouts in shared/runtime/redis_db.py bound how long that takes);
anything else is logged with its traceback and answered with a 500 that reveals nothing.
"""

import logging

import redis
from flask import Response
from kombu.exceptions import OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from shared.contracts.errors import (
    InternalError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    TextgenError,
)

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "urn:textgen:problem:"  # a stable identifier per code, not a page
PROBLEM_MIMETYPE = "application/problem+json"


def problem_response(error):
    """The problem+json answer for a TextgenError."""
    from shared.contracts.schemas import Problem

    body = Problem(type=PROBLEM_TYPE_BASE + error.code, title=error.title,
                   status=error.status, detail=error.message, code=error.code,
                   field=error.field, **error.extra)
    response = Response(body.model_dump_json(exclude_none=True), status=error.status,
                        mimetype=PROBLEM_MIMETYPE)
    response.headers.update(error.headers)
    return response


def register(app):
    @app.errorhandler(TextgenError)
    def textgen_error(e):
        return problem_response(e)


    @app.errorhandler(RequestEntityTooLarge)
    def too_large(e):
        limit_mb = app.config["MAX_CONTENT_LENGTH"] / (1024 * 1024)
        return problem_response(PayloadTooLargeError(
            f"the body is over the upload limit of {limit_mb:g} MB (TEXTGEN_MAX_UPLOAD_MB)"))

    @app.errorhandler(HTTPException)
    def http_error(e):
        code = (e.name or "error").lower().replace(" ", "_")
        error = TextgenError(e.description or e.name, headers=dict(e.get_headers()))
        error.code, error.status, error.title = code, e.code, e.name
        error.headers.pop("Content-Type", None)
        return problem_response(error)

    @app.errorhandler(redis.ConnectionError)  # BusyLoadingError (a restarting Redis) too
    @app.errorhandler(redis.TimeoutError)
    @app.errorhandler(OperationalError)
    def unavailable(e):
        # Connection refused, a timeout, a Redis that is loading its data after a restart.
        log.warning("redis or the broker is unavailable: %s", type(e).__name__)
        return problem_response(ServiceUnavailableError(
            "the job store is unavailable right now; try again shortly",
            headers={"Retry-After": "5"}))

    @app.errorhandler(Exception)
    def unexpected(e):
        log.error("unhandled error", exc_info=e)
        return problem_response(InternalError("the server failed; the error is logged"))
