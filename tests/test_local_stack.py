"""`make up`'s runner, as a user runs it: embedded Redis, ready line, SIGTERM, no orphans."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests

from client.stack import free_port

REPO = Path(__file__).resolve().parents[1]


def descendants(pid):
    """Every process below `pid`, from /proc's children lists."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.append(child)
                todo.append(child)
    return found


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_up_serves_then_stops_everything_on_sigterm(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # embedded Redis
    env.update(TEXTGEN_PORT=str(port), TEXTGEN_DATA_DIR=str(tmp_path / "data"))
    up = subprocess.Popen([sys.executable, "-m", "client", "up"], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ready = up.stdout.readline()
        assert f"ready at http://127.0.0.1:{port}" in ready, ready
        health = requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=5).json()
        assert health["status"] == "ok"
        # Zero configuration: a local token, printed once, kept in the data dir (0600).
        token_line = up.stdout.readline()
        token_file = tmp_path / "data" / "token"
        token = token_file.read_text().strip()
        assert "shown once" in token_line and token_line.rstrip().endswith(token)
        assert token_file.stat().st_mode & 0o777 == 0o600
        jobs = f"http://127.0.0.1:{port}/v1/jobs"
        assert requests.get(jobs, timeout=5).status_code == 401
        assert requests.get(jobs, headers={"Authorization": f"Bearer {token}"},
                            timeout=5).status_code == 200
        children = descendants(up.pid)
        assert len(children) >= 4  # redis, gunicorn (+ its workers), two Celery workers
        assert (tmp_path / "data" / "redis" / "appendonly.aof").exists() or \
            (tmp_path / "data" / "redis" / "appendonlydir").exists()

        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=60) == 0
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in children if alive(pid)] == []
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


def test_up_on_a_taken_port_says_so_and_starts_nothing(tmp_path):
    """Not a stack that answers with another server's API (gunicorn retries the bind)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "TEXTGEN_PORT": str(port), "TEXTGEN_DATA_DIR": str(tmp_path)}
        env.pop("REDIS_URL", None)
        done = subprocess.run([sys.executable, "-m", "client", "up"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (f"textgen: port {port} is in use (Address already in use): "
                           "another textgen up? Set TEXTGEN_PORT to another port\n")
    assert not (tmp_path / "redis").exists()


def test_token_create_prints_a_token_the_api_accepts(settings, app):
    env = {**os.environ, "REDIS_URL": settings.redis_url,
           "TEXTGEN_REDIS_PREFIX": settings.redis_prefix,
           "TEXTGEN_DATA_DIR": str(settings.data_dir)}
    made = subprocess.run([sys.executable, "-m", "client", "token", "create", "carol"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("tg_") and "shown once" in made.stderr
    # And the owner's webhook signing secret, on a line of its own that says what it is.
    from shared.services import Services

    secret = Services.from_settings(settings).webhooks.secret("carol")
    [line] = [line for line in made.stderr.splitlines() if secret in line]
    assert secret.startswith("whsec_") and "signs the webhooks" in line
    client = app.test_client()
    assert client.get("/v1/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # Only its digest is stored.
    from shared.redis_db import Keys

    stored = redis.Redis.from_url(settings.redis_url, decode_responses=True).hgetall(
        Keys(settings.redis_prefix).tokens())
    assert list(stored.values()) == ["carol"] and token not in str(stored)
