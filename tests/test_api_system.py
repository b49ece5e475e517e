"""GET /v1/presets and GET /v1/whoami through the Flask test client, against real Redis."""

import dataclasses
import time
from typing import get_args

from shared.contracts.specs import PRESETS, PresetName
from shared.stores.owner_slots import OwnerSlots
from tests.api_helpers import assert_problem, registered_model, upload
from tests.conftest import client_of


def test_presets_list_each_with_its_description_and_the_spec_a_job_of_it_runs(client):
    body = client.get("/v1/presets").get_json()
    presets = {preset["name"]: preset for preset in body["data"]}
    assert list(presets) == list(PRESETS) == list(get_args(PresetName))  # each described
    for name, preset in presets.items():
        assert preset["description"] and "\n" not in preset["description"]
        assert preset["spec"]["preset"] == name
    # A job that overrides nothing runs the listed spec, with the service's time ceiling
    # where the preset leaves the budget to it.
    corpus = upload(client)
    job = client.post("/v1/train", json={"corpus_id": corpus["id"], "preset": "seed"})
    spec = job.get_json()["spec"]
    listed = presets["seed"]["spec"]
    assert listed["training"]["max_seconds"] is None
    assert spec == {**listed, "training": {**listed["training"],
                                           "max_seconds": spec["training"]["max_seconds"]}}


def test_presets_and_whoami_need_a_token(app):
    anonymous = client_of(app, None)
    for path in ("/v1/presets", "/v1/whoami"):
        assert_problem(anonymous.get(path), 401, "unauthorized")


def test_whoami_shows_the_quotas_and_what_the_owner_uses_of_each(settings, services):
    from api import create_app

    app = create_app(dataclasses.replace(settings, max_queued_jobs=5, max_storage_mb=100.0))
    client = client_of(app, "alice")
    me = client.get("/v1/whoami").get_json()
    assert me["owner"] == "alice"
    assert me["quotas"]["max_queued_jobs"] == 5 and me["quotas"]["max_storage_mb"] == 100
    assert me["quotas"]["max_train_seconds"] == settings.max_train_seconds
    assert me["usage"] == {"jobs_queued": 0, "jobs_running": 0, "storage_bytes": 0,
                           "storage_reserved_bytes": 0, "streams_open": 0,
                           "downloads_open": 0, "models": 0, "corpora": 0, "sweeps": 0,
                           "sweeps_running": 0}

    corpus = upload(client, "to be or not to be\n" * 1000)
    # One worker slot: the first job is released to it, the second waits for its turn.
    services.jobs.scheduler.worker_seen("w@host", ["train"], 1)
    for _ in range(2):
        assert client.post("/v1/train", json={"corpus_id": corpus["id"]}).status_code == 202
    registered_model(services)
    # A slot whose connection stopped renewing it (a vanished client's) is not counted.
    OwnerSlots(services.redis, services.keys.stream_slots, ttl_s=0.001).take("alice", 10)
    slot = app.extensions["textgen.stream_slots"].take("alice", 10)
    download = app.extensions["textgen.download_slots"].take("alice", 10)
    time.sleep(0.01)
    usage = client.get("/v1/whoami").get_json()["usage"]
    assert (usage["jobs_queued"], usage["jobs_running"]) == (1, 1)
    assert (usage["models"], usage["corpora"], usage["streams_open"]) == (1, 1, 1)
    assert usage["downloads_open"] == 1
    # The corpus; what the two training jobs may store.
    assert usage["storage_bytes"] > 0 and usage["storage_reserved_bytes"] > 0
    assert (usage["storage_bytes"], usage["storage_reserved_bytes"]) == \
        services.storage.usage("alice")

    app.extensions["textgen.stream_slots"].release("alice", slot)
    app.extensions["textgen.download_slots"].release("alice", download)
    usage = client.get("/v1/whoami").get_json()["usage"]
    assert usage["streams_open"] == usage["downloads_open"] == 0

    # Two sweeps, one cancelled: both are hers, one still runs; Bob's is not counted.
    sweep = {"corpus_id": corpus["id"], "trial_seconds": 5, "space": {"model.units": [8]}}
    ended = client.post("/v1/sweeps", json=sweep).get_json()
    assert client.post(f"/v1/sweeps/{ended['id']}/cancel").status_code == 200
    assert client.post("/v1/sweeps", json=sweep).status_code == 201
    bob = client_of(app, "bob")
    assert bob.post("/v1/sweeps", json={**sweep, "corpus_id": upload(bob)["id"]}) \
        .status_code == 201
    usage = client.get("/v1/whoami").get_json()["usage"]
    assert (usage["sweeps"], usage["sweeps_running"]) == (2, 1)
