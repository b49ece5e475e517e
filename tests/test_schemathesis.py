"""Schemathesis (`--checks all`) against the live API: gunicorn serving the real app on
real Redis, with a token, over every operation of /v1/openapi.json.

One schemathesis worker: with two, CPython 3.11's ast module (which hypothesis uses to
describe its strategies) raised "AST constructor recursion depth mismatch" inside
schemathesis now and then, an error of the tool, not of the API.

No Celery worker runs: fuzzed training jobs (10,000 epochs of 4,096 units...) stay queued
instead of occupying the machine. A corpus, a job, a sweep (its trials stay queued too) and
models are stored first, so that listings have ids to hand out (no request makes a model).
Operations that take an id reach their real logic through the stateful phase, which chains
them by the document's links (a corpus uploaded, trained on, the job read, cancelled,
deleted; a model listed, read, downloaded) with ids the fuzzer's own owner got. No ids are
fixed in the config: schemathesis lets them override the links'.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from shared.stack.runner import api_command, free_port
from tests.api_helpers import registered_model
from tests.conftest import TOKENS

pytestmark = pytest.mark.stack  # the API under gunicorn, and st

REPO = Path(__file__).resolve().parents[1]
# Per operation and phase: ~1,200 cases, ~15 s on 2 cores. A longer hunt, by hand:
# TEXTGEN_SCHEMATHESIS_EXAMPLES=500 TEXTGEN_SCHEMATHESIS_SEED=7 pytest tests/test_schemathesis.py
MAX_EXAMPLES = int(os.environ.get("TEXTGEN_SCHEMATHESIS_EXAMPLES", "25"))
SEED = os.environ.get("TEXTGEN_SCHEMATHESIS_SEED", "1")

# Requests that are valid by the schema but refused by what it cannot say: a training job
# over the memory limit, on a GPU no worker has, or on a corpus with characters a model
# never saw; a prompt with such characters, a generation over the time limit, num_samples x
# temperatures over 64, an evaluation of a tutorial-architecture model or over that time
# limit. Each is a 422 with its own code (tests/test_api.py checks them one
# by one). A corpus is not among them: the schema says what text it takes.
SEMANTIC_422 = ["POST /v1/train", "POST /v1/generate", "POST /v1/evaluations",
                "POST /v1/sweeps"]
# Only a generation job that succeeded has a result, and no worker runs here: the fuzzer
# reaches its real answers (409 while the job is queued, 404 for a training job), never a
# 200, which schemathesis calls missing test data (tests/test_results.py serves results).
NEEDS_A_WORKER = {"GET /v1/jobs/{job_id}/result"}


@pytest.fixture
def live_api(settings, services, tmp_path, gutenberg_url):
    port = free_port()
    env = {**os.environ, "REDIS_URL": settings.redis_url,
           "TEXTGEN_REDIS_PREFIX": settings.redis_prefix,
           "TEXTGEN_DATA_DIR": str(settings.data_dir),
           "TEXTGEN_API_TOKENS": ",".join(f"{n}:{t}" for n, t in TOKENS.items()),
           "TEXTGEN_MAX_UPLOAD_MB": "0.1", "TEXTGEN_LOG_LEVEL": "WARNING",
           "TEXTGEN_GUTENBERG_URL": gutenberg_url}
    log = open(tmp_path / "api.log", "wb")
    server = subprocess.Popen(api_command(sys.executable, port), cwd=REPO, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(url + "/v1/openapi.json", timeout=10)
            break
        except requests.RequestException:
            assert server.poll() is None and time.monotonic() < deadline, "API did not start"
            time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(timeout=10)
    log.close()


def test_schemathesis_finds_no_server_error_and_no_schema_break(live_api, services, tmp_path):
    headers = {"Authorization": f"Bearer {TOKENS['alice']}"}
    corpus = requests.post(live_api + "/v1/corpora", headers=headers,
                           files={"file": ("c.txt", b"abc def\nghi\n" * 50)}).json()
    requests.post(live_api + "/v1/train", headers=headers, json={"corpus_id": corpus["id"]})
    requests.post(live_api + "/v1/sweeps", headers=headers, json={
        "corpus_id": corpus["id"], "space": {"model.units": [8, 16]}, "trial_seconds": 5})
    # The fuzzer deletes models too: one left for every other operation. The oldest, which
    # links (newest first) reach last, is given to evaluations: no link fills their list of
    # model ids reliably in a run this short.
    model_id = [registered_model(services)["id"] for _ in range(3)][0]
    config = tmp_path / "schemathesis.toml"
    config.write_text("\n".join([
        # 413 and 414 are rejections too: a body over TEXTGEN_MAX_UPLOAD_MB, and gunicorn's
        # answer to a request line over 4,094 bytes.
        "[checks.negative_data_rejection]",
        'expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "414",'
        ' "415", "422", "428", "429"]',
        "[parameters]",
        f'"body.model_ids" = ["{model_id}"]',
        *[f'[[operations]]\ninclude-name = "{name}"\n'
          '[operations.checks.positive_data_acceptance]\n'
          'expected-statuses = ["2xx", "401", "404", "409", "422", "429"]'
          # A sweep's corpus: the one stored above, which its queued jobs keep from being
          # deleted. Links alone hand the sweep corpora the fuzzer has deleted meanwhile.
          + (f'\n[operations.parameters]\n"body.corpus_id" = "{corpus["id"]}"'
             # The coverage phase makes no valid SweepRequest ("No coverage cases could be
             # generated"), yet paired its invalid stand-in body (`0`) with a valid
             # Idempotency-Key and called it a valid request (schemathesis 4.32.5): there,
             # invalid requests only. The fuzzing phase makes valid ones.
             '\n[operations.phases.coverage.generation]\nmode = "negative"'
             if name == "POST /v1/sweeps" else "")
          for name in SEMANTIC_422],
    ]) + "\n")
    run = subprocess.run(
        [str(Path(sys.executable).with_name("st")), "--config-file", str(config), "run",
         live_api + "/v1/openapi.json", "--checks", "all",
         "--header", f"Authorization: Bearer {TOKENS['alice']}",
         "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--seed", SEED,
         "--no-color"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    (tmp_path / "schemathesis.out").write_text(run.stdout)
    summary = run.stdout[run.stdout.rfind("SUMMARY"):]
    print(summary)  # the figures for the note: cases generated, failures, phases
    assert run.returncode == 0, run.stdout[-6000:]
    assert re.search(r"\d+ generated", summary)
    assert "Selected: 27/27" in summary and "Tested: 27" in summary
    # Every operation got past 404 (no "Missing test data"), and links were followed.
    assert _missing_test_data(run.stdout) <= NEEDS_A_WORKER, run.stdout[-6000:]
    assert int(re.search(r"API Links: +(\d+) covered", run.stdout)[1]) > 0


def _missing_test_data(output):
    """The operations schemathesis' warning lists as only ever answering 404: the lines
    `  - METHOD /path` up to the next warning ("Title: N operations ...") or section."""
    found = re.search(r"Missing test data:.*?(?=\n[A-Z][\w ]+: \d+ operations? |\n=+)",
                      output, re.DOTALL)
    lines = found[0].splitlines() if found else []
    return {line.strip()[2:] for line in lines if line.startswith("  - ")}
