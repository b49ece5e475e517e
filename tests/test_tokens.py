"""Secrets you can rotate: `textgen token revoke`, `rotate` and `rotate-webhook-secret`, run
as an operator runs them (a subprocess against the test Redis), checked through the real
API and the real webhook sender."""

import json
import os
import subprocess
import sys
import time

import pytest

from shared.stack.runner import REPO
from shared.stores.auth import fingerprint
from shared.webhooks.outbox import signature
from tests.conftest import TOKENS
from tests.webhook_receiver import Receiver, queue_delivery
from worker.webhook_sender import WebhookSender

pytestmark = pytest.mark.subprocess  # the textgen command


@pytest.fixture
def textgen(settings):
    """Runs `textgen ARGS...` on the test Redis; (exit code, stdout, stderr)."""
    def run(*args, **env):
        full = {**os.environ, "REDIS_URL": settings.redis_url,
                "TEXTGEN_REDIS_PREFIX": settings.redis_prefix,
                "TEXTGEN_DATA_DIR": str(settings.data_dir), **env}
        done = subprocess.run([sys.executable, "-m", "client", *args], cwd=REPO, env=full,
                              capture_output=True, text=True, timeout=60)
        return done.returncode, done.stdout, done.stderr
    return run


def status_with(app, token):
    return app.test_client().get("/v1/jobs", headers={"Authorization": f"Bearer {token}"}
                                 ).status_code


def test_a_rotated_token_works_until_its_grace_period_ends(app, services, textgen):
    old = services.tokens.create("carol")  # `token create` has its own test (test_local_stack)
    assert status_with(app, old) == 200
    code, out, err = textgen("token", "rotate", "carol", "--grace", "1s", "--json")
    assert code == 0, err
    rotated = json.loads(out)
    new = rotated["token"]
    assert new.startswith("tg_") and rotated["grace_s"] == 1 and len(rotated["old"]) == 1
    assert status_with(app, new) == 200 and status_with(app, old) == 200
    deadline = time.monotonic() + 5  # Redis expires the old one after 1 s
    while status_with(app, old) == 200:
        assert time.monotonic() < deadline, "the old token outlived its grace period"
        time.sleep(0.1)
    assert status_with(app, old) == 401 and status_with(app, new) == 200
    # Without a grace period the old one stops at once.
    code, newer, _ = textgen("token", "rotate", "carol", "--grace", "0")
    assert code == 0 and status_with(app, new) == 401 and status_with(app, newer.strip()) == 200


def test_revoke_takes_one_token_by_its_fingerprint_or_all_of_a_name(app, services, textgen):
    first, second = services.tokens.create("carol"), services.tokens.create("carol")
    code, out, err = textgen("token", "revoke", "carol", fingerprint(first)[:8])
    assert code == 0 and out.split() == [fingerprint(first)], err
    assert status_with(app, first) == 401 and status_with(app, second) == 200
    # A token in its grace period is revoked with the others.
    rotated, _ = services.tokens.rotate("carol", grace_s=3600)
    code, out, _ = textgen("token", "revoke", "carol")
    assert code == 0 and sorted(out.split()) == sorted(map(fingerprint, (second, rotated)))
    assert {status_with(app, t) for t in (second, rotated)} == {401}
    code, _, err = textgen("token", "revoke", "carol")
    assert code == 1 and err.endswith("textgen: carol has no token in Redis\n")


def test_a_token_from_the_environment_is_configuration_and_the_command_says_so(textgen):
    configured = {"TEXTGEN_API_TOKENS": f"alice:{TOKENS['alice']}"}
    for args in (("rotate", "alice"), ("revoke", "alice")):
        code, out, err = textgen("token", *args, **configured)
        assert code == 1 and out == ""
        assert "alice has a token in TEXTGEN_API_TOKENS" in err
        assert "Remove (or replace) alice's entry there, then restart the API" in err


def test_a_rotated_webhook_secret_signs_beside_the_new_one_during_its_grace(
        services, textgen):
    old = services.webhooks.secret("alice")
    code, out, err = textgen("token", "rotate-webhook-secret", "alice", "--grace", "1h")
    assert code == 0 and "signature by the old secret too" in err
    new = out.strip()
    assert new.startswith("whsec_") and new != old
    receiver = Receiver()
    try:
        delivery_id = queue_delivery(services.webhooks, "alice", receiver.url, 1)
        [(owner, claimed)] = services.webhooks.claim_due(1)
        assert WebhookSender(services.webhooks, ("127.0.0.1",)).send(owner, claimed)
    finally:
        receiver.close()
    [(headers, body, _)] = receiver.deliveries
    assert headers["webhook-id"] == delivery_id
    # Standard Webhooks: space-separated "v1,<signature>" entries; a receiver on either
    # secret finds its own among them.
    assert headers["webhook-signature"].split(" ") == [
        signature(secret, delivery_id, headers["webhook-timestamp"], body)
        for secret in (new, old)]
