"""A generation's text streamed on the real stack: `text` events through gunicorn's event
stream while the worker samples, resumed with Last-Event-ID, and printed by
`textgen generate --stream`. One tiny model for the module."""

import json
import os
import subprocess
import sys

import pytest

from client.api_client import Client
from client.sse import parse
from tests.conftest import TOKENS
from tests.test_end_to_end import TEXT, TINY_DEFAULT


@pytest.fixture(scope="module")
def api(stack):
    return Client(stack.url, token=TOKENS["alice"])


@pytest.fixture(scope="module")
def model_id(api, tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "night.txt"
    path.write_text(TEXT)
    job = api.train(api.upload_corpus(path)["id"], "default", **TINY_DEFAULT)
    job = api.wait(job["id"], poll_s=0.2, timeout_s=120)
    assert job["status"] == "succeeded", job["error"]
    return job["result"]["model_id"]


def joined(events, count):
    texts = [""] * count
    for event in events:
        if event["type"] == "text":
            for delta in event["data"]["deltas"]:
                texts[delta["sample"]] += delta["text"]
    return texts


def test_deltas_arrive_while_sampling_and_join_into_the_result(api, model_id):
    # Two temperatures of two samples: the samples are numbered over the job.
    job = api.generate(model_id, prompt="It was", length=12_000, num_samples=2,
                       temperature=[0.5, 1.0], seed=1)
    events = list(api.stream_events(job["id"]))
    job = api.job(job["id"])
    assert job["status"] == "succeeded", job["error"]
    texts = [sample["text"] for sample in api.samples(job["id"])]
    assert joined(events, 4) == texts
    types = [event["type"] for event in events]
    assert types[:2] == ["status", "status"] and types[-1] == "status"
    text_events = [event for event in events if event["type"] == "text"]
    # While it ran: many flushes, each before the job's end; and not one per character.
    assert 4 < len(text_events) < sum(map(len, texts)) / 50
    assert text_events[0]["time"] < job["finished_at"]
    ends = [d["sample"] for e in text_events for d in e["data"]["deltas"] if d["end"]]
    assert ends == [0, 1, 2, 3]
    assert job["progress"]["samples_done"] == job["progress"]["samples"] == 4
    assert job["progress"]["chars_done"] == sum(map(len, texts))


def test_a_resumed_stream_gives_each_event_once(api, model_id, stack):
    job = api.generate(model_id, prompt="It", length=20_000, num_samples=3, seed=2)
    url = f"{stack.url}/v1/jobs/{job['id']}/events"
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {TOKENS['alice']}"}
    first = []
    with api.http.get(url, headers=headers, stream=True, timeout=60) as response:
        for message in parse(response.iter_content(chunk_size=None)):
            first.append(message)
            if sum(m.event == "text" for m in first) == 2:
                break  # hang up mid-job
    rest = []
    with api.http.get(url, headers={**headers, "Last-Event-ID": first[-1].id}, stream=True,
                      timeout=60) as response:
        for message in parse(response.iter_content(chunk_size=None)):
            rest.append(message)
            if message.event == "status" and '"succeeded"' in message.data:
                break
    ids = [m.id for m in first + rest]
    assert len(ids) == len(set(ids))
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    events = [json.loads(m.data) for m in first + rest]
    assert joined(events, 3) == [s["text"] for s in api.samples(job["id"])]


@pytest.fixture
def textgen(stack):
    env = {**os.environ, "TEXTGEN_URL": stack.url, "TEXTGEN_TOKEN": TOKENS["alice"]}

    def start(*args):
        return subprocess.Popen([sys.executable, "-m", "client", *args], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return start


def newest_generation(api):
    return next(iter(api.jobs(type="generate")))


def test_the_command_line_prints_the_text_as_it_comes(api, model_id, textgen):
    command = textgen("generate", model_id, "--prompt", "It ", "--length", "300",
                      "--num-samples", "2", "--temperature", "0.8", "--seed", "4", "--stream")
    out, err = command.communicate(timeout=60)
    assert command.returncode == 0, err
    first, second = (sample["text"] for sample in api.samples(newest_generation(api)["id"]))
    assert out == (f"--- sample 1 (temperature 0.8) ---\n{first}\n"
                   f"--- sample 2 (temperature 0.8) ---\n{second}\n")


def test_the_command_line_exits_with_the_jobs_status(api, model_id, textgen):
    command = textgen("generate", model_id, "--length", "100000", "--num-samples", "64",
                      "--stream")
    try:
        # Text on the terminal while the job runs; then someone cancels it.
        assert command.stdout.readline() == "--- sample 1 (temperature 1) ---\n"
        assert command.stdout.read(10)
        api.cancel(newest_generation(api)["id"])
        _, err = command.communicate(timeout=30)
    finally:
        command.kill()
    assert command.returncode == 1
    assert err.endswith(" cancelled\n"), err
