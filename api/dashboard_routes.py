"""The web dashboard: `/` and its files (api/static/dashboard/), plain HTML, CSS and
JavaScript modules that call the /v1 API from the browser.

Public, like /docs: the page holds no token. The user signs in with theirs, which stays in
the browser's sessionStorage and travels only in Authorization headers, so the API's owner
checks are the only ones. No build step and no CDN: the files are served as they are. Their
security headers (a policy that runs only our own scripts): api/security_headers.py.
"""

from flask import Blueprint, send_from_directory

bp = Blueprint("dashboard", __name__, static_folder="static/dashboard",
               static_url_path="/dashboard")

@bp.get("/")
def index():
    return send_from_directory(bp.static_folder, "index.html")

