"""Redis stops and starts again under a running stack: nothing is lost (issue 7, point 5).

A redis-server of the test's own, with append-only persistence; `make up`'s stack on it.
While Redis is down the API answers 503 problem+json within 3 s; once it is back, the
workers and the API reconnect by themselves, and the running job carries on (or is
resumed from its checkpoint), the queued one runs, every record is still there.
"""

import time

import pytest
import requests

from client.api_client import Client
from shared.stack.runner import LocalStack, free_port
from tests.conftest import TOKENS
from tests.faults import (
    FAST_LEASES,
    SLOW_EPOCHS,
    TEXT,
    RedisProcess,
    all_events,
    epochs_reported,
    wait_for,
)

pytestmark = pytest.mark.stack  # a stack on a redis-server of its own


@pytest.fixture
def redis_server(tmp_path):
    server = RedisProcess(tmp_path / "redis").start()
    yield server
    if server.process.poll() is None:
        server.stop()


def test_records_and_jobs_survive_a_redis_restart(redis_server, tmp_path):
    env = {**FAST_LEASES, "TEXTGEN_REDIS_PREFIX": "restart:",
           "TEXTGEN_API_TOKENS": f"alice:{TOKENS['alice']}"}
    with LocalStack(tmp_path / "data", port=free_port(), redis_url=redis_server.url,
                    env=env) as stack:
        api = Client(stack.url, token=TOKENS["alice"], timeout_s=10)
        path = tmp_path / "night.txt"
        path.write_text(TEXT * 40)
        corpus = api.upload_corpus(path)
        running = api.train(corpus["id"], "default", **SLOW_EPOCHS)
        # Queued behind it, so one epoch is enough: it only has to run once Redis is back.
        queued = api.train(corpus["id"], "default", **{
            **SLOW_EPOCHS, "training": {**SLOW_EPOCHS["training"], "epochs": 1}})
        wait_for(lambda: 1 in epochs_reported(all_events(api, running["id"])), 120, "epoch 1")

        redis_server.stop()
        for method, path, body in [("get", f"/v1/jobs/{running['id']}", None),
                                   ("post", "/v1/train", {"corpus_id": corpus["id"]})]:
            started = time.monotonic()
            response = api.http.request(method, stack.url + path, json=body, timeout=10)
            took_s = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert response.headers["Content-Type"] == "application/problem+json"
            assert response.json()["code"] == "service_unavailable"
            assert took_s < 3, f"{method} {path} took {took_s:.1f} s to answer 503"
        # The running job trains on meanwhile; its heartbeats (every 0.5 s) fail.
        log = stack.log_dir / "worker-train.log"
        wait_for(lambda: f"job {running['id']}: heartbeat failed" in log.read_text(), 10,
                 "a heartbeat to fail")
        redis_server.start()

        assert wait_for(lambda: _answers(stack.url), 20, "the API to answer again")
        first = api.wait(running["id"], poll_s=0.3, timeout_s=180)
        second = api.wait(queued["id"], poll_s=0.3, timeout_s=180)
        assert first["status"] == second["status"] == "succeeded", (first, second)
        events = all_events(api, running["id"])
        assert epochs_reported(events) == [1, 2, 3, 4, 5, 6], [
            (e["type"], e["data"].get("status") or e["data"].get("epoch")) for e in events]
        assert api._call("GET", f"/v1/corpora/{corpus['id']}")["id"] == corpus["id"]
        assert {job["id"] for job in api._call("GET", "/v1/jobs")["data"]} == {
            running["id"], queued["id"]}


def _answers(url):
    try:
        return requests.get(url + "/v1/health", timeout=5).status_code == 200
    except requests.RequestException:
        return False
