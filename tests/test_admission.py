"""Submitting is one atomic step (shared/stores/admission.py), on real Redis servers: a request
that fails after its job was stored is replayed, never run twice; a pending
Idempotency-Key outlives a dead request by about a minute; the owner's quota never
holds a job whose record was not written."""

import dataclasses
import threading

import pytest
import redis

from api.idempotency import PENDING_TTL_S
from shared.stores.jobs import JobType
from shared.runtime.services import Services
from tests.api_helpers import registered_model, upload
from tests.conftest import client_of
from tests.faults import RedisProcess, wait_for


@pytest.fixture
def own_redis(tmp_path, settings):
    """A redis-server of the test's own (persistent: it can be stopped and started again),
    and the settings pointing at it."""
    server = RedisProcess(tmp_path / "redis").start()
    yield server, dataclasses.replace(settings, redis_url=server.url)
    if server.process.poll() is None:
        server.stop()


@pytest.mark.subprocess  # own_redis: a redis-server of its own
def test_a_503_after_the_job_was_stored_is_answered_with_that_job_on_retry(own_redis):
    from api import create_app

    server, settings = own_redis
    services = Services.from_settings(settings)
    model = registered_model(services)
    client = client_of(create_app(settings))
    request = {"json": {"model_id": model["id"], "length": 5},
               "headers": {"Idempotency-Key": "gen-1", "Prefer": "wait=6"}}
    answers = []
    waiting = threading.Thread(target=lambda: answers.append(
        client.post("/v1/generate", **request)))
    waiting.start()  # no worker: it waits for the job to end, with the job stored
    wait_for(lambda: services.jobs.scheduler.waiting_counts("generate"), 10, "the job")
    server.stop()  # Redis goes while the request waits: a 503, after the job was stored
    waiting.join(timeout=20)
    assert answers[0].status_code == 503, answers[0].get_json()
    server.start()

    retry = client.post("/v1/generate", json=request["json"],
                        headers={"Idempotency-Key": "gen-1"})
    assert retry.status_code == 202, retry.get_json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    jobs = services.jobs.page("alice", job_type="generate").data
    assert [job["id"] for job in jobs] == [retry.get_json()["id"]]


def test_a_pending_key_outlives_its_request_by_about_a_minute(settings, gutenberg_url):
    """The marker of a request that is killed before it answers: a retry a minute later
    runs, where it used to wait out 24 hours."""
    from api import create_app

    app = create_app(dataclasses.replace(settings, gutenberg_url=gutenberg_url))
    services = app.extensions["textgen"]
    slow = threading.Thread(target=client_of(app).post, args=("/v1/corpora",), kwargs={
        "json": {"gutenberg_id": 3}, "headers": {"Idempotency-Key": "slow-book"}})
    slow.start()  # book 3 arrives in 4 s: the request holds its key pending meanwhile
    pattern = services.keys.idempotency("alice", "*")
    key = wait_for(lambda: next(services.redis.scan_iter(match=pattern), None), 10,
                   "the pending marker")
    assert 0 < services.redis.ttl(key) <= PENDING_TTL_S <= 90
    slow.join()


@pytest.mark.subprocess  # own_redis
def test_the_quota_never_holds_a_job_whose_record_was_not_written(own_redis):
    """A write that fails in the middle of a submission (here: the job record's, refused
    by an ACL) leaves nothing behind: no quota entry, no index entry, no turn."""
    server, settings = own_redis
    admin = redis.Redis.from_url(server.url)
    prefix = settings.redis_prefix
    # Everything may be read; written, everything but job records (`{job_...}:job`).
    admin.execute_command(
        "ACL", "SETUSER", "submitter", "on", ">submitter-password", "+@all", "%R~*",
        f"~{prefix}owner*", f"~{prefix}sched:*",
        f"~{prefix}*:events")
    limited = dataclasses.replace(
        settings, redis_url=f"redis://submitter:submitter-password@127.0.0.1:{server.port}/0")
    jobs = Services.from_settings(limited).jobs
    with pytest.raises(redis.exceptions.NoPermissionError):
        jobs.create(JobType.TRAIN, {}, "alice", max_queued=10, corpus_id="c")
    services = Services.from_settings(settings)
    assert services.redis.smembers(services.keys.owner_active("alice")) == set()
    assert services.redis.zcard(services.keys.owner_index("alice", "jobs")) == 0
    assert services.jobs.scheduler.waiting_counts("train") == {}


# What a submission reads from this process' cache (the record never changes): the
# request field that names it, the submission, its body, the job's queue, the records' path.
_CACHED_READS = {
    "model": ("model_id", "/v1/generate", {"length": 5}, "generate", "models"),
    "corpus": ("corpus_id", "/v1/train", {"preset": "seed"}, "train", "corpora"),
}


@pytest.mark.parametrize("kind", sorted(_CACHED_READS))
def test_a_record_deleted_after_this_process_read_it_is_not_found_and_nothing_is_stored(
        app, services, kind):
    """Generation reads its model, training its corpus, from this process' cache; one
    deleted since is a 404 from the storing step, which stores nothing, reserves no
    storage and frees the Idempotency-Key, as when the record was never there."""
    field, path, rest, queue, records = _CACHED_READS[kind]
    client = client_of(app)
    record = registered_model(services) if kind == "model" else upload(client)
    body = {field: record["id"], **rest}
    first = client.post(path, json=body)  # reads the record into the cache
    assert first.status_code == 202, first.get_json()
    assert client.post(f"/v1/jobs/{first.get_json()['id']}/cancel").status_code == 200
    assert client.delete(f"/v1/{records}/{record['id']}").status_code == 204
    stored = services.redis.zcard(services.keys.owner_index("alice", "jobs"))

    for _ in range(2):  # the key is free again after the 404: the retry runs, and fails so
        answer = client.post(path, json=body, headers={"Idempotency-Key": "k"})
        assert answer.status_code == 404, answer.get_json()
        assert answer.get_json()["code"] == "not_found"
        assert answer.get_json()["field"] == field
        assert answer.get_json()["detail"] == f"no {kind} with id {record['id']!r}"
    assert services.redis.zcard(services.keys.owner_index("alice", "jobs")) == stored
    assert services.jobs.scheduler.waiting_counts(queue) == {}
    assert services.storage.usage("alice")[1] == 0  # reserved


def test_a_training_submission_is_one_round_trip_to_redis(app, services, monkeypatch):
    """Corpus (cached), the workers' throughput (read every few seconds), the storage
    reservation, the job and its Idempotency-Key's answer: one script call. (Six round
    trips before 2026-12-08: the key's marker, the corpus, the throughput, the
    reservation, the job, and the reservation handed to the job.)"""
    client = client_of(app)
    corpus = upload(client)
    body = {"corpus_id": corpus["id"], "preset": "seed"}
    # The first reads the corpus and the throughput, and loads the script into Redis.
    assert client.post("/v1/train", json=body, headers={"Idempotency-Key": "first"}
                       ).status_code == 202
    sent = []
    send = redis.connection.AbstractConnection.send_packed_command
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command",
                        lambda self, command, *a, **k: (sent.append(command),
                                                        send(self, command, *a, **k))[1])
    answer = client.post("/v1/train", json=body, headers={"Idempotency-Key": "second"})
    assert answer.status_code == 202, answer.get_json()
    assert len(sent) == 1, sent  # no worker: nothing released, so no message sent
    assert services.storage.usage("alice")[1] > 0  # both jobs' room reserved
