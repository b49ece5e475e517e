"""The dashboard's files as the API serves them: `/` without a token, every module the page
imports, and its security headers; the /v1 API unchanged beside it. (The page at work in a
browser: tests/test_dashboard.py.)"""

import posixpath
import re

from tests.conftest import client_of

IMPORT = re.compile(r'\bfrom "(\.{1,2}/[\w./-]+)"')  # relative ES module imports


def test_the_page_is_public_and_runs_only_its_own_scripts(app):
    response = client_of(app, None).get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert '<script type="module" src="/dashboard/app.js">' in page
    # The policy forbids inline scripts: one here would silently not run.
    assert "<script>" not in page
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_every_module_the_page_imports_is_served_as_javascript(app):
    client = client_of(app, None)
    pending, seen = ["/dashboard/app.js"], set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        response = client.get(path)
        assert response.status_code == 200, path
        # Browsers run a module only when it comes as JavaScript.
        assert response.mimetype == "text/javascript", (path, response.mimetype)
        base = path.rsplit("/", 1)[0]
        for relative in IMPORT.findall(response.get_data(as_text=True)):
            pending.append(posixpath.normpath(posixpath.join(base, relative)))
    assert {"/dashboard/sse.js", "/dashboard/chart.js", "/dashboard/views/job.js"} <= seen
    assert client.get("/dashboard/dashboard.css").mimetype == "text/css"


def test_a_missing_file_is_a_404_problem(app):
    response = client_of(app, None).get("/dashboard/nothing.js")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_the_api_beside_it_is_unchanged(app):
    assert client_of(app, None).get("/v1/jobs").status_code == 401
    paths = client_of(app, None).get("/v1/openapi.json").get_json()["paths"]
    assert all(path.startswith("/v1/") for path in paths)
