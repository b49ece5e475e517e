"""/docs in a real browser under its Content-Security-Policy: Swagger UI starts, takes a
token and sends a request, and the browser reports no violation of the policy. (Skips
without Chromium, as test_dashboard.py does.)"""

from selenium.webdriver.common.by import By

from tests.conftest import TOKENS
# The browser fixture, and the mark that skips without Chromium, are the dashboard test's.
from tests.test_dashboard import browser, pytestmark, wait_for  # noqa: F401


def test_swagger_ui_runs_under_the_docs_policy(stack, browser):  # noqa: F811 - the fixture
    browser.get(stack.url + "/docs")
    operations = wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, ".opblock"),
                          "Swagger UI's list of operations")
    browser.find_element(By.CSS_SELECTOR, ".authorize").click()
    browser.find_element(By.CSS_SELECTOR, ".modal-ux input").send_keys(TOKENS["alice"])
    browser.find_element(By.CSS_SELECTOR, ".modal-ux .authorize").click()
    browser.find_element(By.CSS_SELECTOR, ".modal-ux .close-modal").click()
    [jobs] = [op for op in operations if op.text.startswith("GET\n/v1/jobs\n")]
    jobs.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait_for(browser, lambda b: jobs.find_element(By.CSS_SELECTOR, ".try-out__btn"),
             "the Try it out button").click()
    jobs.find_element(By.CSS_SELECTOR, ".execute").click()
    wait_for(browser, lambda b: '"has_more"' in jobs.text, "the answer to GET /v1/jobs")
    violations = [entry["message"] for entry in browser.get_log("browser")
                  if "Content Security Policy" in entry["message"]]
    assert violations == []
