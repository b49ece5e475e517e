"""The dashboard in a real browser: headless Chromium drives the page at `/` against the
real stack (gunicorn, Celery workers, Redis, Keras), as a person would: sign in, upload,
train, watch, generate, download; and a second owner sees none of it.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them); without them
these tests skip. Screenshots of the job and model pages go to the test's tmp_path.
"""

import os

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from client.api_client import Client
from tests.conftest import TEST_REDIS_URL, TOKENS
from tests.faults import lose_attempt, stack_jobs, unsent_training_job
from tests.test_end_to_end import TEXT

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Chromium without what a test has no use for: no sandbox (we run as root in CI), no GPU,
# /tmp instead of a small /dev/shm, no background updates or sync talking to the network.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--window-size=1280,900")
TRAIN_TIMEOUT_S = 120  # a tiny model trains in seconds; the margin is for a busy machine
WAIT_S = 20  # anything else the page shows after a request or two

pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason=f"{CHROMIUM} and {CHROMEDRIVER} are needed (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_experimental_option("prefs", {
        "download.default_directory": str(tmp_path_factory.mktemp("downloads"))})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(browser, condition, what, timeout_s=WAIT_S):
    """condition(browser)'s first truthy value; on timeout, fail with what the page says."""
    try:
        # Live parts of the page are redrawn: an element found may be gone when looked at.
        return WebDriverWait(browser, timeout_s, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(
            condition)
    except TimeoutException:
        text = browser.find_element(By.TAG_NAME, "body").text[:1500]
        console = [entry["message"] for entry in browser.get_log("browser")]
        pytest.fail(f"timed out after {timeout_s} s waiting for {what}\n--- page ---\n{text}"
                    f"\n--- console ---\n" + "\n".join(console))


def visible(selector):
    def find(browser):
        found = [e for e in browser.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()]
        return found[0] if found else None
    return find


def card_text(browser):
    """The job page's card: its text and its attempts' rows, read in one go (wait_for
    reads again when a redraw replaced them meanwhile)."""
    head = browser.find_element(By.CSS_SELECTOR, "#view > .page > .card")
    return head.text, [row.text for row in head.find_elements(
        By.CSS_SELECTOR, "table.attempts tbody tr")]


def sign_in(browser, url, token):
    browser.get(url + "/#/signin")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    wait_for(browser, visible("#token"), "the sign-in form").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "form.signin button[type=submit]").click()


def save_screenshot(browser, path):
    """The whole page, not only the window: the window grows to the page's height."""
    width = browser.get_window_size()["width"]
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, min(height + 120, 2400))
    browser.save_screenshot(str(path))
    browser.set_window_size(width, 900)


def test_sign_in_train_watch_and_generate(stack, browser, tmp_path):
    sign_in(browser, stack.url, TOKENS["alice"])
    wait_for(browser, visible("table.jobs"), "the jobs list")

    # Upload a corpus and start a tiny model from the form.
    browser.find_element(By.LINK_TEXT, "New training").click()
    corpus = tmp_path / "night.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    wait_for(browser, visible("#file"), "the training form").send_keys(str(corpus))
    Select(browser.find_element(By.ID, "preset")).select_by_value("default")
    for field, value in {"epochs": 2, "units": 32, "layers": 1, "seq_length": 32,
                         "batch_size": 16}.items():
        browser.find_element(By.ID, field).send_keys(str(value))
    browser.find_element(By.ID, "start").click()

    # The job page follows the job live until it succeeds, with a chart of both losses.
    wait_for(browser, lambda d: "#/jobs/job_" in d.current_url, "the new job's page")
    job_id = browser.current_url.rsplit("/", 1)[1]
    wait_for(browser, visible(".card .page-head .status[data-status=succeeded]"),
             "the job to succeed", timeout_s=TRAIN_TIMEOUT_S)
    for series in ("loss", "val-loss"):
        path = wait_for(browser, visible(f"svg.loss-chart .series.{series} path"),
                        f"the {series} line")
        assert path.get_attribute("d").count("L") == 1  # two epochs: one segment
    samples = browser.find_elements(By.CSS_SELECTOR, ".epoch-sample pre.sample")
    assert len(samples) == 2 and all(len(s.text) > 100 for s in samples)
    logged = [row.text for row in browser.find_elements(By.CSS_SELECTOR,
                                                         "table.events tr[data-type=status]")]
    assert [text.split()[-1] for text in logged] == ["queued", "running", "succeeded"]
    # Ended: where it stopped, no bar; what the model is; what its bits come from.
    head = browser.find_element(By.CSS_SELECTOR, "#view > .page > .card")
    assert not head.find_elements(By.CSS_SELECTOR, ".bar")
    assert "epochs run 2/2" in head.text and "Time left" not in head.text
    assert "Model shape\n1 × 32 LSTM, dropout 0, learning rate 0.01" in head.text
    assert "Bits per character (from validation loss)\n" in head.text
    save_screenshot(browser, tmp_path / "job.png")

    # The list shows it too, newest first, with its losses.
    browser.find_element(By.LINK_TEXT, "Jobs").click()
    row = wait_for(browser, visible(f"tr[data-job-id='{job_id}']"), "the job in the list")
    assert row.get_attribute("data-status") == "succeeded"
    assert browser.find_elements(By.CSS_SELECTOR, "table.jobs tbody tr")[0] == row
    assert "epochs run 2/2" in row.text and not row.find_elements(By.CSS_SELECTOR, ".bar")

    # Its model: download the zip (fetched with the token) and generate text.
    browser.get(f"{stack.url}/#/jobs/{job_id}")
    wait_for(browser, visible("a.id[href^='#/models/']"), "the model link").click()
    wait_for(browser, visible("#download"), "the download button").click()
    link = wait_for(browser, visible("#download-link"), "the downloaded zip")
    assert link.get_attribute("href").startswith("blob:")
    assert link.get_attribute("download").endswith(".zip")

    prompt = browser.find_element(By.NAME, "prompt")
    prompt.send_keys("It was")
    length = browser.find_element(By.NAME, "length")
    length.clear()
    length.send_keys("40")
    browser.find_element(By.NAME, "seed").send_keys("7")
    browser.find_element(By.CSS_SELECTOR, "form.generate button[type=submit]").click()
    # The finished job's sample, not the live box its text events filled meanwhile.
    sample = wait_for(browser, visible(".generated pre.sample:not(.live)"), "the generated text")
    assert sample.find_element(By.TAG_NAME, "mark").text == "It was"
    assert len(sample.get_attribute("textContent")) == len("It was") + 40
    assert set(sample.get_attribute("textContent")) <= set(TEXT)
    save_screenshot(browser, tmp_path / "model.png")
    # The generation job in the list: its sample, not an empty "0 %" bar.
    browser.find_element(By.LINK_TEXT, "Jobs").click()
    generated = wait_for(browser, visible("table.jobs tbody tr[data-status=succeeded]"),
                         "the generation job in the list")
    assert "generate" in generated.text and "1 sample" in generated.text
    assert "%" not in generated.text and not generated.find_elements(By.CSS_SELECTOR, ".bar")
    browser.back()
    length = wait_for(browser, visible("form.generate [name=length]"), "the model page")

    # Bad input is a readable problem, not a blank page.
    length.clear()
    length.send_keys("0")
    browser.find_element(By.CSS_SELECTOR, "form.generate button[type=submit]").click()
    problem = wait_for(browser, visible(".generated .problem"), "the 422 problem")
    assert problem.get_attribute("data-status") == "422" and "length" in problem.text

    # A long generation: its text shows while the worker samples it.
    length.clear()
    length.send_keys("100000")
    browser.find_element(By.CSS_SELECTOR, "form.generate button[type=submit]").click()
    wait_for(browser, lambda d: len(d.find_element(
        By.CSS_SELECTOR, ".generated pre.sample.live").get_attribute("textContent")) > 10,
        "the text as it is sampled")
    alice = Client(stack.url, token=TOKENS["alice"])
    running = next(iter(alice.jobs(type="generate")))
    assert running["status"] == "running"
    alice.cancel(running["id"])
    wait_for(browser, visible(".generated .problem"), "the cancelled job")


def test_another_owner_sees_none_of_the_jobs(stack, browser, tmp_path):
    alice = Client(stack.url, token=TOKENS["alice"])
    path = tmp_path / "alice.txt"
    path.write_text(TEXT, encoding="utf-8")
    corpus = alice.upload_corpus(path)
    job = alice.train(corpus["id"], "default", training={"epochs": 1})
    alice.cancel(job["id"])  # listed all the same; no need to keep a worker busy

    sign_in(browser, stack.url, TOKENS["bob"])
    wait_for(browser, visible("table.jobs tbody tr"), "bob's jobs list")
    assert job["id"] not in browser.page_source
    browser.get(f"{stack.url}/#/train")
    wait_for(browser, visible("#corpus"), "the training form")
    assert corpus["id"] not in browser.page_source

    # Alice's job by its address: the API answers 404, and the page says so.
    browser.get(f"{stack.url}/#/jobs/{job['id']}")
    problem = wait_for(browser, visible(".problem[data-status='404']"), "the 404 problem")
    assert job["id"] in problem.text

    # A token the API refuses: a clear message, and the page asks for another.
    sign_in(browser, stack.url, "not-a-token")
    problem = wait_for(browser, visible(".problem[data-status='401']"), "the 401 problem")
    assert "not valid" in problem.text
    # One that stops working while the page is open (revoked, say): back to sign in.
    browser.execute_script("sessionStorage.setItem('textgen.token', 'revoked-token');"
                           "location.hash = '#/jobs'")
    problem = wait_for(browser, visible(".problem[data-status='401']"), "the 401 notice")
    assert "not accepted" in problem.text and browser.current_url.endswith("#/signin")


def test_a_job_that_ran_twice_shows_each_attempt_and_what_its_numbers_mean(stack, browser):
    """The job store's own steps play the workers: attempt 1's dies (a lease of 1 ms,
    reaped), attempt 2's reports progress without validation yet, then fails."""
    jobs = stack_jobs(stack, TEST_REDIS_URL)
    job_id = unsent_training_job(jobs)
    lose_attempt(jobs, job_id, "worker-a")
    jobs.start(job_id, "worker-b", lease_ms=600_000)
    jobs.report_progress(job_id, 2, {"epoch": 1, "epochs": 5, "step": 3, "steps": 10,
                                     "fraction": 0.06, "eta_seconds": 95.0},
                         {"loss": 2.0, "val_loss": None, "bits_per_char": 2.885})

    # At 1280 px the sign-in button's label stays on one line.
    browser.get(f"{stack.url}/#/signin")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    button = wait_for(browser, visible("form.signin button[type=submit]"), "the sign-in form")
    assert browser.get_window_size()["width"] == 1280
    assert browser.execute_script("const range = document.createRange(); "
                                  "range.selectNodeContents(arguments[0]); "
                                  "return range.getClientRects().length", button) == 1
    sign_in(browser, stack.url, TOKENS["alice"])
    wait_for(browser, visible("table.jobs"), "the jobs list")
    browser.get(f"{stack.url}/#/jobs/{job_id}")
    wait_for(browser, visible("table.attempts"), "the attempts")
    text, rows = wait_for(browser, card_text, "the job's card")
    assert "Bits per character (from training loss)\n2.885" in text
    assert "Time left (estimate)\n1 min 35 s" in text
    assert "over 2 attempts" in text
    assert len(rows) == 2 and rows[0].startswith("1 ") and "worker-a" in rows[0]
    assert rows[0].endswith("lost: the worker of attempt 1 stopped answering")
    assert "worker-b" in rows[1] and rows[1].endswith("running")

    jobs.fail(job_id, 2, "boom", "it broke")
    wait_for(browser, visible(".card .page-head .status[data-status=failed]"), "the failure")
    text, _ = wait_for(browser, card_text, "the job's card")
    assert "Time left" not in text and not browser.find_elements(
        By.CSS_SELECTOR, "#view > .page > .card .bar")
    outcomes = wait_for(browser, lambda b: [row.get_attribute("data-outcome") for row in
                                            b.find_elements(By.CSS_SELECTOR,
                                                            "table.attempts tbody tr")],
                        "the attempts' outcomes")
    assert outcomes == ["lost", "failed"]


def test_a_training_jobs_bar_follows_its_progress_events_and_the_record_when_they_stop(
        stack, browser):
    """The job store's own steps play the worker, writing a progress event unlike the
    record it goes with: the bar that shows the event's is fed by the stream."""
    jobs = stack_jobs(stack, TEST_REDIS_URL)
    job_id = unsent_training_job(jobs)
    jobs.start(job_id, "worker-a", lease_ms=600_000)
    sign_in(browser, stack.url, TOKENS["alice"])
    wait_for(browser, visible("table.jobs"), "the jobs list")
    browser.get(f"{stack.url}/#/jobs/{job_id}")
    wait_for(browser, visible("table.events tr[data-type=status]:nth-child(2)"), "running")
    wait_for(browser, visible(".card .progress[title='0 %']"), "the page, as the record is")

    progress = {"epoch": 1, "epochs": 5, "step": 3, "steps": 10, "eta_seconds": 95.0}
    jobs.report_progress(job_id, 1, {**progress, "fraction": 0.1}, {"loss": 2.0},
                         event={**progress, "fraction": 0.7, "loss": 1.5})
    wait_for(browser, visible(".card .progress[title='70 %']"), "the event's progress")
    head = browser.find_element(By.CSS_SELECTOR, "#view > .page > .card")
    assert "Loss\n1.500" in head.text
    assert not browser.find_elements(By.CSS_SELECTOR, "table.events tr[data-type=progress]")
    # No progress event for 2 s: the page reads the record again.
    wait_for(browser, visible(".card .progress[title='10 %']"), "the record's progress")
    jobs.cancel(job_id)


def test_the_model_page_shows_its_evaluations(stack, browser, tmp_path):
    from tests.test_end_to_end import TINY_DEFAULT

    alice = Client(stack.url, token=TOKENS["alice"])
    path = tmp_path / "night.txt"
    path.write_text(TEXT, encoding="utf-8")
    corpus = alice.upload_corpus(path)
    job = alice.wait(alice.train(corpus["id"], "default", **TINY_DEFAULT)["id"], poll_s=0.2,
                     timeout_s=TRAIN_TIMEOUT_S)
    model_id = job["result"]["model_id"]
    evaluation = alice.wait(alice.evaluate([model_id], corpus_id=corpus["id"])["id"],
                            poll_s=0.2, timeout_s=60)
    assert evaluation["status"] == "succeeded", evaluation["error"]
    [row] = evaluation["result"]["models"]

    sign_in(browser, stack.url, TOKENS["alice"])
    wait_for(browser, visible("table.jobs"), "the jobs list")
    browser.get(f"{stack.url}/#/models/{model_id}")
    article = wait_for(browser, visible(f".evaluations [data-job-id='{evaluation['id']}']"),
                       "the model's evaluation")
    cell = article.find_element(By.CSS_SELECTOR, f"tr.current[data-model-id='{model_id}'] .bits")
    assert cell.text == f"{row['bits_per_char']:.4f}"
    save_screenshot(browser, tmp_path / "model-evaluations.png")
    # The evaluation job's own page shows the same table.
    article.find_element(By.CSS_SELECTOR, f"a[href='#/jobs/{evaluation['id']}']").click()
    cell = wait_for(browser, visible(".result table.evaluation .bits"), "the job's table")
    assert cell.text == f"{row['bits_per_char']:.4f}"
    assert "Evaluation job" in browser.find_element(By.TAG_NAME, "h1").text


def trial_rows(browser):
    """(status, text) of each row of the trials table, read at once: the page redraws it."""
    return browser.execute_script(
        "return [...document.querySelectorAll('table.trials tbody tr[data-trial]')]"
        ".map((row) => [row.dataset.status, row.innerText])")


def test_a_sweeps_page_shows_its_trials_and_their_curves_live_and_cancels(stack, browser,
                                                                            tmp_path):
    from tests.test_end_to_end import TINY_DEFAULT

    alice = Client(stack.url, token=TOKENS["alice"])
    path = tmp_path / "night.txt"
    path.write_text(TEXT, encoding="utf-8")
    corpus = alice.upload_corpus(path)
    # A long job holds the one training worker meanwhile: the sweeps' trials wait, so one
    # is cancelled before any runs and the other's page opens before it starts.
    blocker = alice.train(corpus["id"], "default", **{
        **TINY_DEFAULT, "training": {**TINY_DEFAULT["training"], "epochs": 1000}})
    # Two tiny trials each, run one after the other on the one training worker.
    watched, cancelled = (alice.sweep(corpus["id"], {"training.learning_rate": [0.03, 0.00001]},
                                      trial_seconds=20, trials=2, **TINY_DEFAULT)
                          for _ in range(2))
    sign_in(browser, stack.url, TOKENS["alice"])
    wait_for(browser, visible("table.jobs"), "the jobs list")

    # Cancel from the page: the sweep and its trials.
    browser.find_element(By.LINK_TEXT, "Sweeps").click()
    wait_for(browser, visible(f"tr[data-sweep-id='{cancelled['id']}'] a"),
             "the sweeps list").click()
    wait_for(browser, visible("#cancel"), "the cancel button").click()
    wait_for(browser, visible(".card .page-head .status[data-status=cancelled]"),
             "the cancelled sweep")
    assert [status for status, _ in trial_rows(browser)] == ["cancelled", "cancelled"]

    # Opened while its trials wait, the page follows the sweep's events to its end.
    browser.get(f"{stack.url}/#/sweeps/{watched['id']}")
    wait_for(browser, visible("#cancel"), "the running sweep's cancel button")
    assert browser.find_element(By.CSS_SELECTOR, ".chart-empty")
    assert [status for status, _ in trial_rows(browser)] == ["queued", "queued"]
    alice.cancel(blocker["id"])
    wait_for(browser, visible(".card .page-head .status[data-status=succeeded]"),
             "the sweep to end", timeout_s=TRAIN_TIMEOUT_S)
    ended = alice.sweep_status(watched["id"])
    rows = trial_rows(browser)
    assert [status for status, _ in rows] == [trial["status"] for trial in ended["trials"]]
    for trial, (_, text) in zip(ended["trials"], rows):
        assert trial["job_id"] in text and f"{trial['best_val_loss']:.4f}" in text
        assert browser.find_element(By.CSS_SELECTOR, f"a[href='#/jobs/{trial['job_id']}']")
        # Its curve: a point per epoch it reported (its rung).
        line = wait_for(browser, visible(
            f"svg.loss-chart .series.trial[data-trial='{trial['number']}'] path"),
            f"trial {trial['number']}'s curve")
        assert line.get_attribute("d").count("L") == trial["rung"] - 1
    best = str(ended["best"]["number"])
    assert browser.find_element(By.CSS_SELECTOR, "table.trials tr.best").get_attribute(
        "data-trial") == best
    assert browser.find_element(By.CSS_SELECTOR, "svg.loss-chart g.series.best").get_attribute(
        "data-trial") == best
    assert not browser.find_elements(By.ID, "cancel")
    save_screenshot(browser, tmp_path / "sweep.png")

    # Bob gets the API's 404 for Alice's sweep, and sees none of hers listed.
    sign_in(browser, stack.url, TOKENS["bob"])
    wait_for(browser, visible("table.jobs"), "bob's jobs list")
    browser.get(f"{stack.url}/#/sweeps/{watched['id']}")
    wait_for(browser, visible(".problem[data-status='404']"), "the 404 problem")
    browser.get(f"{stack.url}/#/sweeps")
    wait_for(browser, visible("table.sweeps tbody tr"), "bob's sweeps list")
    assert watched["id"] not in browser.page_source
