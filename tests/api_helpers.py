"""What the API tests share: checking a problem answer, uploading, a registered model."""

import io
import json

from shared.runtime.redis_db import model_id_of
from shared.contracts.specs import resolve_train_spec

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def assert_problem(response, status, code, field=None):
    assert response.status_code == status, response.get_data(as_text=True)
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


def registered_model(services, owner="alice", alphabet="abcdefghijklmnopqrstuvwxyz ",
                     preset="default"):
    """A model record with its four files in the artifact store, as a training job leaves
    them (the files are small stand-ins: these tests read them, never load them)."""
    config = resolve_train_spec(preset, {}).model_dump()
    job = services.jobs.create("train", config, owner, max_queued=100, corpus_id="cor_x")
    model_id = model_id_of(job["id"])
    services.jobs.start(job["id"], "w", 30_000)
    record = {"id": model_id, "owner": owner, "job_id": job["id"], "corpus_id": "cor_x",
              "created_at": "2026-11-28T00:00:00.000Z", "preset": preset, "config": config,
              "vocab_size": len(alphabet), "alphabet": alphabet, "metrics": {"loss": 1.0},
              "best_epoch": 1, "stopped_reason": "epochs_done", "train_seconds": 1.0}
    with services.artifacts.scratch_dir() as directory:
        for name in ("model.keras", "vocab.json", "config.json", "metrics.json"):
            (directory / name).write_text(json.dumps({"file": name}))
        services.artifacts.publish_model(model_id, 1, directory)
    record["attempt"] = 1
    assert services.jobs.succeed(job["id"], 1, {"model_id": model_id}, model=record)
    return record
