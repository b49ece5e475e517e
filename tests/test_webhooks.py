"""Webhooks: where they may go, how they are signed, retried and never sent twice once
acknowledged; through the API, the job store and a receiver on 127.0.0.1."""

import dataclasses
import time

import pytest

from shared.errors import ValidationError
from shared.webhooks import check_webhook_url, signature
from tests.api_helpers import assert_problem, registered_model, upload
from tests.conftest import client_of
from tests.webhook_receiver import Receiver


@pytest.fixture
def receiver():
    receiving = Receiver()
    yield receiving
    receiving.close()


@pytest.mark.parametrize("url, allowed", [
    ("https://hooks.example.com/textgen", True),
    ("http://127.0.0.1:8080/hook", True),  # listed
    ("http://10.0.0.5/hook", False),  # plain http to a host nobody listed
    ("http://localhost/hook", False),
    ("ftp://example.com/hook", False),
    ("file:///etc/passwd", False),
    ("https:///no-host", False),
])
def test_where_a_webhook_may_go(url, allowed):
    if allowed:
        assert check_webhook_url(url, ("127.0.0.1",)) == url
    else:
        with pytest.raises(ValidationError) as e:
            check_webhook_url(url, ("127.0.0.1",))
        assert e.value.field == "webhook"


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


def deliver_all(services, rounds=50):
    """Send what is due until nothing is left, as a worker's sender thread does."""
    for _ in range(rounds):
        for delivery_id in services.webhooks.claim_due():
            services.webhooks.send(delivery_id)
        if not services.redis.zcard(services.keys.webhooks_due()):
            return
        time.sleep(0.05)


def test_a_delivery_is_signed_retried_and_sent_once_acknowledged(services, receiver):
    services.webhooks.first_retry_s = 0.01
    receiver.statuses = [500, 503]  # two failures, then 200
    job = services.jobs.create("generate", {"model_id": "m"}, "alice", max_active=10,
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
    job = services.jobs.create("generate", {"model_id": "m"}, "alice", max_active=10,
                               model_id="m", webhook=receiver.url, webhook_events=["completed"])
    delivery_id = services.webhooks.notify(job, "completed")
    services.redis.hset(services.keys.webhook(delivery_id), "first_at", time.time() - 86_401)
    deliver_all(services)
    assert len(receiver.deliveries) == 1
    assert not services.redis.exists(services.keys.webhook(delivery_id))
