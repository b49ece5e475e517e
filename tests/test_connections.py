"""Long connections don't starve short ones: event streams and `Prefer: wait` requests hold
an idle thread each, no Redis connection of their own, and each owner holds only so many;
clients that never hang up stall no one.

The per-owner cap through the Flask app on real Redis; hundreds of held connections on the
real stack (gunicorn, workers, Redis), timed only with generous bounds (the figures
belong to bench/connections.py).
"""

import dataclasses
import os
import signal
import threading
import time

import pytest
import requests

from api import create_app
from api.download_slots import DownloadSlots
from shared.stores.auth import TokenStore
from shared.runtime.services import Services
from shared.runtime.settings import Settings
from shared.stores.owner_slots import OwnerSlots
from tests.api_helpers import assert_problem, registered_model
from tests.conftest import TOKENS, bearer, client_of
from tests.faults import wait_for
from tests.held_connections import (
    HeldRequests,
    api_worker_pids,
    port_of,
    read_status,
    tcp_connections_to,
)

STREAM = {"Accept": "text/event-stream"}


@pytest.fixture
def capped(settings):
    """The app with a cap of two held connections per owner."""
    return create_app(dataclasses.replace(settings, max_streams_per_owner=2))


def test_streams_over_the_owners_cap_are_refused_until_one_closes(capped, services):
    model = registered_model(services)
    job = client_of(capped).post("/v1/generate", json={"model_id": model["id"]}).get_json()
    path = f"/v1/jobs/{job['id']}/events"
    alice = client_of(capped)
    first, second = alice.get(path, headers=STREAM), alice.get(path, headers=STREAM)
    assert first.status_code == second.status_code == 200
    refused = assert_problem(alice.get(path, headers=STREAM), 429, "too_many_streams")
    assert "TEXTGEN_MAX_STREAMS_PER_OWNER" in refused["detail"]
    # Another owner's streams are counted apart (bob's own job: alice's is a 404 to him).
    bob_model = registered_model(services, owner="bob")
    bob_job = client_of(capped, "bob").post(
        "/v1/generate", json={"model_id": bob_model["id"]}).get_json()
    bobs = client_of(capped, "bob").get(f"/v1/jobs/{bob_job['id']}/events", headers=STREAM)
    assert bobs.status_code == 200
    # Closed in the order opened, last first: the test client keeps each stream's request
    # context on one stack (under gunicorn each request has its own).
    bobs.close()
    second.close()  # the server closes the stream: its slot is free again
    third = alice.get(path, headers=STREAM)
    assert third.status_code == 200
    third.close()
    first.close()


def test_a_slot_nobody_renews_expires(services):
    # A killed API process or a vanished client never releases its slot: it expires.
    slots = OwnerSlots(services.redis, services.keys.stream_slots, ttl_s=0.3)
    held = slots.take("alice", 2)
    assert held and slots.take("alice", 2)
    assert slots.take("alice", 2) is None
    time.sleep(0.2)
    slots.renew("alice", held)  # a live stream renews its slot; the other one is gone
    time.sleep(0.2)
    assert slots.take("alice", 2) is not None
    assert slots.take("alice", 2) is None


def test_a_download_slot_is_renewed_while_held_and_expires_once_its_process_is_gone(
        services):
    slots = OwnerSlots(services.redis, services.keys.download_slots, ttl_s=0.3)
    downloads = DownloadSlots(slots, renew_s=0.1)
    held = downloads.take("alice", 2)
    slots.take("alice", 2)  # another process's, which died: nobody renews it
    time.sleep(1.0)
    assert slots.held("alice") == 1  # this process renews its own
    downloads.release("alice", held)
    assert slots.held("alice") == 0
    time.sleep(0.4)
    assert slots.held("alice") == 0  # a renewal never takes a released slot again


def test_a_wait_over_the_cap_is_not_held(capped, services):
    model = registered_model(services)
    alice = client_of(capped)
    job = alice.post("/v1/generate", json={"model_id": model["id"]}).get_json()
    streams = [alice.get(f"/v1/jobs/{job['id']}/events", headers=STREAM) for _ in range(2)]
    began = time.monotonic()
    response = alice.post("/v1/generate", json={"model_id": model["id"]},
                          headers={"Prefer": "wait=10"})
    assert time.monotonic() - began < 5  # not the 10 s asked for
    assert response.status_code == 202 and "Preference-Applied" not in response.headers
    for stream in reversed(streams):  # last first (see above)
        stream.close()


def test_a_wait_ends_as_soon_as_its_job_does(client, services):
    model = registered_model(services)
    answers = []
    job = client.post("/v1/generate", json={"model_id": model["id"]}).get_json()

    def wait_on_another_job():
        answers.append(client.post("/v1/generate", json={"model_id": model["id"]},
                                   headers={"Prefer": "wait=30"}))

    waiter = threading.Thread(target=wait_on_another_job)
    waiter.start()
    deadline = time.monotonic() + 10
    while len(client.get("/v1/jobs?status=queued").get_json()["data"]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    waited = client.get("/v1/jobs?status=queued&limit=1").get_json()["data"][0]
    assert waited["id"] != job["id"]
    began = time.monotonic()
    client.post(f"/v1/jobs/{waited['id']}/cancel")
    waiter.join(timeout=20)
    assert time.monotonic() - began < 5  # woken by the event, not by the 30 s deadline
    assert answers[0].status_code == 200
    assert answers[0].get_json()["status"] == "cancelled"


# --- on the real stack ----------------------------------------------------------------

STREAMS, WAITS = 500, 100
STREAM_OWNERS = 5  # 100 streams each: the default cap
WAIT_OWNERS = 13  # at most 8 active jobs each (TEXTGEN_MAX_ACTIVE_JOBS)


@pytest.fixture
def stack_services(stack):
    return Services.from_settings(Settings(
        redis_url=stack.redis_url, data_dir=stack.data_dir,
        redis_prefix=stack.extra_env["TEXTGEN_REDIS_PREFIX"]))


@pytest.fixture
def owners(stack_services):
    """Owners with a token and a (stand-in) model each, on the stack's Redis and store."""
    tokens = TokenStore(stack_services.redis, stack_services.keys)
    made = {}
    for n in range(STREAM_OWNERS + WAIT_OWNERS):
        name = f"held-{os.getpid()}-{n}"
        made[name] = (tokens.create(name), registered_model(stack_services, owner=name)["id"])
    return made


def test_submissions_and_health_answer_while_500_streams_and_100_waits_are_held(
        stack, stack_services, owners):
    paused = stack.processes["worker-generate"]
    os.killpg(paused.pid, signal.SIGSTOP)  # generation jobs stay queued: waits stay held
    held = HeldRequests(stack.url, timeout_s=30)
    names = list(owners)
    try:
        for name in names[:STREAM_OWNERS]:
            token, model_id = owners[name]
            job = requests.post(stack.url + "/v1/generate", json={"model_id": model_id},
                                headers={"Authorization": f"Bearer {token}"}, timeout=30)
            for _ in range(STREAMS // STREAM_OWNERS):
                held.stream(job.json()["id"], token)
        waits = []
        for n in range(WAITS):
            token, model_id = owners[names[STREAM_OWNERS + n % WAIT_OWNERS]]
            waits.append(held.send("POST", "/v1/generate", {
                "Authorization": f"Bearer {token}", "Prefer": "wait=60"},
                {"model_id": model_id}))

        wait_for(lambda: queued_jobs(stack, [owners[n][0] for n in names[STREAM_OWNERS:]])
                 == WAITS, 30, "every wait's job stored: the waits are held from here on")
        # Short requests go on beside them, each well within its bound.
        session = requests.Session()
        alice_model = registered_model(stack_services)["id"]
        for _ in range(5):
            began = time.monotonic()
            submitted = session.post(stack.url + "/v1/generate", json={"model_id": alice_model},
                                     headers=bearer("alice"), timeout=30)
            assert submitted.status_code == 202 and time.monotonic() - began < 2
            began = time.monotonic()
            assert session.get(stack.url + "/v1/health", timeout=30).status_code == 200
            assert time.monotonic() - began < 2
        assert len(held.unanswered(waits)) == WAITS  # every wait still held
        # One reader per API process, not a Redis connection per waiting request.
        # Per process: its pool's cap (32, shared/runtime/redis_db.py), Celery's producers and the
        # one event reader; 77 to 104 for both in bench/connections.py's runs.
        connections = tcp_connections_to(api_worker_pids(stack), port_of(stack.redis_url))
        assert connections < 150, f"the API holds {connections} Redis connections"
    finally:
        held.close()
        for token in [token for token, _ in owners.values()] + [TOKENS["alice"]]:
            for job in queued_jobs(stack, [token], listed=True):
                requests.post(f"{stack.url}/v1/jobs/{job['id']}/cancel",
                              headers={"Authorization": f"Bearer {token}"}, timeout=30)
        os.killpg(paused.pid, signal.SIGCONT)


def queued_jobs(stack, tokens, listed=False):
    """The queued jobs of the owners of `tokens` (listed=True), or how many there are."""
    jobs = []
    for token in tokens:
        jobs += requests.get(stack.url + "/v1/jobs?status=queued&limit=100", timeout=30,
                             headers={"Authorization": f"Bearer {token}"}).json()["data"]
    return jobs if listed else len(jobs)



LINGERING = 20  # clients that never hang up; 2 s each stalled gunicorn's loop (40 s in all)


def test_clients_that_never_hang_up_stall_no_one(stack):
    # Each asks for Connection: close and keeps its socket: gunicorn then waits up to 2 s
    # for it to hang up (api/gunicorn_worker.py), which must not be in the loop that
    # accepts everyone else's connections.
    held = HeldRequests(stack.url, timeout_s=30)
    try:
        lingering = [held.send("GET", "/v1/health", {}) for _ in range(LINGERING)]
        took = []
        for _ in range(10):
            began = time.monotonic()
            assert requests.get(stack.url + "/v1/health", timeout=30).status_code == 200
            took.append(time.monotonic() - began)
        assert max(took) < 1, f"health took {[round(s, 2) for s in took]} s"
        assert [read_status(sock, 30) for sock in lingering] == [200] * LINGERING
    finally:
        held.close()
