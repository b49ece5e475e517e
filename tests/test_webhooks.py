"""Webhooks: where they may go, how they are signed, retried and never sent twice once
acknowledged, how one send is bounded; through the API, the job store, the sender and
receivers on 127.0.0.1. (tests/test_webhook_abuse.py: hostile receivers against a worker.)"""

import dataclasses
import time

import pytest

from shared.contracts.errors import ValidationError
from shared.webhooks.targets import RefusedDestinationError, Target, check_webhook_url, resolve
from shared.webhooks.outbox import signature
from tests.api_helpers import assert_problem, registered_model, upload
from tests.conftest import client_of
from tests.webhook_receiver import HostileReceiver, Receiver, queue_delivery
from worker.webhook_post import PostError, post
from worker.webhook_sender import WebhookSender


@pytest.fixture
def receiver():
    receiving = Receiver()
    yield receiving
    receiving.close()


@pytest.mark.parametrize("url, allowed", [
    ("https://hooks.example.com/textgen", True),
    ("http://127.0.0.1:8080/hook", True),  # listed
    ("https://[::1]:8443/hook", True),  # listed with its port
    ("http://10.0.0.5/hook", False),  # plain http to a host nobody listed
    ("http://localhost/hook", False),
    ("ftp://example.com/hook", False),
    ("file:///etc/passwd", False),
    ("https:///no-host", False),
    ("https://user:pw@hooks.example.com/x", False),  # sign-in details end up in logs
    ("https://token@hooks.example.com/x", False),
    ("https://10.0.0.5/hook", False),  # an address literal: checked without a lookup
    ("https://169.254.169.254/latest", False),  # the cloud metadata service
    ("https://[::ffff:127.0.0.1]/hook", False),  # loopback, spelled as IPv6
    ("https://[::1]/hook", False),  # listed only on port 8443
    ("https://0.0.0.0/hook", False),
    ("https://hooks.example.com:99999/x", False),
])
def test_where_a_webhook_may_go(url, allowed):
    if allowed:
        assert check_webhook_url(url, ("127.0.0.1", "[::1]:8443")) == url
    else:
        with pytest.raises(ValidationError) as e:
            check_webhook_url(url, ("127.0.0.1", "[::1]:8443"))
        assert e.value.field == "webhook"


def test_a_name_is_refused_when_it_resolves_to_a_private_address_unless_listed():
    with pytest.raises(RefusedDestinationError, match="127.0.0.1"):
        resolve("https://localhost:8443/hook", ())
    with pytest.raises(RefusedDestinationError, match="127.0.0.1"):
        resolve("https://2130706433/hook", ())  # 127.0.0.1 as one number: not a literal
    with pytest.raises(RefusedDestinationError, match="127.0.0.1"):
        resolve("https://0x7f.1/hook", ())
    target = resolve("http://localhost:8080/hook", ("localhost:8080",))
    assert target.host == "localhost" and "127.0.0.1" in target.addresses
    with pytest.raises(RefusedDestinationError):
        resolve("https://user:pw@example.com/hook", ())  # stored before the rule: refused
    with pytest.raises(RefusedDestinationError, match="does not resolve"):
        resolve("https://no-such-host.invalid/hook", ())


def test_the_api_refuses_a_webhook_it_must_not_call(settings, services):
    from api import create_app

    client = client_of(create_app(dataclasses.replace(settings,
                                                      webhook_allow_hosts=("127.0.0.1",))))
    corpus = upload(client)
    assert_problem(client.post("/v1/train", json={"corpus_id": corpus["id"],
                                                  "webhook": "http://169.254.169.254/x"}),
                   422, "validation_failed", field="webhook")
    assert_problem(client.post("/v1/train", json={"corpus_id": corpus["id"],
                                                  "webhook": "https://h.example/x",
                                                  "webhook_events": ["started"]}),
                   422, "validation_failed", field="webhook_events.0")
    job = client.post("/v1/train", json={"corpus_id": corpus["id"],
                                         "webhook": "https://h.example/x",
                                         "webhook_events": ["epoch_end", "completed"]}).get_json()
    assert job["webhook"] == "https://h.example/x"
    assert job["webhook_events"] == ["completed", "epoch_end"]
    model = registered_model(services)
    gen = client.post("/v1/generate", json={"model_id": model["id"],
                                            "webhook": "http://127.0.0.1:9/hook"}).get_json()
    assert gen["webhook_events"] == ["completed"] and "webhook" not in gen["spec"]
    response = client.post("/v1/train", json={"corpus_id": corpus["id"],
                                              "webhook": "https://me:hunter22@h.example/x"})
    assert_problem(response, 422, "validation_failed", field="webhook")


def deliver_all(services, rounds=50, allow_hosts=("127.0.0.1",)):
    """Send what is due until nothing is left, as a worker's sender pool does."""
    sender = WebhookSender(services.webhooks, allow_hosts)
    for _ in range(rounds):
        for owner, delivery_id in services.webhooks.claim_due(10):
            sender.send(owner, delivery_id)
        if not services.redis.zcard(services.keys.webhook_owners()):
            return
        time.sleep(0.05)


def test_a_delivery_is_signed_retried_and_sent_once_acknowledged(services, receiver):
    services.webhooks.first_retry_s = 0.01
    receiver.statuses = [500, 503]  # two failures, then 200
    job = services.jobs.create("generate", {"model_id": "m"}, "alice", max_queued=10,
                               model_id="m", webhook=receiver.url, webhook_events=["completed"])
    attempt = services.jobs.start(job["id"], "w", 30_000)
    services.jobs.succeed(job["id"], attempt, {"samples": []})
    services.webhooks.notify(services.jobs.get(job["id"]), "completed")
    deliver_all(services)
    deliver_all(services)  # nothing left: an acknowledged delivery is not sent again
    assert [status for _, _, status in receiver.deliveries] == [500, 503, 200]
    [(headers, body)] = receiver.acknowledged()
    assert body["type"] == "job.completed" and body["data"]["id"] == job["id"]
    assert body["data"]["status"] == "succeeded" and "owner" not in body["data"]
    # Standard Webhooks: the receiver recomputes the signature with the owner's secret.
    raw = receiver.deliveries[-1][1]
    secret = services.webhooks.secret("alice")
    assert secret.startswith("whsec_")
    assert headers["webhook-signature"] == signature(
        secret, headers["webhook-id"], headers["webhook-timestamp"], raw)
    assert {h["webhook-id"] for h, _, _ in receiver.deliveries} == {headers["webhook-id"]}


def test_a_delivery_is_dropped_after_a_day_of_failures(services, receiver):
    services.webhooks.first_retry_s = 0.01
    receiver.statuses = [500] * 100
    job = services.jobs.create("generate", {"model_id": "m"}, "alice", max_queued=10,
                               model_id="m", webhook=receiver.url, webhook_events=["completed"])
    delivery_id = services.webhooks.notify(job, "completed")
    services.redis.hset(services.keys.webhook(delivery_id), "first_at", time.time() - 86_401)
    deliver_all(services)
    assert len(receiver.deliveries) == 1
    assert not services.redis.exists(services.keys.webhook(delivery_id))


@pytest.fixture
def hostile(request):
    receivers = []

    def make(mode, **kwargs):
        receivers.append(HostileReceiver(mode, **kwargs))
        return receivers[-1]
    yield make
    for receiving in receivers:
        receiving.close()


def test_a_send_goes_to_the_checked_address_with_the_name_in_its_host_header(receiver):
    # hooks.example never resolves (.example is reserved): the send can only have gone to
    # the address it was given, with no second lookup.
    port = receiver.server.server_address[1]
    target = Target("http", "hooks.example", port, ("127.0.0.1",))
    assert post(target, f"http://hooks.example:{port}/hook", b"{}", {"X-A": "b"}) == 200
    [(headers, body, _)] = receiver.deliveries
    assert headers["Host"] == f"hooks.example:{port}" and headers["X-A"] == "b"


def test_a_send_reads_at_most_64_KiB_and_ends_at_its_deadline(hostile):
    def send(receiving, deadline_s):
        started = time.monotonic()
        target = Target("http", "127.0.0.1", receiving.port, ("127.0.0.1",))
        status = post(target, receiving.url, b"{}", {}, deadline_s=deadline_s)
        return status, time.monotonic() - started

    # An endless body at ~30 MB/s: the status counts, the body is cut at the cap at once.
    status, took_s = send(hostile("endless"), deadline_s=10)
    assert status == 500 and took_s < 1
    # A body trickled a byte at a time: every read is quick, the whole is not.
    status, took_s = send(hostile("endless", chunk_bytes=1, pause_s=0.05), deadline_s=1.5)
    assert status == 500 and 1.4 < took_s < 2.5
    started = time.monotonic()
    with pytest.raises(PostError, match="no answer within 1 s"):
        send(hostile("silent"), deadline_s=1)
    assert time.monotonic() - started < 2


@pytest.mark.subprocess  # openssl makes its certificate
def test_a_send_checks_the_certificate_of_the_name(tmp_path):
    """https to a pinned address still names the host in TLS (SNI) and checks its
    certificate: a self-signed one is refused."""
    import socket
    import ssl
    import subprocess
    import threading

    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=hooks.example", "-keyout", tmp_path / "key.pem",
                    "-out", tmp_path / "cert.pem"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    names = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with conn:
            try:
                context.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                pass  # the sender hangs up on the certificate

    threading.Thread(target=serve, daemon=True).start()
    port = listener.getsockname()[1]
    try:
        with pytest.raises(PostError, match="CERTIFICATE_VERIFY_FAILED"):
            post(Target("https", "hooks.example", port, ("127.0.0.1",)),
                 f"https://hooks.example:{port}/hook", b"{}", {}, deadline_s=5)
    finally:
        listener.close()
    assert names == ["hooks.example"]


def test_each_owner_gets_a_turn_and_no_more_than_its_slots(services):
    for n in range(10):
        queue_delivery(services.webhooks, "alice", "https://a.example/", n)
    queue_delivery(services.webhooks, "bob", "https://b.example/", 1)
    # Bob's one delivery, queued after alice's ten, goes out in the first pair.
    assert [owner for owner, _ in services.webhooks.claim_due(2)] == ["alice", "bob"]
    # Alice holding 2 slots of this process gets no third; the rest is hers as they free.
    assert services.webhooks.claim_due(8, busy={"alice": 2}, per_owner=2) == []
    assert len(services.webhooks.claim_due(8, busy={"alice": 1}, per_owner=2)) == 1
    assert len(services.webhooks.claim_due(20)) == 8
    assert services.webhooks.claim_due(20) == []  # all claimed: due again after CLAIM_S


def test_both_secrets_sign_while_the_old_one_is_in_its_grace_period(services):
    old = services.webhooks.secret("alice")
    new = services.webhooks.rotate_secret("alice", grace_s=1)
    assert new != old and services.webhooks.secret("alice") == new
    headers = services.webhooks.headers("alice", "msg_1", b"{}")
    assert headers["webhook-signature"].split(" ") == [
        signature(s, "msg_1", headers["webhook-timestamp"], b"{}") for s in (new, old)]
    deadline = time.monotonic() + 5
    while len(services.webhooks.headers("alice", "msg_1", b"{}")["webhook-signature"]
              .split(" ")) == 2:
        assert time.monotonic() < deadline, "the old secret outlived its grace period"
        time.sleep(0.1)
    assert services.webhooks.rotate_secret("alice", grace_s=0) != new
    assert len(services.webhooks.signing_secrets("alice")) == 1
