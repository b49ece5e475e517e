"""Every error answer, in one place: application/problem+json (RFC 9457) with a stable code.

Our own errors carry their code, status and field; Werkzeug's HTTP errors (404 for an
unknown path, 405, 413 from the upload limit) get the same shape; anything else is logged
with its traceback and answered with a 500 that reveals nothing.
"""

import logging

from flask import jsonify
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from shared.errors import PayloadTooLargeError, TextgenError

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "urn:textgen:problem:"  # a stable identifier per code, not a page


def problem(status, code, title, detail, field=None, **extra):
    body = {"type": PROBLEM_TYPE_BASE + code, "title": title, "status": status,
            "detail": detail, "code": code}
    if field:
        body["field"] = field
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def register(app):
    @app.errorhandler(TextgenError)
    def textgen_error(e):
        return problem(e.status, e.code, e.title, e.message, e.field, **e.extra)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(e):
        limit_mb = app.config["MAX_CONTENT_LENGTH"] / (1024 * 1024)
        return textgen_error(PayloadTooLargeError(
            f"the body is over the upload limit of {limit_mb:g} MB (TEXTGEN_MAX_UPLOAD_MB)"))

    @app.errorhandler(HTTPException)
    def http_error(e):
        code = (e.name or "error").lower().replace(" ", "_")
        return problem(e.code, code, e.name, e.description)

    @app.errorhandler(Exception)
    def unexpected(e):
        log.error("unhandled error", exc_info=e)
        return problem(500, "internal_error", "Internal error",
                       "the server failed; the error is logged")
