"""The API through the Flask test client, against real Redis; then the stored state."""

import dataclasses
import io
import json

import pytest

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def assert_problem(response, status, code, field=None):
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert PROBLEM_KEYS <= body.keys()
    assert body["status"] == status and body["code"] == code
    if field:
        assert body["field"] == field
    return body


def upload(client, text="to be or not to be\n", name="hamlet.txt"):
    response = client.post("/v1/corpora", data={"file": (io.BytesIO(text.encode()), name)},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def stored_files(settings):
    root = settings.data_dir
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_upload_multipart(client, services):
    body = upload(client, "héllo\r\nworld\n", "my book.txt")
    assert body["name"] == "my book.txt"
    assert body["chars"] == len("héllo\nworld\n") and body["bytes"] == len("héllo\r\nworld\n".encode())
    assert body["encoding"] == "utf-8" and body["vocab_size"] == len(set("héllo\nworld\n"))
    assert body["created_at"].endswith("Z")
    assert services.corpora.get(body["id"]) == body
    assert services.artifacts.read_corpus(body["sha256"]) == "héllo\nworld\n"


def test_upload_raw_text_with_query_name(client):
    data = "Ceci n’est pas une pipe\r\n".encode("cp1252")
    response = client.post("/v1/corpora?name=magritte", data=data, content_type="text/plain")
    assert response.status_code == 201
    body = response.get_json()
    assert (body["name"], body["encoding"]) == ("magritte", "windows-1252")
    assert response.headers["Location"] == f"/v1/corpora/{body['id']}"
    assert client.get(response.headers["Location"]).get_json() == body


@pytest.mark.parametrize("data, status, code", [
    (b"", 422, "corpus_rejected"),
    (b"\x00\x01\x02binary", 422, "corpus_rejected"),
    (b"x" * (64 * 1024 + 1), 413, "payload_too_large"),
])
def test_bad_uploads_store_nothing(client, services, settings, data, status, code):
    assert_problem(client.post("/v1/corpora", data=data, content_type="text/plain"), status, code)
    response = client.post("/v1/corpora", data={"file": (io.BytesIO(data), "f.txt")},
                           content_type="multipart/form-data")
    assert_problem(response, status, code)
    assert stored_files(settings) == []
    assert list(services.redis.scan_iter(match=services.keys.corpus("*"))) == []


def test_upload_needs_a_file_field_or_text_body(client):
    assert_problem(client.post("/v1/corpora", data={"other": "x"},
                               content_type="multipart/form-data"), 422, "validation_failed",
                   field="file")
    assert_problem(client.post("/v1/corpora", json={"text": "x"}), 400, "malformed_request")


def test_submit_training_stores_and_enqueues(client, services, settings):
    corpus = upload(client)
    response = client.post("/v1/train", json={"corpus_id": corpus["id"], "preset": "seed",
                                              "training": {"epochs": 2}})
    assert response.status_code == 202
    job = response.get_json()
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["type"] == "train"
    assert job["spec"]["training"]["epochs"] == 2 and job["corpus_id"] == corpus["id"]
    assert client.get(f"/v1/jobs/{job['id']}").get_json() == job
    # The message on the train queue carries the job id and nothing else of the job.
    messages = services.redis.lrange(settings.redis_prefix + "train", 0, -1)
    assert len(messages) == 1
    assert json.loads(messages[0])["headers"]["argsrepr"] == repr([job["id"]])


def test_training_that_would_not_fit_in_memory_is_refused_with_the_estimate(settings):
    from api import create_app

    client = create_app(dataclasses.replace(settings, max_train_memory_mb=850)).test_client()
    corpus = upload(client, "x" * 60_000)
    response = client.post("/v1/train", json={"corpus_id": corpus["id"], "preset": "seed"})
    body = assert_problem(response, 422, "training_too_large", field="corpus_id")
    assert body["limit_mb"] == 850 and body["estimate_mb"] > 850
    assert "TEXTGEN_MAX_TRAIN_MEMORY_MB" in body["detail"]
    # A smaller model on the same corpus fits.
    small = {"corpus_id": corpus["id"], "preset": "seed", "model": {"units": 16}}
    assert client.post("/v1/train", json=small).status_code == 202


def test_submit_generation(client, services, settings):
    assert_problem(client.post("/v1/generate", json={"model_id": "mdl_missing"}), 404,
                   "not_found", field="model_id")
    services.models.put({"id": "mdl_1", "attempt": 1, "config": {}, "vocab_size": 3,
                         "metrics": {}})
    assert client.get("/v1/models/mdl_1").get_json()["files"]["vocab.json"] == \
        "/v1/models/mdl_1/files/vocab.json"
    assert_problem(client.get("/v1/models/mdl_1/files/model.keras"), 404, "not_found")
    assert_problem(client.get("/v1/models/mdl_1/files/secrets.txt"), 404, "not_found")
    response = client.post("/v1/generate", json={"model_id": "mdl_1", "length": 20,
                                                 "temperature": 0, "num_samples": 3})
    assert response.status_code == 202
    job = response.get_json()
    assert job["type"] == "generate" and job["spec"]["num_samples"] == 3
    assert len(services.redis.lrange(settings.redis_prefix + "generate", 0, -1)) == 1


def test_bad_job_requests(client):
    assert_problem(client.post("/v1/train", data="{nope", content_type="application/json"),
                   400, "malformed_request")
    assert_problem(client.post("/v1/train", json={"corpus_id": "cor_x"}), 404, "not_found",
                   field="corpus_id")
    assert_problem(client.post("/v1/train", json={"corpus_id": "c", "training": {"epochs": "2"}}),
                   422, "validation_failed", field="training.epochs")
    assert_problem(client.post("/v1/train", json=[1]), 400, "malformed_request")


def test_jobs_list_and_cancel(client):
    corpus = upload(client)
    ids = [client.post("/v1/train", json={"corpus_id": corpus["id"]}).get_json()["id"]
           for _ in range(3)]
    listed = client.get("/v1/jobs").get_json()["jobs"]
    assert [j["id"] for j in listed] == ids[::-1]
    assert client.post(f"/v1/jobs/{ids[0]}/cancel").get_json()["status"] == "cancelled"
    assert_problem(client.post(f"/v1/jobs/{ids[0]}/cancel"), 409, "conflict")
    assert_problem(client.get("/v1/jobs?limit=nine"), 422, "validation_failed", field="limit")


def test_job_events_page_with_a_cursor(client):
    corpus = upload(client)
    job = client.post("/v1/train", json={"corpus_id": corpus["id"]}).get_json()
    client.post(f"/v1/jobs/{job['id']}/cancel")
    page = client.get(f"/v1/jobs/{job['id']}/events").get_json()
    assert [e["data"]["status"] for e in page["events"]] == ["queued", "cancelled"]
    rest = client.get(f"/v1/jobs/{job['id']}/events?after={page['next']}").get_json()
    assert rest == {"events": [], "next": page["next"]}
    assert_problem(client.get(f"/v1/jobs/{job['id']}/events?after=../x"), 422,
                   "validation_failed", field="after")
    assert_problem(client.get("/v1/jobs/job_nope/events"), 404, "not_found")


def test_unknown_ids_and_paths(client):
    assert_problem(client.get("/v1/jobs/job_nope"), 404, "not_found")
    assert_problem(client.get("/v1/models/mdl_nope"), 404, "not_found")
    assert_problem(client.get("/v1/models/mdl_nope/files/model.keras"), 404, "not_found")
    assert_problem(client.get("/v1/corpora/cor_nope"), 404, "not_found")
    assert_problem(client.get("/v1/nothing"), 404, "not_found")
    assert_problem(client.delete("/v1/jobs"), 405, "method_not_allowed")


def test_health_without_workers(client):
    body = client.get("/v1/health").get_json()
    assert body["redis"] is True
    assert body["workers"] == {"train": 0, "generate": 0} and body["status"] == "degraded"
