"""The API through the Flask test client, against real Redis; then the stored state."""

import dataclasses
import io
import json
import threading
import zipfile
from datetime import UTC, datetime

import pytest

from shared.contracts.errors import ArtifactMissingError
from shared.contracts.specs import PRESETS
from tests.api_helpers import assert_problem, registered_model, upload
from tests.conftest import client_of
from tests.faults import reap_when_expired, unsent_training_job


def stored_files(settings):
    root = settings.data_dir
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_upload_multipart(client, services):
    body = upload(client, "héllo\r\nworld\n", "my book.txt")
    assert list(body)[:2] == ["id", "name"]
    assert body["name"] == "my book.txt" and body["source"] == "upload"
    assert body["chars"] == len("héllo\nworld\n")
    assert body["bytes"] == len("héllo\r\nworld\n".encode())
    assert body["encoding"] == "utf-8" and body["vocab_size"] == len(set("héllo\nworld\n"))
    assert body["created_at"].endswith("Z")
    stored = services.corpora.get(body["id"])
    assert stored["owner"] == "alice" and "owner" not in body and "alphabet" not in body
    assert services.artifacts.read_corpus(body["sha256"]) == "héllo\nworld\n"


def test_upload_raw_text_with_query_name(client):
    data = "Ceci n’est pas une pipe\r\n".encode("cp1252")
    response = client.post("/v1/corpora?name=magritte", data=data, content_type="text/plain")
    assert response.status_code == 201
    body = response.get_json()
    assert (body["name"], body["encoding"]) == ("magritte", "windows-1252")
    assert response.headers["Location"] == f"/v1/corpora/{body['id']}"
    assert client.get(response.headers["Location"]).get_json() == body


def test_upload_as_a_plain_multipart_field(client):
    # What `curl -F 'file=<book.txt'` sends, and what a schema's text field is sent as.
    response = client.post("/v1/corpora", data={"file": "héllo\nworld\n", "name": "plain"},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["name"] == "plain" and response.get_json()["chars"] == 12
    assert_problem(client.post("/v1/corpora", data={"file": " \n\u3000"},
                               content_type="multipart/form-data"), 422, "corpus_rejected")


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


def test_submit_training_stores_and_enqueues(client, services, settings):
    corpus = upload(client)
    services.jobs.scheduler.worker_seen("w@host", ["train"], 1)  # a free slot: sent at once
    response = client.post("/v1/train", json={"corpus_id": corpus["id"], "preset": "seed",
                                              "training": {"epochs": 2}})
    assert response.status_code == 202
    job = response.get_json()
    assert list(job)[:3] == ["id", "type", "status"]
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["type"] == "train"
    assert job["spec"]["training"]["epochs"] == 2 and job["corpus_id"] == corpus["id"]
    assert client.get(f"/v1/jobs/{job['id']}").get_json() == job
    # No storage internals reach the client.
    assert not {"owner", "worker", "enqueued_ms", "lease_expires_ms", "updated_at"} & set(job)
    # The message on the train queue carries the job id and nothing else of the job.
    messages = services.redis.lrange(settings.redis_prefix + "train", 0, -1)
    assert len(messages) == 1
    assert json.loads(messages[0])["headers"]["argsrepr"] == repr([job["id"]])


def test_a_training_job_gets_the_time_ceiling_and_may_not_ask_for_more(settings):
    from api import create_app

    client = client_of(create_app(dataclasses.replace(settings, max_train_seconds=600)))
    corpus = upload(client)

    def budget(**training):
        response = client.post("/v1/train", json={"corpus_id": corpus["id"],
                                                  "training": training})
        assert response.status_code == 202, response.get_json()
        return response.get_json()["spec"]["training"]["max_seconds"]

    assert budget() == budget(max_seconds=None) == 600
    assert budget(max_seconds=30) == 30
    response = client.post("/v1/train", json={"corpus_id": corpus["id"],
                                              "training": {"max_seconds": 601}})
    body = assert_problem(response, 422, "validation_failed", field="training.max_seconds")
    assert body["limit_s"] == 600 and "TEXTGEN_MAX_TRAIN_SECONDS" in body["detail"]


def test_a_budget_alone_sizes_the_default_model_to_the_corpus(client):
    corpus = upload(client, "the quick brown fox. " * 50)
    def submitted(**sections):
        response = client.post("/v1/train", json={"corpus_id": corpus["id"], **sections})
        assert response.status_code == 202, response.get_json()
        return response.get_json()["spec"]

    # A long budget on a tiny corpus: many passes, so the rule adds dropout (shared/model_sizing).
    sized = submitted(training={"max_seconds": 600})
    assert sized["model"]["dropout"] > 0 and sized["training"]["max_seconds"] == 600
    # Any model field, or no budget: the preset's model as it is.
    assert submitted(training={"max_seconds": 600}, model={"units": 128})["model"]["dropout"] == 0
    assert submitted(training={"epochs": 2})["model"]["dropout"] == 0


def test_a_long_budget_on_a_large_corpus_gets_the_wider_model(settings):
    from api import create_app

    client = client_of(create_app(dataclasses.replace(settings, max_upload_bytes=2 << 20)))
    corpus = upload(client, "the quick brown fox. " * 50_000)  # 1.05M characters
    response = client.post("/v1/train", json={"corpus_id": corpus["id"],
                                              "training": {"max_seconds": 600}})
    assert response.status_code == 202, response.get_json()
    spec = response.get_json()["spec"]
    assert spec["model"]["units"] > PRESETS["default"]["model"]["units"]
    assert spec["training"]["learning_rate"] < PRESETS["default"]["training"]["learning_rate"]


@pytest.mark.parametrize("measured, budget_s, wide", [
    (None, 600, True),  # no figures yet: the rule's constant (87k chars/s) picks 2x256
    (15_000, 600, False),  # a slow host: 9M characters / 2.4 = 3.75M, under the 5M it needs
    (400_000, 60, True),  # a fast one: 2x256 in a budget the constant gives 2x128
])
def test_the_sizing_rule_budgets_with_the_speed_workers_of_the_queue_measured(
        settings, services, measured, budget_s, wide):
    from api import create_app

    for _ in range(3 if measured else 0):  # MIN_FIGURES
        services.throughput.record("train", measured)
    services.throughput.record("train-gpu", 10 * (measured or 87_000))  # another queue's
    client = client_of(create_app(dataclasses.replace(settings, max_upload_bytes=2 << 20)))
    corpus = upload(client, "the quick brown fox. " * 50_000)  # 1.05M characters
    response = client.post("/v1/train", json={"corpus_id": corpus["id"],
                                              "training": {"max_seconds": budget_s}})
    assert response.status_code == 202, response.get_json()
    units = response.get_json()["spec"]["model"]["units"]
    assert units == (256 if wide else PRESETS["default"]["model"]["units"])


def test_training_that_would_not_fit_in_memory_is_refused_with_the_estimate(settings):
    from api import create_app

    client = client_of(create_app(dataclasses.replace(settings, max_train_memory_mb=850)))
    corpus = upload(client, "x" * 60_000)
    response = client.post("/v1/train", json={"corpus_id": corpus["id"], "preset": "seed"})
    body = assert_problem(response, 422, "training_too_large", field="corpus_id")
    assert body["limit_mb"] == 850 and body["estimate_mb"] > 850
    assert "TEXTGEN_MAX_TRAIN_MEMORY_MB" in body["detail"]
    small = {"corpus_id": corpus["id"], "preset": "seed", "model": {"units": 16}}
    assert client.post("/v1/train", json=small).status_code == 202


def test_too_many_queued_jobs_is_a_429_with_retry_after(settings, services):
    from api import create_app

    app = create_app(dataclasses.replace(settings, max_queued_jobs=2))
    client, other = client_of(app, "alice"), client_of(app, "bob")
    corpus = upload(client)
    # One worker slot: the first job is released to it, two more wait for their turn.
    services.jobs.scheduler.worker_seen("w@host", ["train"], 1)
    jobs = [client.post("/v1/train", json={"corpus_id": corpus["id"]}) for _ in range(3)]
    assert [r.status_code for r in jobs] == [202, 202, 202]
    assert services.jobs.scheduler.waiting_counts("train") == {"alice": 2}
    response = client.post("/v1/train", json={"corpus_id": corpus["id"]})
    assert_problem(response, 429, "too_many_queued_jobs")
    assert "TEXTGEN_MAX_QUEUED_JOBS" in response.get_json()["detail"]
    assert int(response.headers["Retry-After"]) > 0
    assert other.post("/v1/train", json={"corpus_id": upload(other)["id"]}).status_code == 202
    client.post(f"/v1/jobs/{jobs[2].get_json()['id']}/cancel")  # a waiting one
    assert client.post("/v1/train", json={"corpus_id": corpus["id"]}).status_code == 202


def test_submit_generation(client, services, settings):
    model = registered_model(services)
    services.jobs.scheduler.worker_seen("w@host", ["generate"], 1)
    response = client.post("/v1/generate", json={"model_id": model["id"], "length": 20,
                                                 "temperature": [0, 1.5], "num_samples": 3,
                                                 "prompt": "to be"})
    assert response.status_code == 202
    job = response.get_json()
    assert job["type"] == "generate" and job["model_id"] == model["id"]
    assert job["spec"]["temperature"] == [0.0, 1.5] and isinstance(job["spec"]["seed"], int)
    assert len(services.redis.lrange(settings.redis_prefix + "generate", 0, -1)) == 1


def test_prompt_characters_the_model_never_saw_are_listed(client, services):
    model = registered_model(services, alphabet="abc ")
    body = assert_problem(client.post("/v1/generate", json={"model_id": model["id"],
                                                            "prompt": "a cab? Zé"}),
                          422, "unknown_characters", field="prompt")
    assert body["characters"] == ["?", "Z", "é"]
    # A seed model's prompt is prepared first: lowercased, punctuation dropped.
    seed = registered_model(services, alphabet="abc ", preset="seed")
    assert client.post("/v1/generate", json={"model_id": seed["id"],
                                             "prompt": "A CAB?!"}).status_code == 202


def test_generation_over_the_time_limit_is_refused_with_the_estimate(settings, services):
    from api import create_app

    client = client_of(create_app(dataclasses.replace(settings, generation_max_s=5)))
    seed = registered_model(services, preset="seed")
    body = assert_problem(client.post("/v1/generate", json={
        "model_id": seed["id"], "length": 10_000}), 422, "generation_too_large",
        field="length")
    assert body["estimate_s"] > body["limit_s"] == 5
    assert client.post("/v1/generate", json={"model_id": seed["id"],
                                             "length": 20}).status_code == 202


def test_prefer_wait_answers_202_when_the_job_does_not_end_in_time(client, services):
    model = registered_model(services)
    response = client.post("/v1/generate", json={"model_id": model["id"]},
                           headers={"Prefer": "wait=1"})
    assert response.status_code == 202 and response.get_json()["status"] == "queued"


def test_jobs_list_filters_and_pages_with_a_cursor(client):
    corpus = upload(client)
    ids = [client.post("/v1/train", json={"corpus_id": corpus["id"]}).get_json()["id"]
           for _ in range(3)]
    page = client.get("/v1/jobs?limit=2").get_json()
    assert list(page) == ["data", "has_more", "next", "limit"]
    assert [j["id"] for j in page["data"]] == ids[:0:-1] and page["has_more"]
    rest = client.get(f"/v1/jobs?limit=2&after={page['next']}").get_json()
    assert [j["id"] for j in rest["data"]] == [ids[0]] and not rest["has_more"]
    assert rest["next"] is None
    client.post(f"/v1/jobs/{ids[0]}/cancel")
    cancelled = client.get("/v1/jobs?status=cancelled").get_json()["data"]
    assert [j["id"] for j in cancelled] == [ids[0]]
    assert client.get("/v1/jobs?type=generate").get_json()["data"] == []


def test_cancel_and_delete_a_job(client, services):
    corpus = upload(client)
    job = client.post("/v1/train", json={"corpus_id": corpus["id"]}).get_json()
    assert_problem(client.delete(f"/v1/jobs/{job['id']}"), 409, "conflict")  # still queued
    cancelled = client.post(f"/v1/jobs/{job['id']}/cancel").get_json()
    assert cancelled["status"] == "cancelled" and cancelled["stopped_reason"] == "cancelled"
    assert_problem(client.post(f"/v1/jobs/{job['id']}/cancel"), 409, "conflict")
    checkpoints = services.artifacts.checkpoints(job["id"], 1)
    checkpoints.write_state({"epoch": 1})
    assert checkpoints.read_state() == {"epoch": 1}
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert_problem(client.get(f"/v1/jobs/{job['id']}"), 404, "not_found")
    assert checkpoints.read_state() is None


def test_job_events_page_with_a_cursor(client):
    corpus = upload(client)
    job = client.post("/v1/train", json={"corpus_id": corpus["id"]}).get_json()
    client.post(f"/v1/jobs/{job['id']}/cancel")
    page = client.get(f"/v1/jobs/{job['id']}/events").get_json()
    assert [e["data"]["status"] for e in page["data"]] == ["queued", "cancelled"]
    rest = client.get(f"/v1/jobs/{job['id']}/events?after={page['next']}").get_json()
    assert rest["data"] == [] and rest["next"] == page["next"]
    assert_problem(client.get(f"/v1/jobs/{job['id']}/events?after=../x"), 422,
                   "validation_failed", field="after")


def test_event_stream_sends_every_event_with_its_id_and_ends_with_the_job(client):
    corpus = upload(client)
    job = client.post("/v1/train", json={"corpus_id": corpus["id"]}).get_json()
    client.post(f"/v1/jobs/{job['id']}/cancel")
    response = client.get(f"/v1/jobs/{job['id']}/events",
                          headers={"Accept": "text/event-stream"})
    assert response.mimetype == "text/event-stream"
    frames = [f for f in response.get_data(as_text=True).split("\n\n") if f.startswith("id:")]
    ids = [f.split("\n")[0].removeprefix("id: ") for f in frames]
    assert [json.loads(f.split("data: ", 1)[1])["data"]["status"] for f in frames] == [
        "queued", "cancelled"]
    # Reconnecting with Last-Event-ID sends only what came after it.
    again = client.get(f"/v1/jobs/{job['id']}/events",
                       headers={"Accept": "text/event-stream", "Last-Event-ID": ids[0]})
    assert again.get_data(as_text=True).count("id: ") == 1


def test_corpora_and_models_list_and_delete(client, services):
    first, second = upload(client, "one\n"), upload(client, "two\n")
    listed = client.get("/v1/corpora").get_json()
    assert [c["id"] for c in listed["data"]] == [second["id"], first["id"]]
    same_text = upload(client, "one\n")  # the same text is stored once
    assert client.delete(f"/v1/corpora/{first['id']}").status_code == 204
    assert services.artifacts.read_corpus(first["sha256"]) == "one\n"  # another's text
    assert client.delete(f"/v1/corpora/{same_text['id']}").status_code == 204
    with pytest.raises(ArtifactMissingError):
        services.artifacts.read_corpus(first["sha256"])
    assert_problem(client.get(f"/v1/corpora/{first['id']}"), 404, "not_found")

    job = client.post("/v1/train", json={"corpus_id": second["id"]}).get_json()
    body = assert_problem(client.delete(f"/v1/corpora/{second['id']}"), 409, "in_use")
    assert body["jobs"] == [job["id"]]

    model = registered_model(services)
    assert [m["id"] for m in client.get("/v1/models").get_json()["data"]] == [model["id"]]
    generation = client.post("/v1/generate", json={"model_id": model["id"]}).get_json()
    assert_problem(client.delete(f"/v1/models/{model['id']}"), 409, "in_use")
    client.post(f"/v1/jobs/{generation['id']}/cancel")
    assert client.delete(f"/v1/models/{model['id']}").status_code == 204
    with pytest.raises(ArtifactMissingError):
        services.artifacts.model_file(model["id"], 1, "vocab.json")
    assert_problem(client.get(f"/v1/models/{model['id']}"), 404, "not_found")


def test_model_read_files_and_zip(client, services):
    model = registered_model(services)
    body = client.get(f"/v1/models/{model['id']}").get_json()
    assert body["files"]["vocab.json"] == f"/v1/models/{model['id']}/files/vocab.json"
    assert body["alphabet"] == model["alphabet"] and "owner" not in body
    response = client.get(body["files"]["config.json"])
    assert response.status_code == 200 and response.get_json() == {"file": "config.json"}
    assert_problem(client.get(f"/v1/models/{model['id']}/files/secrets.txt"), 404, "not_found")
    archive = zipfile.ZipFile(io.BytesIO(client.get(body["download"]).data))
    assert sorted(archive.namelist()) == ["config.json", "metrics.json", "model.keras",
                                          "vocab.json"]


def test_another_owners_ids_are_not_found_anywhere(client, other_client, services):
    """Bob's token on every endpoint that takes one of Alice's ids: 404, as for none."""
    corpus = upload(client)
    job = client.post("/v1/train", json={"corpus_id": corpus["id"]}).get_json()
    model = registered_model(services)
    sweep = client.post("/v1/sweeps", json={"corpus_id": corpus["id"], "trial_seconds": 5,
                                            "space": {"model.units": [8]}}).get_json()
    requests = [
        ("get", f"/v1/sweeps/{sweep['id']}", None),
        ("get", f"/v1/sweeps/{sweep['id']}/events", None),
        ("post", f"/v1/sweeps/{sweep['id']}/cancel", None),
        ("delete", f"/v1/sweeps/{sweep['id']}", None),
        ("post", "/v1/sweeps", {"corpus_id": corpus["id"], "trial_seconds": 5,
                                "space": {"model.units": [8]}}),
        ("get", f"/v1/corpora/{corpus['id']}", None),
        ("delete", f"/v1/corpora/{corpus['id']}", None),
        ("get", f"/v1/jobs/{job['id']}", None),
        ("get", f"/v1/jobs/{job['id']}/events", None),
        ("post", f"/v1/jobs/{job['id']}/cancel", None),
        ("delete", f"/v1/jobs/{job['id']}", None),
        ("get", f"/v1/models/{model['id']}", None),
        ("get", f"/v1/models/{model['id']}/files/model.keras", None),
        ("get", f"/v1/models/{model['id']}/download", None),
        ("delete", f"/v1/models/{model['id']}", None),
        ("post", "/v1/train", {"corpus_id": corpus["id"]}),
        ("post", "/v1/train", {"corpus_id": upload(other_client)["id"],
                               "init_from_model": model["id"]}),
        ("post", "/v1/generate", {"model_id": model["id"]}),
        ("post", "/v1/evaluations", {"model_ids": [model["id"]], "text": "to be"}),
    ]
    for method, path, body in requests:
        theirs = getattr(other_client, method)(path, json=body)
        assert_problem(theirs, 404, "not_found")
        if path.endswith("/events"):  # the live form too
            assert_problem(other_client.get(path, headers={"Accept": "text/event-stream"}),
                           404, "not_found")
        never = path.replace(corpus["id"], "cor_nope").replace(job["id"], "job_nope") \
            .replace(model["id"], "mdl_nope").replace(sweep["id"], "swp_nope")
        if never != path:
            assert getattr(other_client, method)(never, json=body).get_json()["title"] == \
                theirs.get_json()["title"]
    theirs = [c["id"] for c in other_client.get("/v1/corpora").get_json()["data"]]
    assert len(theirs) == 1 and corpus["id"] not in theirs  # only the one Bob uploaded
    assert other_client.get("/v1/jobs").get_json()["data"] == []
    assert other_client.get("/v1/models").get_json()["data"] == []
    assert other_client.get("/v1/sweeps").get_json()["data"] == []
    # Bob's whoami counts his one corpus, none of Alice's jobs, models or storage.
    mine, his = (c.get("/v1/whoami").get_json() for c in (client, other_client))
    assert (mine["owner"], his["owner"]) == ("alice", "bob")
    assert his["usage"] == {**his["usage"], "jobs_queued": 0, "jobs_running": 0,
                            "storage_reserved_bytes": 0, "models": 0, "corpora": 1,
                            "sweeps": 0, "sweeps_running": 0}
    # Her training job and her sweep's one trial.
    assert mine["usage"]["jobs_queued"] == 2 and mine["usage"]["models"] == 1
    assert (mine["usage"]["sweeps"], mine["usage"]["sweeps_running"]) == (1, 1)
    assert mine["usage"]["storage_reserved_bytes"] > 0  # Alice's training job's
    # Alice's things are all still there.
    assert client.get(f"/v1/jobs/{job['id']}").get_json()["status"] == "queued"
    assert client.get(f"/v1/models/{model['id']}").status_code == 200
    assert client.get(f"/v1/sweeps/{sweep['id']}").get_json()["status"] == "running"


def test_training_continues_a_model(client, services):
    model = registered_model(services, alphabet="abcdefghijklmnopqrstuvwxyz \n")
    corpus = upload(client, "to be or not to be\n")
    job = client.post("/v1/train", json={"corpus_id": corpus["id"],
                                         "init_from_model": model["id"],
                                         "training": {"epochs": 3}}).get_json()
    assert job["init_from_model"] == model["id"]
    assert job["spec"]["model"] == model["config"]["model"]
    assert job["spec"]["training"]["epochs"] == 3
    assert_problem(client.post("/v1/train", json={
        "corpus_id": corpus["id"], "init_from_model": model["id"], "model": {"units": 8}}),
        422, "validation_failed", field="model")
    other = upload(client, "To Be? Or NOT!\n")
    body = assert_problem(client.post("/v1/train", json={
        "corpus_id": other["id"], "init_from_model": model["id"]}), 422,
        "unknown_characters", field="corpus_id")
    assert body["characters"] == ["!", "?", "B", "N", "O", "T"]


def test_unknown_ids_and_paths(client):
    assert_problem(client.get("/v1/jobs/job_nope"), 404, "not_found")
    assert_problem(client.get("/v1/models/mdl_nope"), 404, "not_found")
    assert_problem(client.get("/v1/models/mdl_nope/files/model.keras"), 404, "not_found")
    assert_problem(client.get("/v1/corpora/cor_nope"), 404, "not_found")
    assert_problem(client.get("/v1/nothing"), 404, "not_found")
    response = client.put("/v1/jobs")
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_health_without_workers(client):
    body = client.get("/v1/health").get_json()
    assert body["redis"] is True
    assert body["workers"] == {"train": 0, "generate": 0} and body["status"] == "degraded"


def test_a_corpus_is_found_by_the_hash_of_its_upload(client, other_client):
    import hashlib

    data = "the same bytes\r\n"
    mine = upload(client, data)
    upload(client, "other text\n")
    upload(other_client, data)  # another owner's upload of the same file stays theirs
    digest = hashlib.sha256(data.encode()).hexdigest()
    assert mine["upload_sha256"] == digest
    found = client.get(f"/v1/corpora?upload_sha256={digest}").get_json()["data"]
    assert [c["id"] for c in found] == [mine["id"]]
    assert_problem(client.get("/v1/corpora?upload_sha256=xyz"), 422, "validation_failed",
                   field="upload_sha256")


def test_a_job_shows_each_attempt_and_its_workers_last_sign_of_life(services, client):
    """The store's own steps play a worker that beats once more and dies (its lease runs
    out 0.5 s later, and the job is handed on), then one that runs the next attempt."""
    job_id = unsent_training_job(services.jobs)
    services.jobs.start(job_id, "w1", lease_ms=60_000)
    services.jobs.renew_lease(job_id, 1, lease_ms=500)  # its last beat
    heard = datetime.now(UTC)
    reap_when_expired(services.jobs, job_id)
    queued = client.get(f"/v1/jobs/{job_id}").json
    [first] = queued["attempts"]
    assert first["attempt"] == 1 and first["worker"] == "w1" and first["outcome"] == "lost"
    assert first["reason"] == "the worker of attempt 1 stopped answering"
    # It ended when last heard from, not when it was found silent (the next attempt's turn).
    ended = datetime.fromisoformat(first["ended_at"])
    [handed_on] = [e for e in client.get(f"/v1/jobs/{job_id}/events").json["data"]
                   if e["data"].get("attempt") == 2]
    assert abs((ended - heard).total_seconds()) < 0.2, (ended, heard)
    assert (datetime.fromisoformat(handed_on["time"]) - ended).total_seconds() >= 0.45
    assert first["started_at"] <= first["ended_at"] and queued["heartbeat"] is None

    services.jobs.start(job_id, "w2", lease_ms=30_000)
    running = client.get(f"/v1/jobs/{job_id}").json
    assert running["attempts"][0] == first
    assert {k: running["attempts"][1][k] for k in ("attempt", "worker", "ended_at",
                                                    "outcome")} == {
        "attempt": 2, "worker": "w2", "ended_at": None, "outcome": "running"}
    beat = running["heartbeat"]
    assert 0 <= beat["age_s"] < 2 and services.settings.lease_s - 2 < beat["lease_left_s"]

    services.jobs.fail(job_id, 2, "boom", "it broke")
    failed = client.get(f"/v1/jobs/{job_id}").json
    assert [a["outcome"] for a in failed["attempts"]] == ["lost", "failed"]
    assert failed["attempts"][1]["ended_at"] == failed["finished_at"]
    assert failed["heartbeat"] is None
    # Listed the same way (the heartbeat only for one job read on its own).
    [listed] = client.get("/v1/jobs").json["data"]
    assert listed["attempts"] == failed["attempts"]


def test_a_corpus_deleted_while_another_owner_uploads_its_text_keeps_the_text(app, services):
    """The shared text's reference and its file: alice deletes her corpus of a text while
    bob uploads the same text, 200 times, in pairs started together. Bob's record must
    keep its text (once about 1 pair in 15 lost it: bob found the file, alice's delete saw
    no reference and removed it, then bob added his)."""
    alice, bob = client_of(app, "alice"), client_of(app, "bob")
    for round_ in range(10):
        texts = [f"text {round_}-{pair} that two owners share\n" for pair in range(20)]
        mine = [upload(alice, text) for text in texts]
        deleted, theirs = [None] * len(texts), [None] * len(texts)
        start = threading.Barrier(2 * len(texts))

        def delete(pair):
            start.wait()
            deleted[pair] = alice.delete(f"/v1/corpora/{mine[pair]['id']}").status_code

        def add(pair):
            start.wait()
            theirs[pair] = upload(bob, texts[pair])
        threads = [threading.Thread(target=step, args=(pair,))
                   for pair in range(len(texts)) for step in (delete, add)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert deleted == [204] * len(texts)
        for text, record in zip(texts, theirs):
            assert services.artifacts.read_corpus(record["sha256"]) == text
            assert bob.get(f"/v1/corpora/{record['id']}").status_code == 200


def test_the_openapi_links_reach_every_operation_that_takes_an_id(client):
    """Each operation taking an id in its path or body is the target of a link from an
    operation that hands such ids out, with the pattern of its kind on the path."""
    paths = client.get("/v1/openapi.json").get_json()["paths"]
    operations = [op for methods in paths.values() for op in methods.values()]
    targets = {link["operationId"] for op in operations for response in op["responses"].values()
               for link in response.get("links", {}).values()}
    takers = {op["operationId"] for op in operations
              if any(p["name"].endswith("_id") for p in op.get("parameters", []))}
    assert takers | {"post_jobs.submit_training", "post_jobs.submit_generation",
                     "post_evaluations.submit_evaluation"} <= targets
    upload = paths["/v1/corpora"]["post"]["responses"]["201"]["links"]
    assert upload["post_jobs.submit_training"]["requestBody"] == {
        "corpus_id": "$response.body#/id"}
    assert paths["/v1/models"]["get"]["responses"]["200"]["links"]["get_models.get_model"][
        "parameters"] == {"path.model_id": "$response.body#/data/0/id"}
    # A list of ids gets a list of the one id the response has.
    assert paths["/v1/models"]["get"]["responses"]["200"]["links"][
        "post_evaluations.submit_evaluation"]["requestBody"] == {
        "model_ids": ["$response.body#/data/0/id"]}
    job_id = paths["/v1/jobs/{job_id}"]["get"]["parameters"][0]
    assert job_id["schema"]["pattern"] == "^job_[0-9a-f]{24}$"
