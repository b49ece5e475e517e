"""POST /v1/evaluations through the real app on real Redis (no worker: jobs stay queued):
what is stored, which tail is chosen, what is refused and with which code."""

import dataclasses
import hashlib
import json

import pytest

from api import create_app
from shared.runtime.redis_db import encode_fields
from tests.api_helpers import assert_problem, registered_model, upload
from tests.conftest import client_of


def trained_on(services, model, corpus, validation_fraction):
    """Make `model` (a registered record) one trained on `corpus` with this split."""
    config = json.loads(json.dumps(model["config"]))
    config["training"]["validation_fraction"] = validation_fraction
    services.redis.hset(services.keys.model(model["id"]), mapping=encode_fields(
        {"corpus_id": corpus["id"], "corpus_sha256": corpus["sha256"], "config": config}))


def test_an_evaluation_is_a_queued_job_listed_by_its_type(client, services):
    # That it runs on the generate queue's worker: tests/test_evaluation_e2e.py.
    corpus = upload(client, "to be or not to be\n" * 20)
    a, b = registered_model(services), registered_model(services)
    trained_on(services, a, corpus, 0.2)
    trained_on(services, b, corpus, 0.05)
    response = client.post("/v1/evaluations", json={"model_ids": [a["id"], b["id"]],
                                                     "corpus_id": corpus["id"]})
    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["type"] == "evaluate" and job["status"] == "queued"
    assert job["model_ids"] == [a["id"], b["id"]] and job["corpus_id"] == corpus["id"]
    # The held-out tail of the model that held out least: neither trained on it.
    assert job["spec"]["part"] == "held_out" and job["spec"]["holdout_fraction"] == 0.05
    assert client.get(f"/v1/jobs/{job['id']}").get_json()["spec"] == job["spec"]
    listed = client.get("/v1/jobs?type=evaluate").get_json()["data"]
    assert [j["id"] for j in listed] == [job["id"]] and listed[0]["model_ids"] == job["model_ids"]
    assert client.get("/v1/jobs?type=generate").get_json()["data"] == []
    # A model in a queued evaluation is in use; the job cancels as any other.
    assert_problem(client.delete(f"/v1/models/{a['id']}"), 409, "in_use")
    assert client.post(f"/v1/jobs/{job['id']}/cancel").get_json()["status"] == "cancelled"


def test_a_tail_asked_for_an_inline_text_and_a_whole_corpus(client, services):
    corpus = upload(client, "to be or not to be\n" * 20)
    model = registered_model(services)
    job = client.post("/v1/evaluations", json={"model_ids": [model["id"]],
                                               "corpus_id": corpus["id"],
                                               "holdout_fraction": 0.3}).get_json()
    assert job["spec"]["holdout_fraction"] == 0.3
    job = client.post("/v1/evaluations", json={"model_ids": [model["id"]],
                                               "corpus_id": corpus["id"]}).get_json()
    assert job["spec"]["holdout_fraction"] == 0.1  # no model trained on it: the default's
    job = client.post("/v1/evaluations", json={"model_ids": [model["id"]],
                                               "corpus_id": corpus["id"], "part": "all"})
    assert job.get_json()["spec"]["holdout_fraction"] is None
    job = client.post("/v1/evaluations", json={"model_ids": [model["id"]], "text": "to be"})
    assert job.status_code == 202 and job.get_json()["spec"]["text"] == "to be"


@pytest.mark.parametrize("body, field", [
    ({"model_ids": []}, "model_ids"),
    ({"model_ids": ["mdl_a"] * 2, "text": "x"}, "model_ids"),
    ({"model_ids": [f"mdl_{i}" for i in range(9)], "text": "x"}, "model_ids"),
    ({"model_ids": ["mdl_a"]}, "text"),
    ({"model_ids": ["mdl_a"], "corpus_id": "cor_a", "text": "x"}, "text"),
    ({"model_ids": ["mdl_a"], "text": ""}, "text"),
    ({"model_ids": ["mdl_a"], "text": "x" * 100_001}, "text"),
    ({"model_ids": ["mdl_a"], "corpus_id": "cor_a", "part": "middle"}, "part"),
    ({"model_ids": ["mdl_a"], "corpus_id": "cor_a", "holdout_fraction": 0.0},
     "holdout_fraction"),
    ({"model_ids": ["mdl_a"], "text": "x", "extra": 1}, "extra"),
])
def test_bad_requests_name_the_field(settings, body, field):
    app = create_app(dataclasses.replace(settings, max_upload_bytes=1024 * 1024))
    assert_problem(client_of(app).post("/v1/evaluations", json=body), 422,
                   "validation_failed", field=field)


def test_another_owners_model_or_corpus_is_not_found(client, other_client, services):
    corpus = upload(client)
    mine = registered_model(services)
    theirs = registered_model(services, owner="bob")
    assert_problem(client.post("/v1/evaluations", json={
        "model_ids": [mine["id"], theirs["id"]], "text": "to be"}), 404, "not_found",
        field="model_ids")
    assert_problem(other_client.post("/v1/evaluations", json={
        "model_ids": [theirs["id"]], "corpus_id": corpus["id"]}), 404, "not_found",
        field="corpus_id")


def test_tutorial_models_and_texts_over_the_time_limit_are_refused(settings, services):
    seed = registered_model(services, preset="seed")
    model = registered_model(services)
    client = client_of(create_app(settings))
    body = assert_problem(client.post("/v1/evaluations", json={
        "model_ids": [model["id"], seed["id"]], "text": "to be"}), 422, "validation_failed",
        field="model_ids")
    assert seed["id"] in body["detail"] and "tutorial" in body["detail"]
    strict = client_of(create_app(dataclasses.replace(settings, generation_max_s=1.0)))
    corpus = upload(strict, "to be or not to be\n" * 3000)
    body = assert_problem(strict.post("/v1/evaluations", json={
        "model_ids": [model["id"]], "corpus_id": corpus["id"], "part": "all"}), 422,
        "evaluation_too_large", field="model_ids")
    assert body["estimate_s"] > body["limit_s"] == 1.0


def test_an_evaluation_has_no_result_file_and_is_counted_with_its_queue(settings, services):
    from tests.test_metrics import METRICS_TOKEN, scrape

    metered = dataclasses.replace(settings, metrics_token_digest=hashlib.sha256(
        METRICS_TOKEN.encode()).hexdigest())
    app = create_app(metered)
    client = client_of(app)
    model = registered_model(services)
    job = client.post("/v1/evaluations", json={"model_ids": [model["id"]], "text": "to be"})
    body = assert_problem(client.get(f"/v1/jobs/{job.get_json()['id']}/result"), 404,
                          "not_found")
    assert "is an evaluation" in body["detail"]
    # Counted with its queue's jobs: the scheduler counts waiting jobs by queue.
    assert scrape(app)["textgen_jobs_active{status=queued,type=generate}"] == 1


def test_a_listing_shows_a_few_of_each_rows_unknown_characters(client, services):
    model = registered_model(services)
    job = client.post("/v1/evaluations", json={"model_ids": [model["id"]], "text": "to be"})
    job_id = job.get_json()["id"]
    services.jobs.start(job_id, "w", 30_000)
    row = {"model_id": model["id"], "level": "char", "bits_per_char": 2.5,
           "bits_per_token": None, "chars_scored": 5, "tokens_scored": 5, "oov_count": 50,
           "oov": [chr(0x100 + i) for i in range(50)], "overlaps_training": None}
    assert services.jobs.succeed(job_id, 1, {"chars": 5, "models": [row]})
    [listed] = client.get("/v1/jobs?type=evaluate").get_json()["data"]
    assert listed["result"]["models"][0]["oov"] == row["oov"][:5]
    assert client.get(f"/v1/jobs/{job_id}").get_json()["result"]["models"] == [row]
