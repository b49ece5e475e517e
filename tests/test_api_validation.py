"""Bad input, endpoint by endpoint: a clear problem answer, never a 500, nothing stored.

Each table row is a request a client might really send wrong; the answer names the
field at fault (and lists every one) and no job is created or enqueued.
"""

import logging

import pytest

from tests.api_helpers import assert_problem, registered_model, upload
from tests.conftest import client_of


@pytest.fixture
def nothing_enqueued(services, settings):
    """Asserts, after the test, that no job was created and no message sent."""
    yield
    assert services.jobs.page("alice").data == []
    for queue in ("train", "generate"):
        assert services.redis.llen(settings.redis_prefix + queue) == 0


ENDPOINTS = [("get", "/v1/jobs"), ("get", "/v1/corpora"), ("get", "/v1/models"),
             ("post", "/v1/train"), ("post", "/v1/generate"), ("post", "/v1/corpora"),
             ("get", "/v1/jobs/job_x"), ("get", "/v1/jobs/job_x/events"),
             ("post", "/v1/jobs/job_x/cancel"), ("delete", "/v1/jobs/job_x"),
             ("get", "/v1/models/mdl_x"), ("get", "/v1/models/mdl_x/download"),
             ("get", "/v1/models/mdl_x/files/vocab.json"), ("delete", "/v1/models/mdl_x"),
             ("get", "/v1/corpora/cor_x"), ("delete", "/v1/corpora/cor_x")]


@pytest.mark.parametrize("method, path", ENDPOINTS)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic YWxpY2U6eA==",
                                           "Bearer "])
def test_every_endpoint_needs_a_valid_token(app, method, path, authorization):
    client = client_of(app, owner=None)
    headers = {"Authorization": authorization} if authorization else {}
    response = getattr(client, method)(path, headers=headers)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/v1/health", "/v1/openapi.json", "/docs",
                                  "/docs/static/swagger-ui-bundle.js"])
def test_public_paths_need_no_token(app, path):
    # /docs and its scripts come from textgen itself: no CDN, no network.
    assert client_of(app, owner=None).get(path).status_code == 200


TRAIN_BAD = [
    ({}, ["corpus_id"]),
    ({"corpus_id": 5}, ["corpus_id"]),
    ({"corpus_id": "c", "preset": "huge"}, ["preset"]),
    ({"corpus_id": "c", "preset": []}, ["preset"]),  # once a 500 (an unhashable preset)
    ({"corpus_id": "c", "preset": {"a": 1}}, ["preset"]),
    ({"corpus_id": "c", "colour": "red"}, ["colour"]),
    ({"corpus_id": "c", "training": []}, ["training"]),
    ({"corpus_id": "c", "training": None}, ["training"]),
    ({"corpus_id": "c", "training": {"epochs": "3"}}, ["training.epochs"]),
    ({"corpus_id": "c", "training": {"epochs": True}}, ["training.epochs"]),
    ({"corpus_id": "c", "training": {"epochs": 0}}, ["training.epochs"]),
    ({"corpus_id": "c", "training": {"epochs": 10**30}}, ["training.epochs"]),
    ({"corpus_id": "c", "training": {"batch_size": 2.5}}, ["training.batch_size"]),
    ({"corpus_id": "c", "training": {"validation_fraction": 0.9}},
     ["training.validation_fraction"]),
    ({"corpus_id": "c", "training": {"learning_rate": None}}, ["training.learning_rate"]),
    ({"corpus_id": "c", "training": {"max_seconds": 0}}, ["training.max_seconds"]),
    ({"corpus_id": "c", "model": {"units": 1e9}}, ["model.units"]),
    ({"corpus_id": "c", "model": {"architecture": "gpt"}}, ["model.architecture"]),
    ({"corpus_id": "c", "preprocessing": {"unknown": 1}}, ["preprocessing.unknown"]),
    ({"corpus_id": "c", "preprocessing": {"level": "byte"}}, ["preprocessing.level"]),
    ({"corpus_id": "c", "preprocessing": {"max_vocab": 1}}, ["preprocessing.max_vocab"]),
    ({"corpus_id": "c", "init_from_model": 3}, ["init_from_model"]),
    # Every field at fault, in one answer.
    ({"corpus_id": 1, "model": {"units": 0, "layers": 99}, "training": {"epochs": -1}},
     ["corpus_id", "model.units", "model.layers", "training.epochs"]),
]


@pytest.mark.parametrize("body, fields", TRAIN_BAD)
def test_bad_training_requests(client, nothing_enqueued, body, fields):
    problem = assert_problem(client.post("/v1/train", json=body), 422, "validation_failed",
                             field=fields[0])
    assert [e["field"] for e in problem["errors"]] == fields
    assert [e["pointer"] for e in problem["errors"]] == [
        "/" + f.replace(".", "/") for f in fields]
    assert all(e["message"] for e in problem["errors"])


GENERATE_BAD = [
    ({}, ["model_id"]),
    ({"model_id": ""}, ["model_id"]),
    ({"model_id": "m", "length": 0}, ["length"]),
    ({"model_id": "m", "length": 200_000}, ["length"]),
    ({"model_id": "m", "length": 1.5}, ["length"]),
    ({"model_id": "m", "temperature": -1}, ["temperature"]),
    ({"model_id": "m", "temperature": "hot"}, ["temperature"]),
    ({"model_id": "m", "temperature": []}, ["temperature"]),
    ({"model_id": "m", "temperature": [0.5, 11]}, ["temperature"]),
    ({"model_id": "m", "num_samples": 1000}, ["num_samples"]),
    ({"model_id": "m", "num_samples": 16, "temperature": [0.5] * 5}, ["num_samples"]),
    ({"model_id": "m", "top_p": 0}, ["top_p"]),
    ({"model_id": "m", "top_k": -1}, ["top_k"]),
    ({"model_id": "m", "prompt": 7}, ["prompt"]),
    ({"model_id": "m", "prompt": "x" * 10_001}, ["prompt"]),
    ({"model_id": "m", "seed": "x"}, ["seed"]),
    ({"model_id": "m", "seed": -1}, ["seed"]),
    ({"model_id": "m", "stop": ""}, ["stop"]),
    ({"model_id": "m", "extra": 1}, ["extra"]),
]


@pytest.mark.parametrize("body, fields", GENERATE_BAD)
def test_bad_generation_requests(client, nothing_enqueued, body, fields):
    problem = assert_problem(client.post("/v1/generate", json=body), 422, "validation_failed",
                             field=fields[0])
    assert [e["field"] for e in problem["errors"]] == fields


@pytest.mark.parametrize("path", ["/v1/train", "/v1/generate"])
@pytest.mark.parametrize("data, content_type", [
    ("{nope", "application/json"),
    ("[1, 2]", "application/json"),
    ("null", "application/json"),
    ("corpus_id=c", "application/x-www-form-urlencoded"),
])
def test_a_body_that_is_not_a_json_object_is_a_400(client, nothing_enqueued, path, data,
                                                   content_type):
    assert_problem(client.post(path, data=data, content_type=content_type), 400,
                   "malformed_request")


@pytest.mark.parametrize("path", ["/v1/train", "/v1/generate"])
def test_a_body_over_the_size_limit_is_a_documented_413(client, nothing_enqueued, path):
    oversize = '{"prompt": "' + "x" * (64 * 1024) + '"}'  # the test app's limit is 64 KiB
    assert_problem(client.post(path, data=oversize, content_type="application/json"), 413,
                   "payload_too_large")
    document = client.get("/v1/openapi.json").get_json()
    assert "413" in document["paths"][path]["post"]["responses"]


@pytest.mark.parametrize("query, field", [
    ("status=sleeping", "status"), ("type=dance", "type"), ("limit=0", "limit"),
    ("limit=201", "limit"), ("limit=nine", "limit"), ("after=!!!", "after"),
    ("after=12", "after"), ("after=-job_1", "after"), ("limit=1&limit=2", "limit"),
])
def test_bad_list_queries(client, query, field):
    assert_problem(client.get(f"/v1/jobs?{query}"), 422, "validation_failed", field=field)


def test_a_well_formed_cursor_is_a_position_never_an_error(client):
    page = client.get("/v1/jobs?after=1-job_0").get_json()
    assert page["data"] == [] and page["next"] is None


def test_an_integral_number_is_an_integer(client):
    corpus = upload(client)
    job = client.post("/v1/train", json={"corpus_id": corpus["id"],
                                         "training": {"epochs": 2.0}}).get_json()
    assert job["spec"]["training"]["epochs"] == 2


@pytest.mark.parametrize("path", ["/v1/corpora", "/v1/models"])
def test_bad_cursors_on_other_lists(client, path):
    assert_problem(client.get(f"{path}?after=nope"), 422, "validation_failed", field="after")


@pytest.mark.parametrize("body, status, code, field", [
    ({"gutenberg_id": "84"}, 422, "validation_failed", "gutenberg_id"),
    ({"gutenberg_id": 0}, 422, "validation_failed", "gutenberg_id"),
    ({"gutenberg_id": 84, "url": "http://example.com"}, 422, "validation_failed", "url"),
    ({"name": "x"}, 422, "validation_failed", "gutenberg_id"),
])
def test_bad_gutenberg_requests(client, body, status, code, field):
    assert_problem(client.post("/v1/corpora", json=body), status, code, field=field)


def test_an_upload_of_another_type_is_a_400(client):
    assert_problem(client.post("/v1/corpora", data=b"<xml/>", content_type="application/xml"),
                   400, "malformed_request")
    assert_problem(client.post("/v1/corpora", data={"other": "x"},
                               content_type="multipart/form-data"), 422, "validation_failed",
                   field="file")


def test_a_long_idempotency_key_is_refused(client):
    corpus = upload(client)
    assert_problem(client.post("/v1/train", json={"corpus_id": corpus["id"]},
                               headers={"Idempotency-Key": "k" * 256}),
                   422, "validation_failed", field="Idempotency-Key")


def test_a_redis_password_is_never_logged(settings, caplog):
    import dataclasses

    from api import create_app

    caplog.set_level(logging.DEBUG)
    url = settings.redis_url.replace("redis://", "redis://:s3cret-pw@")
    create_app(dataclasses.replace(settings, redis_url=url))
    assert "s3cret-pw" not in caplog.text


def test_a_generation_request_for_a_model_of_another_owner_enqueues_nothing(
        other_client, services, settings):
    model = registered_model(services, owner="alice")
    assert_problem(other_client.post("/v1/generate", json={"model_id": model["id"]}), 404,
                   "not_found", field="model_id")
    assert services.redis.llen(settings.redis_prefix + "generate") == 0


# Stream ids Redis cannot read (parts over 64 bits, digits that are not ASCII): once 500s.
BAD_EVENT_IDS = ["99999999999999999999", "18446744073709551615-18446744073709551615",
                 "1-99999999999999999999", "²", "٣", "1-²"]


@pytest.mark.parametrize("event_id", BAD_EVENT_IDS)
def test_an_event_cursor_redis_cannot_read_is_a_422(client, event_id):
    job = client.post("/v1/train", json={"corpus_id": upload(client)["id"]}).get_json()
    path = f"/v1/jobs/{job['id']}/events"
    assert_problem(client.get(path, query_string={"after": event_id}), 422,
                   "validation_failed", field="after")
    for accept in ("text/event-stream", "application/json"):
        assert_problem(client.get(path, headers={"Accept": accept, "Last-Event-ID": event_id}),
                       422, "validation_failed", field="Last-Event-ID")


@pytest.mark.parametrize("path", ["/v1/train", "/v1/generate", "/v1/corpora"])
@pytest.mark.parametrize("body", ["[" * 100_000, "[" * 900 + "]" * 900,
                                  '{"model_id": ' + "[" * 33 + "]" * 33 + "}"])
@pytest.mark.parametrize("key", [None, "deep-1"])
def test_a_body_nested_deeper_than_ours_is_a_400_at_once(settings, path, body, key):
    import dataclasses
    import time

    from api import create_app

    # Over the test app's 64 KiB limit otherwise: the limit is not what refuses it here.
    app = create_app(dataclasses.replace(settings, max_upload_bytes=1024 * 1024))
    started = time.monotonic()
    response = client_of(app).post(path, data=body, content_type="application/json",
                                   headers={"Idempotency-Key": key} if key else {})
    assert_problem(response, 400, "malformed_request")
    assert time.monotonic() - started < 1.0


def test_only_canonical_ids_are_found(client, services):
    """A model's key is derived from its job's id, so `mdl_<hex>`'s record was once found
    under the bare hex too (and under other spellings of the same key)."""
    model = registered_model(services)
    corpus = upload(client)
    job = client.post("/v1/train", json={"corpus_id": corpus["id"]}).get_json()
    hex_id = model["id"].removeprefix("mdl_")
    assert client.get(f"/v1/models/{model['id']}").status_code == 200
    for path in [f"/v1/models/{hex_id}", f"/v1/models/{hex_id}/download",
                 f"/v1/models/{hex_id}/files/vocab.json", f"/v1/models/job_{hex_id}",
                 f"/v1/models/{model['id'].upper()}", f"/v1/models/{model['id']}%0A",
                 f"/v1/corpora/{corpus['id'].removeprefix('cor_')}",
                 f"/v1/jobs/{job['id'].removeprefix('job_')}",
                 f"/v1/jobs/{job['id'].removeprefix('job_')}/events"]:
        assert_problem(client.get(path), 404, "not_found")
    assert_problem(client.delete(f"/v1/models/{hex_id}"), 404, "not_found")
    assert_problem(client.post("/v1/generate", json={"model_id": hex_id}), 404, "not_found",
                   field="model_id")
    assert_problem(client.post("/v1/train", json={"corpus_id": corpus["id"],
                                                  "init_from_model": hex_id}),
                   404, "not_found", field="init_from_model")
    assert client.get(f"/v1/models/{model['id']}").status_code == 200  # still there
