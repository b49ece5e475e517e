"""The whole loop on real parts: gunicorn API, Celery worker processes, Redis, Keras.

Tiny models on a tiny corpus, so the loop takes seconds; real sizes live in bench/.
"""

import http.client
import json
import os
import re

import pytest

from client.api_client import Client
from tests.conftest import TOKENS

TEXT = ("It was on a dreary night of November that I beheld the accomplishment of my toils.\n"
        "With an anxiety that almost amounted to agony, I collected the instruments of life.\n"
        ) * 30

TINY_DEFAULT = {"model": {"units": 32, "layers": 1, "embedding_dim": 16},
                "training": {"epochs": 2, "seq_length": 32, "batch_size": 16, "seed": 3}}


@pytest.fixture
def api(stack):
    return Client(stack.url, token=TOKENS["alice"])


@pytest.fixture
def corpus(api, tmp_path):
    path = tmp_path / "night.txt"
    path.write_bytes(TEXT.replace("\n", "\r\n").encode("cp1252"))
    return api.upload_corpus(path)


def test_health_sees_both_workers(api):
    health = api.health()
    assert health["status"] == "ok" and health["redis"] is True
    assert health["workers"] == {"train": 1, "generate": 1}
    # From the workers' own heartbeats in Redis, each with its age.
    assert sorted(beat["name"].split("@")[0] for beat in health["heartbeats"]) == [
        "worker-generate", "worker-train"]
    assert all(beat["age_s"] < 30 for beat in health["heartbeats"])


def test_the_api_keeps_a_clients_connection_alive_between_requests(stack):
    # A new TCP connection and a lingering close per request cost the API more CPU than
    # the request itself (api/gunicorn_conf.py).
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    try:
        for _ in range(3):
            connection.request("GET", "/v1/health")
            response = connection.getresponse()
            response.read()
            assert response.status == 200 and not response.will_close
        first = connection.sock
        connection.request("GET", "/v1/health")
        connection.getresponse().read()
        assert connection.sock is first  # the same socket: nothing reconnected
    finally:
        connection.close()


def test_a_netrc_entry_for_the_host_does_not_replace_the_clients_token(stack, tmp_path,
                                                                        monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password not-a-textgen-token\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert Client(stack.url, token=TOKENS["alice"]).whoami()["owner"] == "alice"


def test_training_workers_run_below_the_apis_cpu_priority_generation_ones_beside_it(stack):
    # TEXTGEN_WORKER_NICE (10): every thread of a training worker, those TensorFlow and
    # Celery started after the entry point too; TEXTGEN_GENERATE_WORKER_NICE (0): a
    # generation worker's, and the API's processes, as started (as this one).
    def nice_values(pid):
        values = set()
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                values.add(int(stat.read().rsplit(")", 1)[1].split()[16]))  # field 19
        return values

    def autogroup_nice(pid):  # None where the kernel does not group by session
        path = f"/proc/{pid}/autogroup"
        return int(open(path).read().split()[-1]) if os.path.exists(path) else None

    started_at = os.getpriority(os.PRIO_PROCESS, 0)
    api = stack.processes["api"].pid
    for name, nice in (("worker-train", 10), ("worker-generate", 0)):
        worker = stack.processes[name].pid
        assert nice_values(worker) == {max(started_at, nice)}, name
        # Each child leads a session of its own: its autogroup, where there are
        # autogroups, is niced too, or nice would count only inside it.
        if autogroup_nice(api) is not None:
            assert autogroup_nice(worker) == max(autogroup_nice(api), nice), name
    assert nice_values(api) == {started_at}


def test_train_poll_generate(api, corpus, tmp_path):
    job = api.train(corpus["id"], "default", **TINY_DEFAULT)
    seen = []
    job = api.wait(job["id"], on_update=seen.append, poll_s=0.1, max_poll_s=0.1,
                   timeout_s=300)  # no back-off: every step of a tiny job counts
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"]["epoch"] == 2 and job["progress"]["epochs"] == 2
    assert job["progress"]["fraction"] == pytest.approx(1.0)
    assert job["started_at"] <= job["finished_at"]
    assert job["stopped_reason"] == "epochs_done"
    assert {"loss", "val_loss", "bits_per_char"} <= job["metrics"].keys()
    assert any(s["status"] == "running" and s["progress"]["step"] > 0 for s in seen)

    events, _ = api.events(job["id"])
    assert [e["data"]["status"] for e in events if e["type"] == "status"] == [
        "queued", "running", "succeeded"]
    # The worker is named by Celery's node name and its process id (unique on a host).
    [running] = [e["data"] for e in events if e["data"].get("status") == "running"]
    assert re.fullmatch(r"worker-train@.+/\d+", running["worker"])
    epoch_ends = [e["data"] for e in events if e["type"] == "epoch_end"]
    assert [e["epoch"] for e in epoch_ends] == [1, 2]
    for epoch_end in epoch_ends:
        assert len(epoch_end["sample"]) == 200 and set(epoch_end["sample"]) <= set(TEXT)
        assert epoch_end["val_loss"] > 0

    model = api.model(job["result"]["model_id"])
    assert model["job_id"] == job["id"] and model["corpus_id"] == corpus["id"]
    assert model["best_epoch"] == job["result"]["best_epoch"] == model["metrics"]["epoch"]
    assert model["vocab_size"] == len(set(TEXT))
    assert model["config"]["model"]["units"] == 32

    # The files download and work in plain Keras: ids in, logits for every position out.
    import keras
    import numpy as np

    files = {}
    for name, url in model["files"].items():
        response = api.http.get(api.base_url + url, timeout=30)
        assert response.status_code == 200, name
        files[name] = tmp_path / name
        files[name].write_bytes(response.content)
    tokens = json.loads(files["vocab.json"].read_text())
    assert len(tokens) == model["vocab_size"]
    assert json.loads(files["config.json"].read_text())["output"].startswith("logits")
    plain = keras.saving.load_model(files["model.keras"])
    ids = np.array([[tokens.index(c) for c in "It was on a"]])
    assert plain.predict(ids, verbose=0).shape == (1, len("It was on a"), len(tokens))

    options = {"prompt": "It was", "length": 60, "num_samples": 3, "temperature": 1.0, "seed": 11}
    first = api.wait(api.generate(model["id"], **options)["id"], poll_s=0.1, timeout_s=120)
    assert first["status"] == "succeeded", first["error"]
    samples = api.samples(first["id"])
    assert len(samples) == 3 == first["result"]["sample_count"]
    # The record keeps a preview and the link; the samples are an artifact.
    assert first["result"]["preview"] == [
        {**sample, "text": sample["text"][:100]} for sample in samples]
    assert first["result"]["url"] == f"/v1/jobs/{first['id']}/result"
    for sample in samples:
        # Every sample begins with its prompt.
        assert sample["text"].startswith("It was") and len(sample["text"]) == 6 + 60
        assert set(sample["text"]) <= set(TEXT) and sample["temperature"] == 1.0
    again = api.wait(api.generate(model["id"], **options)["id"], poll_s=0.1, timeout_s=120)
    assert api.samples(again["id"]) == samples  # same seed, same text


def test_seed_preset_runs_the_tutorial_pipeline(api, corpus):
    job = api.train(corpus["id"], "seed", model={"units": 8, "layers": 2},
                    training={"epochs": 1, "seq_length": 20, "batch_size": 64})
    job = api.wait(job["id"], poll_s=0.2, timeout_s=300)
    assert job["status"] == "succeeded", job["error"]
    model = api.model(job["result"]["model_id"])
    # Tutorial preprocessing: lowercase words without stopwords, joined by spaces.
    assert model["vocab_size"] < len(set(TEXT))
    gen = api.wait(api.generate(model["id"], length=30, temperature=0)["id"], poll_s=0.1,
                   timeout_s=120)
    assert gen["status"] == "succeeded", gen["error"]
    assert set(api.samples(gen["id"])[0]["text"]) <= set("abcdefghijklmnopqrstuvwxyz ")


def test_a_failing_job_ends_failed_with_a_reason(api, tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("too short")
    corpus = api.upload_corpus(path)
    job = api.wait(api.train(corpus["id"], "default")["id"], poll_s=0.1, timeout_s=120)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "corpus_too_small" and job["error"]["message"]


def test_a_time_limited_job_says_why_it_stopped(api, corpus):
    job = api.train(corpus["id"], "default", **{**TINY_DEFAULT, "training": {
        **TINY_DEFAULT["training"], "epochs": 10_000, "max_seconds": 2}})
    job = api.wait(job["id"], poll_s=0.2, timeout_s=120)
    assert job["status"] == "succeeded", job["error"]
    assert job["stopped_reason"] == "time_limit"
    model = api.model(job["result"]["model_id"])
    assert model["stopped_reason"] == "time_limit"
    assert model["best_epoch"] == job["result"]["best_epoch"]


def test_a_running_generation_can_be_cancelled(api, corpus):
    trained = api.wait(api.train(corpus["id"], "default", **TINY_DEFAULT)["id"], poll_s=0.2,
                       timeout_s=120)
    model_id = trained["result"]["model_id"]
    long = api.generate(model_id, length=100_000, num_samples=64)
    import time

    deadline = time.monotonic() + 60
    while api.job(long["id"])["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api.cancel(long["id"])["status"] == "cancelled"
    # The generate worker is free again at once: the next job does not wait for 6.4M tokens.
    short = api.wait(api.generate(model_id, length=10)["id"], poll_s=0.1, timeout_s=20)
    assert short["status"] == "succeeded"
    assert api.job(long["id"])["status"] == "cancelled"


def test_training_continues_from_a_model(api, corpus):
    first = api.wait(api.train(corpus["id"], "default", **TINY_DEFAULT)["id"], poll_s=0.2,
                     timeout_s=120)
    model_id = first["result"]["model_id"]
    more = api.train(corpus["id"], "default", init_from_model=model_id,
                     training={"epochs": 1})
    assert more["spec"]["model"] == first["spec"]["model"]
    more = api.wait(more["id"], poll_s=0.2, timeout_s=120)
    assert more["status"] == "succeeded", more["error"]
    start, _ = api.events(first["id"])
    # One more epoch from the trained weights starts where two epochs from scratch ended.
    first_epochs = [e["data"]["loss"] for e in start if e["type"] == "epoch_end"]
    continued = [e["data"]["loss"] for e in api.events(more["id"])[0]
                 if e["type"] == "epoch_end"]
    assert continued[0] < first_epochs[0]
    model = api.model(more["result"]["model_id"])
    assert model["init_from_model"] == model_id


def test_prefer_wait_answers_with_the_finished_generation(api, corpus):
    trained = api.wait(api.train(corpus["id"], "default", **TINY_DEFAULT)["id"], poll_s=0.2,
                       timeout_s=120)
    response = api.http.post(api.base_url + "/v1/generate", headers={"Prefer": "wait=30"},
                             json={"model_id": trained["result"]["model_id"], "length": 20,
                                   "prompt": "It", "temperature": [0, 1.0]}, timeout=40)
    assert response.status_code == 200 and response.headers["Preference-Applied"] == "wait=30"
    job = response.json()
    assert job["status"] == "succeeded"
    samples = api.samples(job["id"])
    assert [s["temperature"] for s in samples] == [0.0, 1.0]
    assert all(s["text"].startswith("It") and len(s["text"]) == 22 for s in samples)


def test_the_event_stream_follows_a_job_live_through_gunicorn(api, corpus):
    job = api.train(corpus["id"], "default", **TINY_DEFAULT)
    seen = []
    with api.http.get(f"{api.base_url}/v1/jobs/{job['id']}/events", stream=True,
                      headers={"Accept": "text/event-stream"}, timeout=120) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                seen.append(line.removeprefix("event: "))
            if line.startswith("data: ") and '"status":"succeeded"' in line:
                break
    assert seen[0] == "status" and seen.count("epoch_end") == 2
    assert api.job(job["id"])["status"] == "succeeded"


def test_gpu_jobs_go_only_to_a_worker_started_with_gpu(api, corpus, stack, tmp_path):
    import subprocess
    import sys
    import time

    from shared.stack.runner import REPO, worker_command

    body = {"corpus_id": corpus["id"], "preset": "default", **TINY_DEFAULT,
            "resources": {"accelerator": "gpu"}}
    refused = api.http.post(api.base_url + "/v1/train", json=body, timeout=30)
    assert refused.status_code == 422 and refused.json()["field"] == "resources.accelerator"

    env = stack.commands["worker-train"][1]  # the stack's Redis, prefix and data
    with open(tmp_path / "gpu-worker.log", "wb") as log:
        gpu = subprocess.Popen(worker_command(sys.executable, "train-gpu", "gpu", gpu=True),
                               env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while (response := api.http.post(api.base_url + "/v1/train", json=body,
                                          timeout=30)).status_code == 422:
            assert time.monotonic() < deadline, "the GPU worker never registered"
            time.sleep(0.5)
        # A CPU job beside it, while both workers are free: each goes to its own.
        cpu_id = api.train(corpus["id"], "default", **TINY_DEFAULT)["id"]
        job = api.wait(response.json()["id"], poll_s=0.2, timeout_s=180)
        assert job["status"] == "succeeded" and job["resources"] == {"accelerator": "gpu"}
        cpu = api.wait(cpu_id, poll_s=0.2, timeout_s=180)
        assert cpu["status"] == "succeeded", cpu["error"]
        events = {j["id"]: [e["data"].get("worker") for e in api.events(j["id"])[0]
                            if e["data"].get("status") == "running"]
                  for j in (job, cpu)}
        assert events[job["id"]][0].startswith("gpu@")
        assert events[cpu["id"]][0].startswith("worker-train@")
    finally:
        gpu.terminate()
        gpu.wait(timeout=30)


def test_webhooks_tell_a_receiver_of_each_epoch_and_the_end(api, corpus, stack):
    import time

    from shared.runtime.services import Services
    from shared.runtime.settings import Settings
    from shared.webhooks.outbox import signature
    from tests.conftest import TEST_REDIS_URL
    from tests.webhook_receiver import Receiver

    svc = Services.from_settings(Settings(
        redis_url=TEST_REDIS_URL, data_dir=stack.data_dir,
        redis_prefix=stack.extra_env["TEXTGEN_REDIS_PREFIX"]))
    receiver = Receiver(statuses=[500])  # the first delivery fails: it is retried
    slow = Receiver(held=True)  # answers when released: the generation must not wait
    try:
        job = api.train(corpus["id"], "default", **TINY_DEFAULT, webhook=receiver.url,
                        webhook_events=["completed", "epoch_end"])
        job = api.wait(job["id"], poll_s=0.2, timeout_s=120)
        started = time.monotonic()
        gen = api.wait(api.generate(job["result"]["model_id"], length=10,
                                    webhook=slow.url)["id"], poll_s=0.1, timeout_s=60)
        assert gen["status"] == "succeeded"
        # The job did not wait for its receiver (a send gives up after 10 s).
        assert time.monotonic() - started < 5
        slow.release()
        deadline = time.monotonic() + 30
        while len(receiver.acknowledged()) < 3 or not slow.acknowledged():
            assert time.monotonic() < deadline, receiver.deliveries
            time.sleep(0.1)
        time.sleep(1)  # time for any (wrong) second send to arrive
        # A retried delivery arrives after later ones: receivers order by the event.
        received = {(body["type"], body["data"].get("epoch")): body
                    for _, body in receiver.acknowledged()}
        assert len(received) == 3 == len(receiver.acknowledged())
        assert set(received) == {("job.epoch_end", 1), ("job.epoch_end", 2),
                                 ("job.completed", None)}
        completed = received[("job.completed", None)]["data"]
        assert completed["result"]["model_id"] == job["result"]["model_id"]
        assert len(receiver.deliveries) == 4  # three events, one of them sent twice
        secret = svc.webhooks.secret("alice")
        for headers, body, _ in receiver.deliveries + slow.deliveries:
            assert headers["webhook-signature"] == signature(
                secret, headers["webhook-id"], headers["webhook-timestamp"], body)
        [(_, done)] = slow.acknowledged()
        assert done["data"]["id"] == gen["id"] and done["data"]["status"] == "succeeded"
    finally:
        receiver.close()
        slow.close()


def test_a_word_level_job_reports_bits_per_character_and_per_token(api, corpus):
    job = api.train(corpus["id"], "default", **{**TINY_DEFAULT, "training": {
        **TINY_DEFAULT["training"], "epochs": 1},
        "preprocessing": {"level": "word", "max_vocab": 50}})
    job = api.wait(job["id"], poll_s=0.2, timeout_s=120)
    assert job["status"] == "succeeded", job["error"]
    metrics = job["metrics"]
    # A word of this text is several characters: fewer bits per character than per token.
    assert 0 < metrics["bits_per_char"] < metrics["bits_per_token"]
    events, _ = api.events(job["id"])
    [epoch_end] = [e["data"] for e in events if e["type"] == "epoch_end"]
    assert epoch_end["bits_per_char"] == pytest.approx(metrics["bits_per_char"])
    assert epoch_end["bits_per_token"] == pytest.approx(metrics["bits_per_token"])
    model = api.model(job["result"]["model_id"])
    assert model["metrics"]["bits_per_char"] == pytest.approx(metrics["bits_per_char"])


def test_workers_measure_their_speed_for_the_sizing_rule(api, corpus, stack):
    from shared.runtime.services import Services
    from shared.runtime.settings import Settings
    from tests.conftest import TEST_REDIS_URL

    svc = Services.from_settings(Settings(
        redis_url=TEST_REDIS_URL, data_dir=stack.data_dir,
        redis_prefix=stack.extra_env["TEXTGEN_REDIS_PREFIX"]))
    # The shape the rule sizes (the default preset's), on the train queue: each of its
    # epochs leaves a figure.
    try:
        job = api.train(corpus["id"], "default", training={"epochs": 3, "patience": None})
        job = api.wait(job["id"], poll_s=0.2, timeout_s=120)
        assert job["status"] == "succeeded", job["error"]
        measured = svc.throughput.chars_per_s("train")
        assert measured is not None and measured > 0
        assert svc.throughput.chars_per_s("train-gpu") is None  # no GPU worker measured
        # (test_api.py checks what the API then picks, for fast and slow figures.)
    finally:
        # The stack is the session's: a busy machine's figures would size the budgeted
        # jobs of later tests (test_cli's) by this one's speed.
        svc.redis.delete(svc.keys.throughput("train"))
