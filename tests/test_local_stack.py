"""`make up`'s runner, as a user runs it: embedded Redis, ready line, SIGTERM, no orphans."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests

from client.cli_io import STACK_FILE
from shared.stack.runner import free_port
from tests.terminal import Terminal
from tests.test_end_to_end import TEXT

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


@pytest.mark.stack  # textgen up
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


@pytest.mark.stack  # textgen up
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


@pytest.mark.subprocess  # textgen token create
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
    from shared.runtime.services import Services

    secret = Services.from_settings(settings).webhooks.secret("carol")
    [line] = [line for line in made.stderr.splitlines() if secret in line]
    assert secret.startswith("whsec_") and "signs the webhooks" in line
    client = app.test_client()
    assert client.get("/v1/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # Only its digest is stored.
    from shared.runtime.redis_db import Keys

    stored = redis.Redis.from_url(settings.redis_url, decode_responses=True).hgetall(
        Keys(settings.redis_prefix).tokens())
    assert list(stored.values()) == ["carol"] and token not in str(stored)


@pytest.mark.stack  # textgen up
def test_ctrl_c_of_up_says_so_at_once_and_stops_within_10_s_while_a_job_trains(tmp_path):
    """`make up` in a terminal; `textgen token create bob` finds its Redis by itself."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TEXTGEN_TOKEN",
                                                            "TEXTGEN_URL")}
    env.update(TEXTGEN_PORT=str(port), TEXTGEN_DATA_DIR=str(tmp_path / "data"))
    with Terminal([sys.executable, "-m", "client", "up"], env=env, cwd=REPO) as up:
        up.read_until("Ctrl-C stops it", timeout_s=180)
        children = descendants(up.process.pid)
        textgen = [sys.executable, "-m", "client"]
        # Another terminal in the same checkout finds the API without being told its port.
        found = subprocess.run([*textgen, "health"], cwd=REPO, capture_output=True,
                               text=True, timeout=60, env={
                                   k: v for k, v in env.items() if k != "TEXTGEN_PORT"})
        assert found.returncode == 0 and found.stdout.startswith("ok: "), found.stderr
        made = subprocess.run([*textgen, "token", "create", "bob"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=60)
        assert made.returncode == 0 and made.stdout.startswith("tg_"), made.stderr
        corpus = tmp_path / "night.txt"
        corpus.write_text(TEXT)
        bob = {**env, "TEXTGEN_TOKEN": made.stdout.strip()}
        job_id = subprocess.run([*textgen, "train", corpus, "--epochs", "1000", "--units",
                                 "32", "--layers", "1", "--max-seconds", "300"], cwd=REPO,
                                env=bob, capture_output=True, text=True, timeout=60,
                                check=True).stdout.strip()
        deadline = time.monotonic() + 120
        while requests.get(f"http://127.0.0.1:{port}/v1/jobs/{job_id}", timeout=5, headers={
                "Authorization": f"Bearer {bob['TEXTGEN_TOKEN']}"}).json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)

        pressed = time.monotonic()
        up.ctrl_c()
        up.read_until("stopping textgen", timeout_s=1)  # at once
        up.ctrl_c()  # an impatient second Ctrl-C: said again, the stop goes on in order
        up.read_until("still stopping", timeout_s=1)
        assert up.wait(timeout_s=10) == 0
        assert time.monotonic() - pressed < 10, up.output
    # Every process it started is gone, none left a zombie (alive() counts those as dead:
    # /proc would still list one), and the file that told where its Redis was is too.
    assert [pid for pid in children if Path(f"/proc/{pid}").exists()] == []
    assert not (tmp_path / "data" / STACK_FILE).exists()
    done = subprocess.run([*textgen, "token", "create", "carol"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr == (
        f"textgen: no local stack runs on {tmp_path / 'data'} and REDIS_URL is not set: "
        "start one (make up), run this in the directory you ran it from (or set "
        "TEXTGEN_DATA_DIR to its data), or set REDIS_URL to the server's Redis\n")
