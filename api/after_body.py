"""Work that waits until the server is done with a response's body: it sent the last byte,
the client hung up, or sending failed. A view registers it with `call_after_body(fn)`;
it runs when the server closes the body (WSGI's close()), whatever became of the body.
"""

import logging

from flask import request

log = logging.getLogger(__name__)

_ENVIRON_KEY = "textgen.after_body"  # the request's callables, in registration order


def call_after_body(fn):
    """Call `fn()` once the server is done with this request's body. It runs outside the
    request's context: it takes what it needs as arguments, not from flask's globals."""
    request.environ.setdefault(_ENVIRON_KEY, []).append(fn)


def run_after_body(wsgi_app):
    """`wsgi_app`, running each request's call_after_body callables when its body closes."""

    def app(environ, start_response):
        try:
            body = wsgi_app(environ, start_response)
        except BaseException:
            _run(environ)
            raise
        if not environ.get(_ENVIRON_KEY):
            return body
        close = getattr(body, "close", None)

        def close_then_run():
            try:
                if close is not None:
                    close()
            finally:
                _run(environ)

        try:
            # Set on the body itself, not on a wrapper: gunicorn sends a body of its
            # file_wrapper's type by sendfile, and any other by iterating it in Python.
            body.close = close_then_run
        except AttributeError:  # a body with nothing to send (HEAD, 304: an empty tuple)
            _run(environ)
        return body

    return app


def _run(environ):
    for fn in environ.pop(_ENVIRON_KEY, ()):
        try:
            fn()
        except Exception:  # noqa: BLE001 - one failing callable must not skip the others
            log.exception("after a response's body: %r failed", fn)
