"""Fixtures: settings on a test Redis database under a key prefix of their own, a tmp data
directory, the real Flask app and its client, a real local stack (API + workers), and the
artifact store on both backends (`backend`, `store`: a local directory, and S3 through
moto's server on loopback, tests/s3_server.py).

Redis: TEXTGEN_TEST_REDIS_URL, else database 15 of the local server. Every key a test
writes carries a fresh prefix and is deleted afterwards, Celery's queues included
(shared/runtime/queue.py prefixes them too), so runs never see each other's data.
"""

import dataclasses
import os
import secrets
from pathlib import Path

import pytest
import redis

from shared.stores.auth import token_digest
from shared.runtime.settings import Settings
# Hooks: markers for what a test starts, and the guard that fails an unmarked one.
from tests.markers import (  # noqa: F401 (pytest finds hooks by name in a conftest)
    pytest_collection_modifyitems,
    pytest_runtest_makereport,
    pytest_runtest_protocol,
)

TEST_REDIS_URL = os.environ.get("TEXTGEN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
HANDOUTS = Path(__file__).resolve().parents[2] / "shared"  # ../shared beside the checkout

if "NLTK_DATA" not in os.environ and (HANDOUTS / "nltk_data").is_dir():
    os.environ["NLTK_DATA"] = str(HANDOUTS / "nltk_data")


def handout(relative):
    """A file from ../shared, or a clean skip when the handouts are not beside the checkout."""
    path = HANDOUTS / relative
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


def delete_prefix(url, prefix):
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


# Two owners, so every test can check that one never sees the other's records.
TOKENS = {"alice": "alice-token-0123456789", "bob": "bob-token-0123456789"}


def bearer(owner):
    return {"Authorization": f"Bearer {TOKENS[owner]}"}


@pytest.fixture
def settings(tmp_path):
    prefix = f"test-{secrets.token_hex(4)}:"
    settings = Settings(redis_url=TEST_REDIS_URL, data_dir=tmp_path / "data",
                        redis_prefix=prefix, max_upload_bytes=64 * 1024,
                        api_tokens=tuple((name, token_digest(token))
                                         for name, token in TOKENS.items()))
    delete_prefix(TEST_REDIS_URL, prefix)
    yield settings
    delete_prefix(TEST_REDIS_URL, prefix)


@pytest.fixture
def services(settings):
    from shared.runtime.services import Services

    return Services.from_settings(settings)


@pytest.fixture
def app(settings):
    from api import create_app

    return create_app(settings)


def client_of(app, owner="alice"):
    """The app's test client, sending `owner`'s token (None: no token) with every request."""
    client = app.test_client()
    if owner:
        client.environ_base["HTTP_AUTHORIZATION"] = bearer(owner)["Authorization"]
    return client


@pytest.fixture
def client(app):
    return client_of(app, "alice")


@pytest.fixture
def other_client(app):
    return client_of(app, "bob")


@pytest.fixture(scope="session")
def gutenberg_url():
    """URL template of a stand-in for Project Gutenberg on 127.0.0.1 (tests/fake_gutenberg)."""
    from tests import fake_gutenberg

    url, server = fake_gutenberg.start()
    yield url
    server.shutdown()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The real thing: gunicorn API and one Celery worker per queue, on the test Redis."""
    from shared.stack.runner import LocalStack, free_port

    prefix = f"test-stack-{secrets.token_hex(4)}:"
    data_dir = tmp_path_factory.mktemp("stack-data")
    env = {"TEXTGEN_REDIS_PREFIX": prefix, "TEXTGEN_PROGRESS_INTERVAL_S": "0.2",
           "TEXTGEN_API_TOKENS": ",".join(f"{name}:{token}" for name, token in TOKENS.items()),
           # Webhooks to a receiver in the test process, retried quickly.
           "TEXTGEN_WEBHOOK_ALLOW_HOSTS": "127.0.0.1", "TEXTGEN_WEBHOOK_RETRY_S": "0.2"}
    with LocalStack(data_dir, port=free_port(), redis_url=TEST_REDIS_URL, env=env) as running:
        yield running
    delete_prefix(TEST_REDIS_URL, prefix)


# The artifact store on both backends: a local directory, and S3 (moto's server on loopback).

S3_BUCKET = "textgen-test"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's S3 server for the session, with S3_BUCKET; fake AWS credentials in os.environ
    (inherited by worker processes) for as long as it runs."""
    from shared.stack.runner import free_port
    from tests.s3_server import MotoServer, fake_aws_environment, restore_environment

    saved = fake_aws_environment()
    server = MotoServer(free_port(), tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        server.create_bucket(S3_BUCKET)
        yield server
    finally:
        server.stop()
        restore_environment(saved)


@pytest.fixture(params=["file", "s3"])
def backend(request):
    return request.param


@pytest.fixture
def store_settings(settings, backend, request, tmp_path):
    """`settings` with the artifact store on `backend`: file://<data dir>, or a fresh prefix
    of the test bucket; the scratch cache in tmp_path either way."""
    changes = {"cache_dir": tmp_path / "cache"}
    if backend == "s3":
        server = request.getfixturevalue("s3_server")
        changes.update(artifacts_url=f"s3://{S3_BUCKET}/{secrets.token_hex(6)}",
                       s3_endpoint_url=server.endpoint_url)
    return dataclasses.replace(settings, **changes)


@pytest.fixture
def store(store_settings):
    from shared.stores.artifacts import open_artifact_store

    return open_artifact_store(store_settings)
