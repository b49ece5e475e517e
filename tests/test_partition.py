"""A cut-off host (issue 15), with real network separation: Redis and the API in one network
namespace, two training workers each in a namespace of its own, joined to the server's by
veth pairs (tests/netns.py), the artifact store a directory all of them share.

One worker's link is cut while it trains: its lease runs out, the other worker's reaper
hands the job on, and it resumes there from the last checkpoint. The cut-off worker,
unable to renew its lease, presumes it lost and stops (worker/lease.py): when the link
comes back it writes nothing more for that job, and it takes new work.

Needs root and iproute2 (CI has both; .ci/run installs iproute2 when missing); it skips,
saying so, where network namespaces cannot be made.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import datetime

import pytest

from client.api_client import Client
from shared.stack.runner import REPO, api_command, worker_command
from shared.runtime.services import Services
from shared.runtime.settings import Settings
from tests.conftest import TOKENS
from tests.faults import (
    FAST_LEASES,
    SLOW_EPOCHS,
    TEXT,
    all_events,
    epochs_reported,
    redis_server_binary,
    statuses,
    wait_for,
)
from tests.netns import Network, NetnsUnavailableError

REDIS_PORT = 6379  # inside the server's namespace: no other server there
API_PORT = 8000
_READY_TIMEOUT_S = 180  # two workers importing TensorFlow at once on 2 cores


class Processes:
    """Processes started inside namespaces, each in its own session, with a log file."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.running = {}  # name -> Popen

    def start(self, name, namespace, argv, env):
        with open(self.log_dir / f"{name}.log", "ab") as log:
            self.running[name] = subprocess.Popen(
                [*Network.exec_in(namespace), *argv], env=env, cwd=REPO, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def log(self, name):
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def check_alive(self):
        for name, process in self.running.items():
            assert process.poll() is None, f"{name} exited:\n{self.log(name)[-3000:]}"

    def stop(self):
        """SIGKILL: nothing of theirs is kept, so nothing is waited for."""
        for process in self.running.values():
            with contextlib.suppress(ProcessLookupError):  # exited already
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def network():
    net = Network()
    try:
        server = net.namespace("srv")
    except NetnsUnavailableError as e:
        net.close()
        pytest.skip(f"network namespaces cannot be made on this machine ({e}); the "
                    "partition test needs root and iproute2")
    try:
        yield net, server
    finally:
        net.close()


@pytest.fixture
def cluster(network, tmp_path):
    """Redis and the API in the server's namespace; workers w1 and w2 in theirs."""
    net, server = network
    _, (_, server_address) = net.link(None, server)  # for the test process
    shared_dir = tmp_path / "shared"  # the artifact store: one directory for every host
    shared_dir.mkdir()
    procs = Processes(tmp_path)
    base_env = {**os.environ, **FAST_LEASES, "TEXTGEN_ARTIFACTS_URL": shared_dir.as_uri(),
                "TEXTGEN_API_TOKENS": f"alice:{TOKENS['alice']}"}
    links = {}
    try:
        procs.start("redis", server, [redis_server_binary(), "--port", str(REDIS_PORT),
                                      "--bind", "0.0.0.0", "--protected-mode", "no",
                                      "--save", "", "--appendonly", "no"], base_env)
        api_argv = api_command(sys.executable, API_PORT)
        api_argv[api_argv.index("--bind") + 1] = f"0.0.0.0:{API_PORT}"
        procs.start("api", server, api_argv, {
            **base_env, "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
            "TEXTGEN_DATA_DIR": str(tmp_path / "api-host")})
        for name in ("w1", "w2"):
            namespace = net.namespace(name)
            (server_end, its_server), _ = net.link(server, namespace)
            links[name] = server_end
            procs.start(name, namespace, worker_command(sys.executable, "train", name), {
                **base_env, "REDIS_URL": f"redis://{its_server}:{REDIS_PORT}/0",
                "TEXTGEN_DATA_DIR": str(tmp_path / f"{name}-host")})
        settings = Settings(redis_url=f"redis://{server_address}:{REDIS_PORT}/0",
                            data_dir=shared_dir, artifacts_url=shared_dir.as_uri())
        svc = Services.from_settings(settings)
        api = Client(f"http://{server_address}:{API_PORT}", token=TOKENS["alice"])
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while len(svc.celery.control.ping(timeout=1.0)) < 2:
            procs.check_alive()
            assert time.monotonic() < deadline, "the two workers did not both answer"
        yield Cluster(net, server, links, procs, svc, api)
    finally:
        procs.stop()


class Cluster:
    def __init__(self, net, server, links, procs, svc, api):
        self.net = net
        self.server = server
        self.links = links  # worker name -> its link's interface in the server namespace
        self.procs = procs
        self.svc = svc
        self.api = api

    def cut(self, worker, cut=True):
        self.net.set_link(self.server, self.links[worker], up=not cut)

    def answers(self, worker):
        """True when `worker`'s Celery consumer is connected to the broker again."""
        replies = self.svc.celery.control.ping(timeout=1.0)  # [{"w1@host": {"ok": ...}}]
        return any(name.split("@")[0] == worker for reply in replies for name in reply)


def worker_of(svc, job_id):
    """w1 or w2: the worker running (or that ran) the job, from its record."""
    return svc.jobs.get(job_id)["worker"].split("@")[0]


@pytest.mark.netns
@pytest.mark.stack
@pytest.mark.slow
def test_a_cut_off_worker_s_job_resumes_on_the_other_and_the_cut_off_one_writes_nothing(
        cluster):
    api, svc = cluster.api, cluster.svc
    corpus_path = cluster.procs.log_dir / "night.txt"
    corpus_path.write_text(TEXT * 40)
    corpus = api.upload_corpus(corpus_path)
    spec = {**SLOW_EPOCHS, "training": {**SLOW_EPOCHS["training"], "epochs": 8}}
    job = api.train(corpus["id"], "default", **spec)
    checkpoints = svc.artifacts.checkpoints(job["id"], 2)
    wait_for(lambda: checkpoints.read_state(), 120, "epoch 1's checkpoint")
    cut_off = worker_of(svc, job["id"])
    other = "w2" if cut_off == "w1" else "w1"

    cluster.cut(cut_off)
    handed_on = wait_for(lambda: (lambda j: j if j["attempt"] == 2 and j["status"] == "running"
                                  else None)(api.job(job["id"])), 30, "attempt 2 to run")
    assert worker_of(svc, handed_on["id"]) == other
    # Cut off, the worker presumed its lease lost and stopped, without a word from Redis.
    wait_for(lambda: f"job {job['id']}: no longer attempt 1's" in cluster.procs.log(cut_off),
             15, "the cut-off worker to stop its run")
    assert "presumed handed on; stopping" in cluster.procs.log(cut_off)

    cluster.cut(cut_off, cut=False)
    wait_for(lambda: cluster.answers(cut_off), 60, "the cut-off worker to reconnect")
    # It takes new work: two short jobs, so that one is its own even if the other worker is
    # free by now (one job a worker at a time).
    short = {**SLOW_EPOCHS, "training": {**SLOW_EPOCHS["training"], "epochs": 1}}
    new_jobs = [api.train(corpus["id"], "default", **short)["id"] for _ in range(2)]
    wait_for(lambda: any(svc.jobs.get(job_id)["status"] == "succeeded"
                         and worker_of(svc, job_id) == cut_off for job_id in new_jobs),
             120, "a new job to succeed on the cut-off worker")

    done = api.wait(job["id"], poll_s=0.2, timeout_s=120)
    assert done["status"] == "succeeded" and done["attempt"] == 2
    assert worker_of(svc, job["id"]) == other
    events = all_events(api, job["id"])
    assert statuses(events) == [("queued", None), ("running", None), ("queued", 2),
                                ("running", None), ("succeeded", None)]
    assert epochs_reported(events) == list(range(1, 9))  # each once, over both attempts
    [requeued] = [e["data"] for e in events if e["data"].get("status") == "queued"
                  and e["data"].get("attempt") == 2]
    assert requeued["code"] == "lease_expired"  # why attempt 1 ended
    [resumed] = [e["data"] for e in events if e["type"] == "resumed"]
    assert resumed["attempt"] == 2 and resumed["epoch"] >= 1  # from its last checkpoint
    # Nothing of attempt 1's in the store after the job was handed on.
    handed_on_at = datetime.fromisoformat([
        e["time"] for e in events if e["type"] == "status"
        and e["data"]["status"] == "running"][1]).timestamp()
    assert checkpoints.read_state()["attempt"] == 2
    root = svc.settings.data_dir / "checkpoints" / job["id"]
    late = [p.name for p in root.iterdir() if "-a1." in p.name
            and p.stat().st_mtime > handed_on_at]
    assert late == []
    assert not (svc.settings.data_dir / "models" / done["result"]["model_id"] / "a1").exists()
