"""Evaluations on the real stack (gunicorn, Celery workers, Redis, Keras): two trained
models side by side on a corpus's held-out tail, through the API and `textgen evaluate`,
and the tail's bits per character agreeing with what training measured on it."""

import os
import subprocess
import sys
import time

import pytest

from client.api_client import Client
from tests.conftest import TOKENS
from tests.test_cli import REPO
from tests.test_end_to_end import TEXT, TINY_DEFAULT


@pytest.fixture
def api(stack):
    return Client(stack.url, token=TOKENS["alice"])


def trained(api, corpus_id, **overrides):
    spec = {section: {**TINY_DEFAULT[section], **overrides.get(section, {})}
            for section in TINY_DEFAULT}
    job = api.wait(api.train(corpus_id, "default", **spec)["id"], poll_s=0.2, timeout_s=300)
    assert job["status"] == "succeeded", job["error"]
    return job


def test_two_models_side_by_side_on_the_held_out_tail(api, stack, tmp_path):
    path = tmp_path / "night.txt"
    path.write_text(TEXT)
    corpus = api.upload_corpus(path)
    first = trained(api, corpus["id"])
    second = trained(api, corpus["id"], model={"units": 8}, training={"epochs": 1})
    models = [first["result"]["model_id"], second["result"]["model_id"]]

    job = api.evaluate(models, corpus_id=corpus["id"])
    assert job["type"] == "evaluate" and job["spec"]["holdout_fraction"] == 0.1
    job = api.wait(job["id"], poll_s=0.2, timeout_s=120)
    assert job["status"] == "succeeded", job["error"]
    tail = len(TEXT) // 10  # int(len * 0.1) characters, cut as training cut them
    assert job["result"]["chars"] == tail
    rows = job["result"]["models"]
    assert [row["model_id"] for row in rows] == models
    for row, training in zip(rows, (first, second), strict=True):
        assert row["chars_scored"] == tail and row["oov_count"] == 0
        assert row["overlaps_training"] is False and row["bits_per_token"] is None
        # The same tail training validated on: the same bits per char, but for the state
        # carried across windows here (training starts each window of 32 afresh).
        assert row["bits_per_char"] == pytest.approx(training["metrics"]["bits_per_char"],
                                                     rel=0.05)
    assert rows[0]["bits_per_char"] < rows[1]["bits_per_char"]  # more units, more epochs

    # A text with characters the model never saw: skipped, counted, listed.
    job = api.wait(api.evaluate(models[:1], text="It was on a night§ of Zebras§")["id"],
                   poll_s=0.2, timeout_s=60)
    [row] = job["result"]["models"]
    assert row["oov_count"] == 3 and row["oov"] == ["§", "Z"]
    assert row["chars_scored"] == len("It was on a night of ebras")
    assert row["overlaps_training"] is None

    # The command line prints the table, one model a line.
    env = {**os.environ, "TEXTGEN_URL": stack.url, "TEXTGEN_TOKEN": TOKENS["alice"]}

    def textgen(*args):
        done = subprocess.run([sys.executable, "-m", "client", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    done = textgen("evaluate", *models, "--corpus", corpus["id"])
    header, *lines = done.stdout.splitlines()
    assert header.split()[:2] == ["MODEL", "BITS/CHAR"]
    assert [line.split()[0] for line in lines] == models
    assert [float(line.split()[1]) for line in lines] == pytest.approx(
        [row["bits_per_char"] for row in rows], abs=1e-3)
    assert "scoring the last 0.1 of corpus" in done.stderr
    # Listed by type, and its status shows the table.
    header, *listed = textgen("jobs", "--type", "evaluate").stdout.splitlines()
    assert len(listed) == 3 and listed[0].endswith(f"of {models[0]}, {models[1]}")
    shown = textgen("status", job["id"]).stdout
    assert f"{job['id']} succeeded: 1 model scored on 29 characters" in shown
    assert models[0] in shown and "'§' 'Z'" in shown

    # A running evaluation cancels: the worker stops scoring between two chunks and takes
    # the next job at once. 2 models x 15 MB keep it busy for many seconds otherwise.
    big = tmp_path / "big.txt"
    big.write_text(TEXT * 3000)
    long = api.evaluate(models, corpus_id=api.upload_corpus(big)["id"], part="all")
    deadline = time.monotonic() + 60
    while api.job(long["id"])["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api.cancel(long["id"])["status"] == "cancelled"
    started = time.monotonic()
    short = api.wait(api.evaluate(models[:1], text="It was")["id"], poll_s=0.1, timeout_s=30)
    assert short["status"] == "succeeded" and time.monotonic() - started < 10
    assert api.job(long["id"])["status"] == "cancelled"
