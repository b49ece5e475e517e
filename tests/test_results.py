"""Generation results: the samples are an artifact, the job record keeps a preview and the
link, listings return summaries. The real app on a real Redis and both artifact stores;
the records are written as a generation worker writes them (worker/runs.py)."""

import json

import pytest

from shared.stores.results import encode_samples, result_summary
from shared.contracts.specs import GenerateSpec
from tests.api_helpers import assert_problem, registered_model
from tests.conftest import client_of

MB = 1_000_000
LIST_LIMIT_BYTES = 1 * MB  # a page of 200 jobs stays under this


@pytest.fixture
def svc(store_settings):
    from shared.runtime.services import Services

    return Services.from_settings(store_settings)


@pytest.fixture
def app(store_settings):
    from api import create_app

    return create_app(store_settings)


def generated(svc, model, samples, prompt="", owner="alice"):
    """A generation job that succeeded with `samples`, stored as the worker stores them."""
    spec = GenerateSpec(model_id=model["id"], prompt=prompt, seed=1).model_dump()
    job = svc.jobs.create("generate", spec, owner, max_queued=10, model_id=model["id"])
    attempt = svc.jobs.start(job["id"], "w", 30_000)
    data = encode_samples(samples, 64 * MB)
    svc.artifacts.put_result(job["id"], attempt, data)
    assert svc.jobs.succeed(job["id"], attempt,
                            result_summary(job["id"], attempt, samples, len(data)))
    return job["id"]


def test_the_record_keeps_a_preview_and_the_link_serves_every_sample(app, svc):
    client = client_of(app)
    model = registered_model(svc)
    samples = [{"text": f"sample {i}: " + "long text " * 2_000, "temperature": 1.0}
               for i in range(5)]
    job_id = generated(svc, model, samples)

    job = client.get(f"/v1/jobs/{job_id}").get_json()
    result = job["result"]
    assert result["sample_count"] == 5 and result["url"] == f"/v1/jobs/{job_id}/result"
    assert [s["text"] for s in result["preview"]] == [s["text"][:100] for s in samples[:3]]
    assert len(json.dumps(job)) < 2_000  # 100 KB of samples, not in the record

    response = client.get(result["url"])
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == {"samples": samples}
    assert int(response.headers["Content-Length"]) == result["bytes"]

    # Another owner's job is not found; a training job has no samples.
    assert_problem(client_of(app, "bob").get(result["url"]), 404, "not_found")
    assert_problem(client.get(f"/v1/jobs/{model['job_id']}/result"), 404, "not_found")


def test_a_job_without_samples_yet_is_a_conflict(app, svc):
    client = client_of(app)
    model = registered_model(svc)
    job = client.post("/v1/generate", json={"model_id": model["id"]}).get_json()
    assert_problem(client.get(f"/v1/jobs/{job['id']}/result"), 409, "conflict")


def test_deleting_a_job_deletes_its_samples(app, svc):
    client = client_of(app)
    job_id = generated(svc, registered_model(svc), [{"text": "x", "temperature": 1.0}])
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert svc.artifacts.objects.list(f"results/{job_id}") == []


@pytest.mark.parametrize("backend", ["file"])  # records only: one store is enough
def test_a_page_of_200_generation_jobs_with_long_samples_is_under_1_mb(app, svc):
    client = client_of(app)
    model = registered_model(svc)
    # The worst a job can hold: a 10,000-character prompt and samples of characters JSON
    # escapes (\u0001 is six bytes for one).
    prompt = "\x01é" * 5_000
    samples = [{"text": prompt + "\x01" * 2_000, "temperature": 1.0}] * 8
    for _ in range(200):
        generated(svc, model, samples, prompt=prompt)
    response = client.get("/v1/jobs?limit=200")
    page = response.get_json()
    assert len(page["data"]) == 200
    assert len(response.data) < LIST_LIMIT_BYTES, len(response.data)
    assert all("spec" not in job and job["result"]["sample_count"] == 8
               for job in page["data"])
    # A job read on its own still has its spec.
    assert client.get(f"/v1/jobs/{page['data'][0]['id']}").get_json()["spec"]["prompt"] == prompt


def test_a_generation_whose_samples_cannot_fit_is_refused_at_submission(app, svc,
                                                                        store_settings):
    import dataclasses

    from api import create_app

    small = create_app(dataclasses.replace(store_settings, max_result_mb=0.01))
    model = registered_model(svc)
    body = assert_problem(client_of(small).post("/v1/generate", json={
        "model_id": model["id"], "length": 2_000, "num_samples": 8}), 422,
        "generation_too_large", field="length")
    assert "TEXTGEN_MAX_RESULT_MB" in body["detail"]


def test_samples_over_the_cap_fail_the_job_with_a_clear_error():
    from shared.stores.results import ResultTooLargeError

    with pytest.raises(ResultTooLargeError, match="TEXTGEN_MAX_RESULT_MB"):
        encode_samples([{"text": "x" * 2_000, "temperature": 1.0}], 1_000)


def test_a_job_recorded_with_inline_samples_reads_as_a_summary(app, svc):
    """Records written before results were artifacts still answer, in the new shape."""
    client = client_of(app)
    model = registered_model(svc)
    spec = GenerateSpec(model_id=model["id"], seed=1).model_dump()
    job = svc.jobs.create("generate", spec, "alice", max_queued=10, model_id=model["id"])
    attempt = svc.jobs.start(job["id"], "w", 30_000)
    samples = [{"text": "an old sample " * 20, "temperature": 0.5}]
    assert svc.jobs.succeed(job["id"], attempt, {"samples": samples})
    result = client.get(f"/v1/jobs/{job['id']}").get_json()["result"]
    assert result["sample_count"] == 1 and len(result["preview"][0]["text"]) == 100
    assert client.get("/v1/jobs").get_json()["data"][0]["result"] == result
    assert client.get(result["url"]).get_json() == {"samples": samples}
