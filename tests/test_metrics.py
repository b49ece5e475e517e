"""GET /metrics: behind its own token, in Prometheus' format (read back with
prometheus-client's own parser), counting what every process recorded in Redis."""

import dataclasses
import hashlib

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api_helpers import upload
from tests.conftest import client_of
from worker.reaper import Reaper

METRICS_TOKEN = "metrics-token-0123456789"


@pytest.fixture
def metrics_settings(settings):
    return dataclasses.replace(settings, metrics_token_digest=hashlib.sha256(
        METRICS_TOKEN.encode()).hexdigest())


def scrape(app, token=METRICS_TOKEN):
    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return {sample.name + _labels(sample.labels): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def _labels(labels):
    return "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


def test_metrics_are_not_there_without_a_token_configured(app):
    assert app.test_client().get("/metrics").status_code == 404


def test_metrics_need_the_metrics_token(metrics_settings):
    from api import create_app

    app = create_app(metrics_settings)
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                    {"Authorization": "Bearer alice-token-0123456789"}):  # an API token
        assert app.test_client().get("/metrics", headers=headers).status_code == 401


def test_metrics_count_jobs_queues_durations_workers_and_reaping(metrics_settings):
    from api import create_app
    from shared.runtime.services import Services

    app = create_app(metrics_settings)
    svc = Services.from_settings(metrics_settings)
    client = client_of(app)
    corpus = upload(client)
    jobs = [client.post("/v1/train", json={"corpus_id": corpus["id"]}).get_json()["id"]
            for _ in range(3)]
    client.post(f"/v1/jobs/{jobs[0]}/cancel")
    svc.jobs.start(jobs[1], "w1", lease_ms=1)  # a worker that will never renew its lease
    svc.metrics.job_ended("train", "succeeded", 42.0)
    svc.metrics.epoch_ended(2.5, targets=10_000)
    import time

    time.sleep(0.01)
    Reaper(svc, "train@host/1", ["train"]).reap_once()

    values = scrape(app)
    # One reaped back (holding its slot: sent again), one waiting for a slot.
    assert values['textgen_jobs_active{status=queued,type=train}'] == 2
    assert values['textgen_jobs_active{status=running,type=train}'] == 0
    assert values['textgen_jobs_ended_total{status=cancelled,type=train}'] == 1
    assert values['textgen_jobs_ended_total{status=succeeded,type=train}'] == 1
    assert values['textgen_jobs_reaped_total{outcome=requeued}'] == 1
    assert values['textgen_job_duration_seconds_bucket{le=60.0,type=train}'] == 1
    assert values['textgen_job_duration_seconds_bucket{le=15.0,type=train}'] == 0
    assert values['textgen_job_duration_seconds_sum{type=train}'] == 42.0
    assert values['textgen_epoch_duration_seconds_count{type=train}'] == 1
    assert values['textgen_trained_targets_total{}'] == 10_000
    assert values['textgen_queue_depth{queue=train}'] == 2  # one waiting, one sent again
    assert values['textgen_workers_alive{queue=train}'] == 1
    assert values['textgen_workers_alive{queue=generate}'] == 0
