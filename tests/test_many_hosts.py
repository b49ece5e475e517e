"""Many hosts (issue 9): two training and two generation workers, real Celery processes that
share no local directory (each its own data and cache directory), only Redis and one S3
store (moto's server). A model trained by one is sampled by another, and a training job
whose worker is killed is resumed by the other worker from its checkpoints in S3.
"""

import contextlib
import io
import os
import secrets
import signal
import subprocess
import sys
import time

import pytest

from shared.stack.runner import worker_command
from shared.stores.artifacts import MODEL_FILES
from shared.stores.auth import token_digest
from shared.stores.jobs import JobStatus
from shared.runtime.services import Services
from shared.runtime.settings import Settings
from tests.conftest import S3_BUCKET, TEST_REDIS_URL, TOKENS, client_of, delete_prefix
from tests.faults import FAST_LEASES, SLOW_EPOCHS, epochs_reported
from tests.test_end_to_end import TEXT, TINY_DEFAULT

pytestmark = pytest.mark.stack  # workers as on two hosts

QUEUES = ("train", "train", "generate", "generate")
_READY_TIMEOUT_S = 240.0  # four workers importing TensorFlow at once on 2 cores
_JOB_TIMEOUT_S = 180.0


class Hosts:
    """One worker process per entry of QUEUES, each with a data directory of its own."""

    def __init__(self, tmp_path, env):
        self.dirs = []
        self.processes = []
        for i, queue in enumerate(QUEUES):
            data_dir = tmp_path / f"host-{i}-{queue}"
            data_dir.mkdir()
            argv = worker_command(sys.executable, queue)
            argv[argv.index("--hostname") + 1] = f"{queue}{i}@%h"  # unique node names
            with open(data_dir / "worker.log", "ab") as log:
                self.processes.append(subprocess.Popen(
                    argv, env={**env, "TEXTGEN_DATA_DIR": str(data_dir)}, stdout=log,
                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True))
            self.dirs.append(data_dir)

    def check_alive(self):
        for data_dir, process in zip(self.dirs, self.processes):
            if process.poll() is not None:
                raise RuntimeError(f"worker exited; see {data_dir / 'worker.log'}")

    def stop(self):
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):  # exited already
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            with contextlib.suppress(ProcessLookupError):  # exited already
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def cluster(s3_server, tmp_path_factory):
    """The four workers, started once for the module (their start, four TensorFlow imports
    at once, took as long as a test's own work). The test that kills a worker runs last."""
    tmp_path = tmp_path_factory.mktemp("hosts")
    prefix = f"test-hosts-{secrets.token_hex(4)}:"
    settings = Settings(redis_url=TEST_REDIS_URL, data_dir=tmp_path / "api-host",
                        redis_prefix=prefix, artifacts_url=f"s3://{S3_BUCKET}/{prefix[:-1]}",
                        s3_endpoint_url=s3_server.endpoint_url,
                        cache_dir=tmp_path / "api-host" / "cache",
                        api_tokens=(("alice", token_digest(TOKENS["alice"])),))
    env = {**os.environ, **FAST_LEASES, "REDIS_URL": TEST_REDIS_URL,
           "TEXTGEN_REDIS_PREFIX": prefix, "TEXTGEN_ARTIFACTS_URL": settings.artifacts_url,
           "AWS_ENDPOINT_URL": s3_server.endpoint_url, "TEXTGEN_LOG_FORMAT": "json"}
    hosts = Hosts(tmp_path, env)
    try:
        yield settings, hosts
    finally:
        hosts.stop()
        delete_prefix(TEST_REDIS_URL, prefix)


def wait_until_ready(client, hosts):
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while client.get("/v1/health").get_json()["workers"] != {"train": 2, "generate": 2}:
        hosts.check_alive()
        assert time.monotonic() < deadline, "the four workers did not all answer"
        time.sleep(0.5)


def wait_for(client, hosts, job_ids):
    deadline = time.monotonic() + _JOB_TIMEOUT_S
    while True:
        jobs = [client.get(f"/v1/jobs/{job_id}").get_json() for job_id in job_ids]
        if all(JobStatus(job["status"]).is_terminal for job in jobs):
            for job in jobs:
                assert job["status"] == JobStatus.SUCCEEDED, job["error"]
            return jobs
        hosts.check_alive()
        assert time.monotonic() < deadline, f"jobs still running: {jobs}"
        time.sleep(0.2)


def test_a_model_trained_on_one_host_is_sampled_on_another(cluster):
    from api import create_app

    settings, hosts = cluster
    client = client_of(create_app(settings))
    wait_until_ready(client, hosts)
    corpus = client.post("/v1/corpora", data={"file": (io.BytesIO(TEXT.encode()), "night.txt")},
                         content_type="multipart/form-data").get_json()
    # Two jobs at once: each training worker takes one (one task at a time, prefetch 1).
    trains = [client.post("/v1/train", json={
        "corpus_id": corpus["id"], "preset": "default", "model": TINY_DEFAULT["model"],
        "training": {**TINY_DEFAULT["training"], "seed": seed}}).get_json()["id"]
        for seed in (1, 2)]
    model_ids = [job["result"]["model_id"] for job in wait_for(client, hosts, trains)]
    generates = [client.post("/v1/generate", json={
        "model_id": model_id, "prompt": "It was", "length": 40, "seed": 5}).get_json()["id"]
        for model_id in model_ids]
    for job in wait_for(client, hosts, generates):
        # The samples are an artifact in S3, streamed through the API from the job's link.
        [sample] = client.get(job["result"]["url"]).get_json()["samples"]
        assert sample["text"].startswith("It was") and len(sample["text"]) == 6 + 40
        assert set(sample["text"]) <= set(TEXT)

    train_dirs, generate_dirs = hosts.dirs[:2], hosts.dirs[2:]
    # Both training workers trained (their scratch was used), and nothing but scratch and
    # logs is on any host's disk: corpora, models and checkpoints are in S3 only.
    assert all((d / "cache" / "tmp").is_dir() for d in train_dirs)
    for data_dir in hosts.dirs:
        assert {p.name for p in data_dir.iterdir()} <= {"cache", "worker.log"}
        assert not (data_dir / "cache" / "entries").exists() or data_dir in generate_dirs
    cached = [entry for d in generate_dirs if (d / "cache" / "entries").exists()
              for entry in (d / "cache" / "entries").iterdir()]
    assert len(cached) == 2  # each model fetched from S3 by the generation side
    # What is in the bucket, as another S3 client lists it.
    import s3fs

    root = settings.artifacts_url.removeprefix("s3://")
    keys = {key.removeprefix(root + "/") for key in s3fs.S3FileSystem(
        endpoint_url=settings.s3_endpoint_url, skip_instance_cache=True).find(root)}
    assert f"corpora/{corpus['sha256']}/text.txt" in keys
    for model_id in model_ids:
        assert {f"models/{model_id}/a1/{name}" for name in MODEL_FILES} <= keys
    for job_id in trains:
        assert f"checkpoints/{job_id}/state.json" in keys


# Last in the module: it leaves the cluster one training worker short.
def test_a_killed_workers_job_is_resumed_by_the_other_from_s3(cluster):
    from api import create_app

    settings, hosts = cluster
    client = client_of(create_app(settings))
    wait_until_ready(client, hosts)
    svc = Services.from_settings(settings)
    corpus = client.post("/v1/corpora", data={"file": (io.BytesIO((TEXT * 2).encode()),
                                                       "night.txt")},
                         content_type="multipart/form-data").get_json()
    job_id = client.post("/v1/train", json={"corpus_id": corpus["id"], **SLOW_EPOCHS}
                         ).get_json()["id"]
    deadline = time.monotonic() + _JOB_TIMEOUT_S
    while 2 not in epochs_reported(client.get(f"/v1/jobs/{job_id}/events").get_json()["data"]):
        hosts.check_alive()
        assert time.monotonic() < deadline, "epoch 2 never ended"
        time.sleep(0.1)
    worker = svc.jobs.get(job_id)["worker"]  # "<node name>/<pid>"
    os.kill(int(worker.rsplit("/", 1)[1]), signal.SIGKILL)
    killed = next(p for p in hosts.processes if p.pid == int(worker.rsplit("/", 1)[1]))
    hosts.processes.remove(killed)  # the other one carries on alone
    [done] = wait_for(client, hosts, [job_id])
    assert done["attempt"] == 2
    events = client.get(f"/v1/jobs/{job_id}/events?limit=200").get_json()["data"]
    assert epochs_reported(events) == [1, 2, 3, 4, 5, 6]
    [resumed] = [e["data"] for e in events if e["type"] == "resumed"]
    assert resumed["epoch"] >= 1  # from a checkpoint the dead host wrote to S3
    assert svc.jobs.get(job_id)["worker"] != worker
    # A fleet's logs: JSON lines that say which job, owner and attempt they are about.
    import json

    lines = [json.loads(line) for data_dir in hosts.dirs
             for line in (data_dir / "worker.log").read_text().splitlines()
             if line.startswith("{")]
    mine = [line for line in lines if line.get("job_id") == job_id]
    assert {line["attempt"] for line in mine} == {1, 2}
    assert all(line["owner"] == "alice" for line in mine)
