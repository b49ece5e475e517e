"""Nothing lost, on real processes: `make up`'s stack (one train worker, one generate
worker, gunicorn) on a redis-server of its own with persistence, and faults done to it:
SIGKILL, SIGSTOP, duplicate messages, lost messages, a job that kills its worker.

Each test says which mechanism it proves; without it the test fails (the note of the
issue says how each was checked).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from client.api_client import Client
from shared.stack.runner import LocalStack
from shared.runtime.queue import enqueue
from shared.runtime.services import Services
from shared.runtime.settings import Settings
from shared.contracts.specs import resolve_train_spec
from tests.api_helpers import registered_model
from tests.conftest import TOKENS
from tests.faults import (
    FAST_LEASES,
    FAST_RESTARTS,
    SLOW_EPOCHS,
    TEXT,
    RedisProcess,
    all_events,
    epochs_reported,
    kill,
    statuses,
    wait_for,
)

PREFIX = "faults:"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisProcess(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(redis_server, tmp_path_factory):
    env = {**FAST_LEASES, "TEXTGEN_REDIS_PREFIX": PREFIX,
           "TEXTGEN_API_TOKENS": f"alice:{TOKENS['alice']}"}
    with LocalStack(tmp_path_factory.mktemp("data"), port=_port(), redis_url=redis_server.url,
                    env=env, restart_backoff_s=FAST_RESTARTS) as running:
        yield running


def _port():
    from shared.stack.runner import free_port

    return free_port()


@pytest.fixture(scope="module")
def svc(stack, redis_server):
    return Services.from_settings(Settings(redis_url=redis_server.url,
                                           data_dir=stack.data_dir, redis_prefix=PREFIX))


@pytest.fixture(scope="module")
def api(stack):
    return Client(stack.url, token=TOKENS["alice"])


@pytest.fixture(scope="module")
def corpus(api, tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "night.txt"
    path.write_text(TEXT * 40)
    return api.upload_corpus(path)


def test_a_killed_workers_job_resumes_on_the_restarted_worker(stack, api, corpus):
    """Leases, the reaper, the stack's supervisor and checkpoints, together (1 and 2)."""
    job = api.train(corpus["id"], "default", **SLOW_EPOCHS)
    # And as a user sees it: `textgen status --follow`, piped.
    env = {**os.environ, "TEXTGEN_URL": stack.url, "TEXTGEN_TOKEN": TOKENS["alice"]}
    following = subprocess.Popen([sys.executable, "-m", "client", "status", job["id"],
                                  "--follow"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
    wait_for(lambda: 2 in epochs_reported(all_events(api, job["id"])), 120, "epoch 2")
    kill(stack, "worker-train")
    killed_at = time.monotonic()
    running = wait_for(lambda: (lambda j: j if j["attempt"] == 2 and j["status"] == "running"
                                else None)(api.job(job["id"])), 60, "attempt 2 to run")
    resumed_after_s = time.monotonic() - killed_at
    print(f"killed job running again as attempt 2 after {resumed_after_s:.1f} s")
    assert running["attempt"] == 2
    done = api.wait(job["id"], poll_s=0.2, timeout_s=120)
    assert done["status"] == "succeeded", done["error"]
    assert done["stopped_reason"] == "epochs_done" and done["result"]["best_epoch"]

    events = all_events(api, job["id"])
    # Every epoch reported once, in order: no gap, no repeat across the two attempts.
    assert epochs_reported(events) == [1, 2, 3, 4, 5, 6]
    assert statuses(events)[:3] == [("queued", None), ("running", None), ("queued", 2)]
    resumed = [e["data"] for e in events if e["type"] == "resumed"]
    # From the last checkpoint committed (epoch 2 may not have been when the kill came).
    assert len(resumed) == 1 and resumed[0]["attempt"] == 2 and resumed[0]["epoch"] >= 1
    log = (stack.log_dir / "worker-train.log").read_text()
    assert "[textgen stack] worker-train exited with code -9; restarting in" in log

    # It said when the worker fell silent, before attempt 2 took over, not frozen.
    lines = following.communicate(timeout=30)[0].splitlines()
    silent = next(i for i, line in enumerate(lines) if re.fullmatch(
        rf"{job['id']}: worker-train@\S+ has not answered for \d+ s; if it stays silent, "
        r"attempt 2 takes over in about \d+ s from the last checkpoint \(or the job fails, "
        r"after its last attempt\)", line))
    handed_on = lines.index(f"{job['id']} queued again as attempt 2: the worker of attempt "
                            "1 stopped answering")
    assert silent < handed_on, lines
    # Both attempts, in the API and in `textgen status`.
    assert [(a["attempt"], a["outcome"]) for a in done["attempts"]] == [
        (1, "lost"), (2, "succeeded")]
    shown = subprocess.run([sys.executable, "-m", "client", "status", job["id"]], env=env,
                           cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert re.search(r"^2 attempts, \d:\d\d:\d\d from the first start\n  attempt 1  "
                     r"\d:\d\d:\d\d  on worker-train@\S+  lost: the worker of attempt 1 "
                     r"stopped answering\n  attempt 2  \d:\d\d:\d\d  on worker-train@\S+  "
                     r"succeeded$", shown, re.MULTILINE), shown
    assert f"started {done['attempts'][0]['started_at']}  " in shown  # not attempt 2's


def test_a_second_delivery_of_a_job_does_nothing(stack, api, corpus, svc):
    """start() takes only a queued job: another message for it finds it running or ended."""
    job = api.train(corpus["id"], "default", **{**SLOW_EPOCHS, "training": {
        **SLOW_EPOCHS["training"], "epochs": 1}})
    enqueue(svc.celery, svc.jobs.get(job["id"]))  # the same job, delivered twice
    done = api.wait(job["id"], poll_s=0.2, timeout_s=120)
    assert done["status"] == "succeeded"
    # The second message is taken right after the first ends, and skipped.
    log = stack.log_dir / "worker-train.log"
    wait_for(lambda: f"job {job['id']}: not queued" in log.read_text(), 30,
             "the second delivery to be taken")
    assert [s for s, _ in statuses(all_events(api, job["id"]))] == [
        "queued", "running", "succeeded"]
    assert svc.redis.llen(PREFIX + "train") == 0


def test_a_stalled_worker_that_lost_its_lease_writes_nothing_more(stack, api, corpus, svc):
    """The attempt fence: SIGSTOP the worker past its lease; the job is handed on; when the
    old attempt wakes up, its writes are refused and it stops."""
    job = api.train(corpus["id"], "default", **SLOW_EPOCHS)
    wait_for(lambda: 1 in epochs_reported(all_events(api, job["id"])), 120, "epoch 1")
    kill(stack, "worker-train", signal.SIGSTOP)
    try:
        wait_for(lambda: api.job(job["id"])["attempt"] == 2, 30, "the reaper to hand it on")
    finally:
        kill(stack, "worker-train", signal.SIGCONT)
    done = api.wait(job["id"], poll_s=0.2, timeout_s=180)
    assert done["status"] == "succeeded" and done["attempt"] == 2
    assert epochs_reported(all_events(api, job["id"])) == [1, 2, 3, 4, 5, 6]
    log = (stack.log_dir / "worker-train.log").read_text()
    assert f"job {job['id']}: attempt 1 lost its lease" in log or \
        f"job {job['id']}: no longer attempt 1's" in log


def test_a_job_that_kills_its_worker_every_time_fails_after_max_attempts(stack, api, corpus):
    """attempts_exhausted: the third attempt whose worker dies is the last."""
    job = api.train(corpus["id"], "default", **SLOW_EPOCHS)
    for attempt in (1, 2, 3):
        wait_for(lambda: (lambda j: j["status"] == "running" and j["attempt"] == attempt)(
            api.job(job["id"])), 90, f"attempt {attempt} to run")
        kill(stack, "worker-train")
    done = api.wait(job["id"], poll_s=0.2, timeout_s=60)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "attempts_exhausted"
    assert "3 times" in done["error"]["message"]
    wait_for(lambda: stack.processes["worker-train"].poll() is None, 30, "the worker back")


def test_a_job_whose_message_was_lost_is_sent_again(stack, api, corpus, svc):
    """The reaper re-sends a released job that has no message in the broker."""
    one_epoch = {**SLOW_EPOCHS["training"], "epochs": 1}
    spec = resolve_train_spec("default", {**SLOW_EPOCHS, "training": one_epoch}).model_dump()
    # As if the API died between storing the job, which released it to the idle worker's
    # slot, and sending it: released, and no message.
    record = svc.jobs.new_record("train", spec, "alice", corpus_id=corpus["id"])
    assert svc.jobs.admit(record, max_queued=100) == [record["id"]]
    done = api.wait(record["id"], poll_s=0.2, timeout_s=120)
    assert done["status"] == "succeeded"


def test_cancel_stops_a_running_job_and_a_job_waiting_for_its_retry(stack, api, corpus, svc):
    """Cancel is seen before the next step; a job queued for its next attempt stays
    cancelled; its checkpoints stay until the job is deleted."""
    job = api.train(corpus["id"], "default", **SLOW_EPOCHS)
    checkpoints = svc.artifacts.checkpoints(job["id"], 1)
    # Epoch 1 committed (a commit under way when the cancel comes is dropped: the fence).
    wait_for(checkpoints.read_state, 120, "epoch 1's checkpoint")
    cancelled = api.cancel(job["id"])
    assert cancelled["status"] == "cancelled" and cancelled["stopped_reason"] == "cancelled"
    log = stack.log_dir / "worker-train.log"
    wait_for(lambda: f"job {job['id']}: no longer attempt 1's" in log.read_text(), 10,
             "the run to stop")
    assert checkpoints.read_state()["epoch"] >= 1

    # Waiting for a retry: kill its worker; once the job is queued as attempt 2, cancel.
    retried = api.train(corpus["id"], "default", **SLOW_EPOCHS)
    wait_for(lambda: api.job(retried["id"])["status"] == "running", 60, "the job to run")
    kill(stack, "worker-train")
    wait_for(lambda: api.job(retried["id"])["attempt"] == 2, 30, "the job to be queued again")
    assert api.cancel(retried["id"])["status"] == "cancelled"
    # The restarted worker takes the attempt-2 message and must not run it.
    wait_for(lambda: f"job {retried['id']}: not queued (cancelled" in log.read_text(), 60,
             "the restarted worker to skip the cancelled attempt")
    assert api.job(retried["id"])["status"] == "cancelled"

    api.http.delete(f"{api.base_url}/v1/jobs/{job['id']}").raise_for_status()
    assert checkpoints.read_state() is None


# Epochs of a dozen steps: these tests need an epoch's checkpoint soon, not a long epoch.
SHORT_EPOCHS = {**SLOW_EPOCHS, "training": {**SLOW_EPOCHS["training"], "batch_size": 32}}


def _pause_while_saving(stack, epoch, attempt):
    """SIGSTOP the train worker while it saves a checkpoint: past its fence check, before
    its commit. Keras writes the file into the worker's scratch space first, for ~0.2 s."""
    scratch, deadline = stack.data_dir / "cache" / "tmp", time.monotonic() + 120
    while not list(scratch.glob(f"*/epoch-{epoch:04d}-a{attempt}.keras")):
        assert time.monotonic() < deadline, "no checkpoint saved"
        time.sleep(0.001)
    kill(stack, "worker-train", signal.SIGSTOP)


def _wait_for_task_end(stack, mark):
    """The train worker's log after byte `mark`, once a task ended there."""
    log = stack.log_dir / "worker-train.log"

    def since():
        return log.read_bytes()[mark:].decode("utf-8", "replace")
    wait_for(lambda: re.search(r"Task textgen\.train\[\S+\] (succeeded|raised)", since()),
             60, "the stale run to end")
    return since()


def test_a_job_deleted_mid_commit_keeps_no_file_and_its_runner_stops_quietly(
        stack, api, corpus, svc):
    """A stale runner and a deleted job: pause the worker while it saves epoch 1; cancel
    and delete the job; wake it. Nothing of the job's is left once it stops (it wrote the
    epoch's file and state.json again), and its heartbeat thread (due at once after the
    pause) ends without a traceback (it raised NotFoundError)."""
    job = api.train(corpus["id"], "default", **SHORT_EPOCHS)
    _pause_while_saving(stack, 1, 1)
    try:
        api.cancel(job["id"])
        api.delete_job(job["id"])
        mark = (stack.log_dir / "worker-train.log").stat().st_size
        time.sleep(1)  # two heartbeats (0.5 s) missed: the thread beats as soon as it wakes
    finally:
        kill(stack, "worker-train", signal.SIGCONT)
    log = _wait_for_task_end(stack, mark)
    assert not (stack.data_dir / "checkpoints" / job["id"]).exists()
    assert "Traceback" not in log, log
    assert f"job {job['id']}: deleted while attempt 1 ran" in log


def test_an_attempt_handed_on_mid_commit_does_not_write_state(stack, api, corpus, svc):
    """The fence right before state.json: pause the worker while it saves epoch 1 until
    the reaper hands the job to attempt 2; once awake, attempt 1 must not commit."""
    job = api.train(corpus["id"], "default", **SHORT_EPOCHS)
    _pause_while_saving(stack, 1, 1)
    try:
        wait_for(lambda: api.job(job["id"])["attempt"] == 2, 30, "the reaper to hand it on")
        mark = (stack.log_dir / "worker-train.log").stat().st_size
    finally:
        kill(stack, "worker-train", signal.SIGCONT)
    try:
        log = _wait_for_task_end(stack, mark)
        assert f"job {job['id']}: no longer attempt 1's" in log
        # Attempt 2 runs next on this worker: a state it committed meanwhile is its own.
        state = svc.artifacts.checkpoints(job["id"], 2).read_state()
        assert state is None or state["attempt"] == 2
    finally:
        api.cancel(job["id"])


def test_an_unexpected_worker_error_reaches_the_user_as_a_stable_code_only(stack, api, svc):
    """A corrupted artifact: a model whose model.keras is not a Keras file. Keras' error
    names the worker's local path; the user gets internal_error and a generic message,
    the worker's log the traceback."""
    model = registered_model(svc)
    with svc.artifacts.scratch_dir() as files:  # valid files, and a model.keras cut short
        (files / "vocab.json").write_text(json.dumps(list(model["alphabet"])))
        (files / "config.json").write_text(json.dumps(model["config"]))
        (files / "metrics.json").write_text("{}")
        (files / "model.keras").write_bytes(b"PK\x03\x04" + bytes(100))
        svc.artifacts.publish_model(model["id"], model["attempt"], files)
    job = api.wait(api.generate(model["id"], length=10)["id"], poll_s=0.1, timeout_s=60)
    assert job["status"] == "failed" and job["error"]["code"] == "internal_error"
    message = job["error"]["message"]
    assert "unexpected error" in message and job["id"] in message
    assert "/" not in message and "ValueError" not in message and "filepath" not in message
    log = (stack.log_dir / "worker-generate.log").read_text()
    trace = log[log.index(f"job {job['id']}: failed unexpectedly"):]
    assert "Traceback" in trace and "File not found: filepath=" in trace
