"""The web dashboard: `/` and its files (api/static/dashboard/), plain HTML, CSS and
JavaScript modules that call the /v1 API from the browser.

Public, like /docs: the page holds no token. The user signs in with theirs, which stays in
the browser's sessionStorage and travels only in Authorization headers, so the API's owner
checks are the only ones. No build step and no CDN: the files are served as they are.
"""

from flask import Blueprint, send_from_directory

bp = Blueprint("dashboard", __name__, static_folder="static/dashboard",
               static_url_path="/dashboard")

# The token lives in sessionStorage, so script injection would be the way to steal it:
# only our own scripts and styles run, and the API is the only place the page talks to.
# blob: images are the model download (a link to a blob URL made from the fetched zip).
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data: blob:; connect-src 'self'; "
                           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@bp.get("/")
def index():
    return send_from_directory(bp.static_folder, "index.html")


@bp.after_request
def secure_headers(response):
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
