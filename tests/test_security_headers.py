"""Every route answers with the same security headers: the dashboard's page and files, the
API reference at /docs and its files, and the JSON API; each page under its own policy.
(The pages at work under their policies in a real browser: test_dashboard.py, and
test_docs_page.py for /docs.)"""

import re

import pytest

from api.security_headers import API_POLICY, DASHBOARD_POLICY, DOCS_POLICY
from tests.conftest import client_of

# A value for each URL argument: a file that exists where there is one to serve.
SAMPLE = {"filename": "app.js", "name": "swagger-ui.css", "job_id": "job_x",
          "corpus_id": "cor_x", "model_id": "mdl_x", "sweep_id": "swp_x"}
PAGES = {  # every path that serves the dashboard's page or /docs, and the policy it needs
    "/": DASHBOARD_POLICY, "/dashboard/index.html": DASHBOARD_POLICY,
    "/dashboard/app.js": DASHBOARD_POLICY, "/dashboard/dashboard.css": DASHBOARD_POLICY,
    "/docs": DOCS_POLICY, "/docs/docs.js": DOCS_POLICY,
    "/docs/static/swagger-ui-bundle.js": DOCS_POLICY,
    "/docs/static/swagger-ui.css": DOCS_POLICY,
}


def assert_secure(response, policy):
    assert response.headers["Content-Security-Policy"] == policy
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_every_route_answers_with_the_security_headers(app):
    client = client_of(app)
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: SAMPLE[m.group(1)], rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            page_policy = PAGES.get(path, DASHBOARD_POLICY if rule.endpoint.startswith(
                "dashboard.") else API_POLICY)
            assert_secure(response, page_policy)


@pytest.mark.parametrize("path", sorted(PAGES))
def test_the_pages_and_their_files_carry_their_policy(app, path):
    response = client_of(app, None).get(path)
    assert response.status_code == 200, path
    assert_secure(response, PAGES[path])


def test_no_inline_script_may_run_on_either_page(app):
    for policy in (DASHBOARD_POLICY, DOCS_POLICY):
        script_src = re.search(r"script-src ([^;]*)", policy).group(1)
        assert script_src == "'self'"
    # The policy forbids inline scripts: one on the page would silently not run.
    assert "<script>" not in client_of(app, None).get("/docs").get_data(as_text=True)


@pytest.mark.parametrize("path", ["/static/docs.html", "/static/dashboard/index.html"])
def test_the_pages_are_served_under_their_own_paths_only(app, path):
    # Flask's app-wide /static route served both pages again, without their headers.
    response = client_of(app, None).get(path)
    assert response.status_code == 404
    assert_secure(response, API_POLICY)
