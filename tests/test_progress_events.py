"""A training's `progress` events on the real stack: sent while it trains, twice a second
at most, and followed by `textgen status --follow`'s live bar in a terminal. One job for
the module, a few seconds of a tiny model."""

import os
import re
import sys
from datetime import datetime
from pathlib import Path

import pytest

from client.api_client import Client
from tests.conftest import TOKENS
from tests.terminal import Terminal
from tests.test_end_to_end import TEXT, TINY_DEFAULT
from worker.runs import PROGRESS_EVENT_S

# Three epochs of ~1-2 s each on this stack (the compiled LSTM op trains a tiny model
# about twice as fast as Keras' loop did): a few events an epoch.
SPEC = {**TINY_DEFAULT, "training": {**TINY_DEFAULT["training"], "epochs": 3}}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def api(stack):
    return Client(stack.url, token=TOKENS["alice"])


@pytest.fixture(scope="module")
def followed(api, stack, tmp_path_factory):
    """A training job followed in a terminal from its start: (the job as it ended, its
    events, what the terminal showed)."""
    path = tmp_path_factory.mktemp("progress") / "night.txt"
    path.write_text(TEXT * 36)
    job = api.train(api.upload_corpus(path)["id"], "default", **SPEC)
    # Wide, so that rich draws the bar's every column on one line.
    env = {**os.environ, "TEXTGEN_URL": stack.url, "TEXTGEN_TOKEN": TOKENS["alice"],
           "COLUMNS": "200"}
    terminal = Terminal([sys.executable, "-m", "client", "status", job["id"], "--follow"],
                        env=env, cwd=REPO)
    with terminal:
        assert terminal.wait(timeout_s=120) == 0, terminal.output
    return api.job(job["id"]), list(api.all_events(job["id"])), ANSI.sub("", terminal.output)


def seconds(event):
    return datetime.fromisoformat(event["time"]).timestamp()


def test_progress_events_come_while_training_twice_a_second_at_most(followed):
    job, events, _ = followed
    assert job["status"] == "succeeded", job["error"]
    progress = [e for e in events if e["type"] == "progress"]
    assert len(progress) >= 4, [e["type"] for e in events]
    assert progress[0]["time"] < job["finished_at"]
    # Every event's time comes from the one worker's clock: the gaps are the rate limit.
    gaps = [seconds(b) - seconds(a) for a, b in zip(progress, progress[1:], strict=False)]
    assert min(gaps) >= PROGRESS_EVENT_S - 0.02, gaps
    for event in progress:
        data = event["data"]
        assert set(data) == {"epoch", "epochs", "step", "steps", "fraction", "eta_seconds",
                             "targets_per_s", "loss"}
        assert 1 <= data["epoch"] <= data["epochs"] == 3 and 1 <= data["step"] <= data["steps"]
        assert data["loss"] > 0
    places = [(e["data"]["epoch"], e["data"]["step"]) for e in progress]
    assert places == sorted(places)
    assert progress[-1]["data"]["targets_per_s"] > 0
    # The last is the record's progress as one write left it, the record a write or more on.
    last, record = progress[-1]["data"], job["progress"]
    assert (last["epochs"], last["steps"]) == (record["epochs"], record["steps"])
    assert places[-1] <= (record["epoch"], record["step"])


def test_the_followed_bar_moves_with_the_progress_events(followed):
    """The record is written every 0.2 s on this stack, the events every 0.5 s: a bar that
    followed the record would show steps no event had."""
    job, events, shown = followed
    sent = {(e["data"]["epoch"], e["data"]["step"]) for e in events if e["type"] == "progress"}
    # rich's bar: "epoch 2/3 ━━━━╸━━━  7/19 loss 3.210 2,345 chars/s 0:00:01 job eta ..."
    bars = re.findall(r"epoch (\d)/3 \S+ +(\d+)/(\d+) loss \d\.\d{3} [\d,]+ chars/s", shown)
    assert bars, shown
    # Neither a bar as rich first draws it (0/N) nor at its epoch's end, which the job may
    # have polled while the worker validated and sampled (no event comes meanwhile).
    mid_epoch = {(int(epoch), int(step)) for epoch, step, steps in bars
                 if step not in ("0", steps)}
    assert mid_epoch and mid_epoch <= sent, (mid_epoch, sent)
    assert f"{job['id']} succeeded" in shown
