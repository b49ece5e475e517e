"""The security headers of every answer, set in one place: the dashboard, its files, the
API reference at /docs and the JSON API alike carry the same set (nosniff, no referrer, a
Content-Security-Policy); only the policy differs, each as strict as its page allows.
"""

from flask import request

# The dashboard keeps its token in sessionStorage, so script injection would be the way to
# steal it: only our own scripts and styles run, and the API is the only place the page
# talks to. blob: images are the model download (a link to a blob URL of the fetched zip).
DASHBOARD_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                    "img-src 'self' data: blob:; connect-src 'self'; "
                    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
# Swagger UI (a token can be typed into it too): the same, but for its icons, which are
# data: SVGs. No inline script: the page's own start is a file (api/static/docs.js).
DOCS_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; "
               "img-src 'self' data:; connect-src 'self'; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
# JSON and problem answers: nothing in them may run or be framed, if a browser renders one.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"

_DOCS_ENDPOINTS = {"openapi.docs", "openapi.docs_script", "openapi.docs_static"}


def register(app):
    @app.after_request
    def secure_headers(response):
        if request.endpoint in _DOCS_ENDPOINTS:
            policy = DOCS_POLICY
        elif request.blueprint == "dashboard":
            policy = DASHBOARD_POLICY
        else:
            policy = API_POLICY
        response.headers["Content-Security-Policy"] = policy
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
