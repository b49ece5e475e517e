"""GET /v1/health answers from the heartbeats workers write to Redis: no broadcast to the
workers and no wait for their replies. (Real workers' heartbeats: test_end_to_end.)"""

import json
import time

from shared.runtime.metrics import WORKER_SEEN_S
from tests.conftest import client_of


def test_health_counts_the_workers_whose_heartbeats_are_in_redis(app, services):
    # What a worker's reaper thread writes each pass; no Celery worker answers here.
    services.metrics.worker_alive("worker-train@host/11", ["train"])
    services.metrics.worker_alive("worker-generate@host/12", ["generate"])
    body = client_of(app, None).get("/v1/health").get_json()
    assert body["status"] == "ok" and body["redis"] is True
    assert body["workers"] == {"train": 1, "generate": 1}
    assert {beat["name"]: beat["queues"] for beat in body["heartbeats"]} == {
        "worker-train@host/11": ["train"], "worker-generate@host/12": ["generate"]}
    assert all(0 <= beat["age_s"] < 5 for beat in body["heartbeats"])


def test_a_silent_or_stopped_worker_is_no_longer_counted(app, services):
    silent = json.dumps(["worker-train@host/21", ["train"]])
    services.redis.zadd(services.keys.workers_seen(),
                        {silent: time.time() - WORKER_SEEN_S - 1})
    services.metrics.worker_alive("worker-generate@host/22", ["generate"])
    services.metrics.worker_alive("worker-train@host/23", ["train"])
    services.metrics.worker_gone("worker-train@host/23", ["train"])  # a clean shutdown
    body = client_of(app, None).get("/v1/health").get_json()
    assert body["workers"] == {"train": 0, "generate": 1} and body["status"] == "degraded"
    assert [beat["name"] for beat in body["heartbeats"]] == ["worker-generate@host/22"]


def test_health_waits_for_no_worker(app):
    # Asking the workers (a broadcast, then a second's wait for replies) took a second a
    # call; twenty calls in five seconds leave room for a loaded machine.
    client = client_of(app, None)
    began = time.monotonic()
    for _ in range(20):
        assert client.get("/v1/health").status_code == 200
    assert time.monotonic() - began < 5
