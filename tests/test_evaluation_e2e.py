"""Evaluations on the real stack (gunicorn, Celery workers, Redis, Keras): a char and a
word model side by side on a corpus's held-out tail, through the API and `textgen
evaluate`, the tail's bits agreeing with what training measured on it, and a running
evaluation cancelled."""

import math
import os
import subprocess
import sys
import time

import pytest

from client.api_client import Client
from tests.conftest import TOKENS
from tests.test_cli import REPO
from tests.test_end_to_end import TEXT, TINY_DEFAULT

LN2 = math.log(2)


@pytest.fixture
def api(stack):
    return Client(stack.url, token=TOKENS["alice"])


def trained(api, corpus_id, **overrides):
    spec = {section: {**TINY_DEFAULT.get(section, {}), **overrides.get(section, {})}
            for section in {*TINY_DEFAULT, *overrides}}
    job = api.wait(api.train(corpus_id, "default", **spec)["id"], poll_s=0.2, timeout_s=300)
    assert job["status"] == "succeeded", job["error"]
    return job


def test_a_char_and_a_word_model_side_by_side_on_the_held_out_tail(api, stack, tmp_path):
    path = tmp_path / "night.txt"
    path.write_text(TEXT)
    corpus = api.upload_corpus(path)
    first = trained(api, corpus["id"])
    second = trained(api, corpus["id"], preprocessing={"level": "word", "max_vocab": 20})
    models = [first["result"]["model_id"], second["result"]["model_id"]]

    job = api.evaluate(models, corpus_id=corpus["id"])
    assert job["type"] == "evaluate" and job["spec"]["holdout_fraction"] == 0.1
    job = api.wait(job["id"], poll_s=0.2, timeout_s=120)
    assert job["status"] == "succeeded", job["error"]
    tail = len(TEXT) // 10  # int(len * 0.1) characters, cut as training cut them
    assert job["result"]["chars"] == tail
    rows = job["result"]["models"]
    assert [row["model_id"] for row in rows] == models
    assert [row["level"] for row in rows] == ["char", "word"]
    for row in rows:
        assert row["chars_scored"] == tail and row["overlaps_training"] is False
    # The tail training validated on gives the bits training measured there, but for the
    # state carried across windows here (training starts each window of 32 afresh).
    assert rows[0]["oov_count"] == 0 and rows[0]["bits_per_token"] is None
    assert rows[0]["bits_per_char"] == pytest.approx(first["metrics"]["val_loss"] / LN2,
                                                     rel=0.05)
    # A word model: bits per token, and the same loss over the tail's characters. Its tail
    # is cut in characters here, in tokens in training: a few tokens differ.
    words = rows[1]
    assert words["bits_per_token"] == pytest.approx(second["metrics"]["val_loss"] / LN2,
                                                    rel=0.1)
    assert words["bits_per_char"] == pytest.approx(
        words["bits_per_token"] * words["tokens_scored"] / tail)
    assert words["oov_count"] > 0 and words["oov"]  # 19 words kept of the text's ~30

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
    # The whole corpus: each model trained on most of it, and the table says so.
    whole = textgen("evaluate", models[0], "--corpus", corpus["id"], "--all").stdout
    assert whole.splitlines()[1].endswith("trained on part of this text")

    # Listed by type, and its status shows the table.
    # Other tests on this session's stack evaluate as alice too: only this test's jobs count.
    header, *listed = textgen("jobs", "--type", "evaluate").stdout.splitlines()
    ours = [line for line in listed if models[0] in line]
    assert len(ours) == 4 and ours[1].endswith(f"of {models[0]}, {models[1]}")
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
