"""The per-owner storage quota and the model-size ceiling: the real app on a real Redis
for refusals, and the real stack (gunicorn, Celery workers) for what a training job
counts as it stores checkpoints and its model."""

import dataclasses
import threading

import pytest

from tests.api_helpers import assert_problem, registered_model, upload
from tests.conftest import TEST_REDIS_URL, TOKENS, client_of

KB = 1024
MB = 1024 * 1024


def app_with(settings, **changes):
    from api import create_app

    return create_app(dataclasses.replace(settings, **changes))


def test_an_upload_past_the_quota_is_507_and_deleting_frees_room(settings):
    app = app_with(settings, max_storage_mb=10 * KB / MB)  # 10 KB
    client = client_of(app)
    first = upload(client, "a" * 6 * KB)
    body = assert_problem(client.post("/v1/corpora", data="b" * 6 * KB,
                                      content_type="text/plain"),
                          507, "storage_quota_exceeded")
    assert body["detail"].startswith("this corpus needs 6.0 KB, but alice already uses 6.0 KB "
                                     "of 10.0 KB (TEXTGEN_MAX_STORAGE_MB)")
    assert body["used_bytes"] == 6 * KB and body["needed_bytes"] == 6 * KB
    assert body["limit_bytes"] == 10 * KB
    # Another owner has a quota of their own.
    upload(client_of(app, "bob"), "c" * 6 * KB)

    assert client.delete(f"/v1/corpora/{first['id']}").status_code == 204
    upload(client, "b" * 6 * KB)


def test_uploads_at_once_cannot_all_slip_under_the_quota(settings):
    app = app_with(settings, max_storage_mb=10 * KB / MB)
    statuses = []

    def send(i):
        response = client_of(app).post("/v1/corpora", data=f"{i}" * 3 * KB,
                                       content_type="text/plain")
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] * 3 + [507] * 5


def test_a_training_job_reserves_its_room_until_it_ends(settings):
    from shared.sizing.architecture import describe
    from shared.sizing.model_storage import job_storage_bytes
    from shared.runtime.services import Services

    svc = Services.from_settings(settings)
    spec = {"model": {"units": 64, "layers": 1}}
    client = client_of(app_with(settings))
    corpus = upload(client, "to be or not to be\n" * 50)
    first = client.post("/v1/train", json={"corpus_id": corpus["id"], **spec}).get_json()
    used, reserved = svc.storage.usage("alice")
    parameters = describe(first["spec"], corpus["vocab_size"]).parameters
    assert reserved == job_storage_bytes(parameters)

    # Room for the corpus and one such job, not two.
    tight = client_of(app_with(settings, max_storage_mb=(used + reserved * 1.5) / MB))
    body = assert_problem(tight.post("/v1/train", json={"corpus_id": corpus["id"], **spec}),
                          507, "storage_quota_exceeded")
    assert "held for queued or running training jobs" in body["detail"]
    assert body["reserved_bytes"] == reserved

    client.post(f"/v1/jobs/{first['id']}/cancel")  # an ended job holds nothing more
    assert tight.post("/v1/train", json={"corpus_id": corpus["id"], **spec}).status_code == 202


def test_a_model_over_the_ceiling_is_422(settings):
    client = client_of(app_with(settings, max_model_mb=1))
    corpus = upload(client)
    # 2 x 512 units: about 3.2M parameters, 12 MB of weights.
    body = assert_problem(client.post("/v1/train", json={
        "corpus_id": corpus["id"], "model": {"units": 512, "layers": 2}}),
        422, "model_too_large", field="model")
    assert "TEXTGEN_MAX_MODEL_MB" in body["detail"] and body["parameters"] > 3_000_000
    assert client.post("/v1/train", json={
        "corpus_id": corpus["id"], "model": {"units": 32, "layers": 1}}).status_code == 202


def test_deleting_a_model_frees_its_bytes(settings):
    from shared.runtime.services import Services

    svc = Services.from_settings(settings)
    model = registered_model(svc)
    svc.storage.record("alice", f"model:{model['id']}", 5 * KB)
    assert svc.storage.usage("alice") == (5 * KB, 0)
    assert client_of(app_with(settings)).delete(f"/v1/models/{model['id']}").status_code == 204
    assert svc.storage.usage("alice") == (0, 0)


TEXT = ("It was on a dreary night of November that I beheld the accomplishment of my toils.\n"
        ) * 40


def test_a_training_job_counts_its_checkpoints_and_model_as_it_stores_them(stack, tmp_path):
    """On real workers: the quota's items match the bytes in the store; the job keeps its
    last and best checkpoints only; deleting the job and the model frees what they held."""
    from client.api_client import Client
    from shared.sizing.architecture import describe
    from shared.stores.artifacts import open_artifact_store
    from shared.sizing.model_storage import job_storage_bytes
    from shared.runtime.redis_db import model_id_of
    from shared.runtime.services import Services
    from shared.runtime.settings import Settings

    svc = Services.from_settings(Settings(
        redis_url=TEST_REDIS_URL, data_dir=stack.data_dir,
        redis_prefix=stack.extra_env["TEXTGEN_REDIS_PREFIX"]))
    api = Client(stack.url, token=TOKENS["bob"])
    path = tmp_path / "night.txt"
    path.write_text(TEXT)
    corpus = api.upload_corpus(path)
    before = dict(svc.redis.hgetall(svc.keys.storage_items("bob")))
    job = api.wait(api.train(corpus["id"], "default", model={
        "units": 32, "layers": 1, "embedding_dim": 16}, training={
        "epochs": 4, "seq_length": 32, "batch_size": 16, "seed": 3})["id"],
        poll_s=0.2, timeout_s=300)
    assert job["status"] == "succeeded", job["error"]
    model_id = model_id_of(job["id"])

    store = open_artifact_store(svc.settings)
    checkpoints = store.objects.sizes(f"checkpoints/{job['id']}")
    assert len([name for name in checkpoints if name.endswith(".keras")]) <= 2  # last, best
    items = svc.redis.hgetall(svc.keys.storage_items("bob"))
    assert int(items[f"checkpoints:{job['id']}"]) == sum(checkpoints.values())
    model_bytes = store.model_bytes(model_id, job["attempt"])
    assert int(items[f"model:{model_id}"]) == model_bytes
    used, reserved = svc.storage.usage("bob")
    assert reserved == 0 and used == sum(int(v) for v in items.values())
    # The estimate the job reserved at submission covers what it stored.
    parameters = describe(job["spec"], corpus["vocab_size"]).parameters
    assert job_storage_bytes(parameters) >= sum(checkpoints.values()) + model_bytes

    api.delete_job(job["id"])
    api.delete_model(model_id)
    api.delete_corpus(corpus["id"])
    assert svc.redis.hgetall(svc.keys.storage_items("bob")) == {
        k: v for k, v in before.items() if k != f"corpus:{corpus['id']}"}
    assert svc.storage.usage("bob")[0] == sum(
        int(v) for k, v in before.items() if k != f"corpus:{corpus['id']}")


@pytest.mark.parametrize("size", [0, 5])
def test_recording_a_size_is_idempotent(settings, size):
    from shared.runtime.services import Services

    svc = Services.from_settings(settings)
    for _ in range(3):
        svc.storage.record("alice", "checkpoints:job_x", 7)
    svc.storage.record("alice", "checkpoints:job_x", size)
    assert svc.storage.usage("alice") == (size, 0)
