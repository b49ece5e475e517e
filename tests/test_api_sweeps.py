"""POST /v1/sweeps through the real app on real Redis (no worker: trials stay queued): what
is stored, how the study hands out trials, what is refused and with which code, and that
another owner sees none of it. The sweep run by workers: tests/test_sweeps_e2e.py."""

import pytest

from shared import sweep_runner
from tests.api_helpers import assert_problem, upload

TEXT = "to be or not to be, that is the question\n" * 20


def sweep_body(corpus_id, **fields):
    return {"corpus_id": corpus_id, "model": {"units": 8, "layers": 1},
            "space": {"model.units": [8, 16], "training.learning_rate":
                      {"low": 1e-3, "high": 3e-2, "log": True}},
            "trials": 4, "trial_seconds": 5, **fields}


def test_a_sweep_submits_its_first_trials_as_queued_training_jobs(client, services):
    corpus = upload(client, TEXT)
    response = client.post("/v1/sweeps", json=sweep_body(corpus["id"], parallel=2))
    assert response.status_code == 201, response.get_json()
    sweep = response.get_json()
    assert response.headers["Location"] == f"/v1/sweeps/{sweep['id']}"
    assert sweep["status"] == "running" and sweep["sampler"] == "tpe"
    assert sweep["max_trials"] == 4 and sweep["trials_made"] == 2  # `parallel` at once
    assert sweep["best"] is None
    for trial in sweep["trials"]:
        assert trial["status"] == "queued" and trial["rung"] == 0
        assert trial["params"]["model.units"] in (8, 16)
        assert 1e-3 <= trial["params"]["training.learning_rate"] <= 3e-2
        job = client.get(f"/v1/jobs/{trial['job_id']}").get_json()
        assert job["sweep_id"] == sweep["id"] and job["sweep_trial"] == trial["number"]
        assert job["spec"]["model"]["units"] == trial["params"]["model.units"]
        assert job["spec"]["model"]["layers"] == 1  # the base spec's
        assert job["spec"]["training"]["max_seconds"] == 5
    first, second = sweep["trials"]
    assert first["params"] != second["params"]  # each ask draws anew
    # Another step (the reaper's pass) makes none while `parallel` trials are queued.
    sweep_runner.advance(services, sweep["id"])
    assert client.get(f"/v1/sweeps/{sweep['id']}").get_json()["trials_made"] == 2
    listed = client.get("/v1/sweeps").get_json()["data"]
    assert [s["id"] for s in listed] == [sweep["id"]]


def test_a_trial_that_ends_is_told_and_the_next_is_made(client, services):
    corpus = upload(client, TEXT)
    sweep = client.post("/v1/sweeps", json=sweep_body(corpus["id"], parallel=1,
                                                      trials=2)).get_json()
    job_id = sweep["trials"][0]["job_id"]
    client.post(f"/v1/jobs/{job_id}/cancel")
    sweep_runner.advance(services, sweep["id"])
    sweep = client.get(f"/v1/sweeps/{sweep['id']}").get_json()
    assert [t["status"] for t in sweep["trials"]] == ["cancelled", "queued"]
    # A trial whose job is deleted (by its owner, or by retention) shows as told: failed.
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    trials = client.get(f"/v1/sweeps/{sweep['id']}").get_json()["trials"]
    assert [t["status"] for t in trials] == ["failed", "queued"]
    # Cancelling the sweep cancels its queued trial, and no trial is made after.
    cancelled = client.post(f"/v1/sweeps/{sweep['id']}/cancel").get_json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    assert [t["status"] for t in cancelled["trials"]] == ["failed", "cancelled"]
    assert_problem(client.post(f"/v1/sweeps/{sweep['id']}/cancel"), 409, "conflict")
    sweep_runner.advance(services, sweep["id"])
    assert client.get(f"/v1/sweeps/{sweep['id']}").get_json()["trials_made"] == 2
    events = client.get(f"/v1/sweeps/{sweep['id']}/events").get_json()["data"]
    assert [(e["type"], e["data"].get("number")) for e in events] == [
        ("trial_started", 0), ("trial_ended", 0), ("trial_started", 1), ("status", None)]
    assert events[1]["data"]["state"] == "failed"  # a cancelled trial told Optuna so
    assert events[-1]["data"]["status"] == "cancelled"
    # The same as a live stream: every event with its id, ended by the sweep's status;
    # Last-Event-ID resumes after the event it names.
    path = f"/v1/sweeps/{sweep['id']}/events"
    streamed = client.get(path, headers={"Accept": "text/event-stream"})
    assert streamed.mimetype == "text/event-stream"
    frames = [f for f in streamed.get_data(as_text=True).split("\n\n") if f.startswith("id:")]
    assert [f.split("\n")[0].removeprefix("id: ") for f in frames] == [e["id"] for e in events]
    assert [f.split("\n")[1].removeprefix("event: ") for f in frames] == [
        e["type"] for e in events]
    resumed = client.get(path, headers={"Accept": "text/event-stream",
                                        "Last-Event-ID": events[1]["id"]})
    assert resumed.get_data(as_text=True).count("id: ") == 2
    assert_problem(client.get(path, headers={"Accept": "text/event-stream",
                                             "Last-Event-ID": "x"}),
                   422, "validation_failed", field="Last-Event-ID")
    assert client.delete(f"/v1/sweeps/{sweep['id']}").status_code == 204
    assert_problem(client.get(f"/v1/sweeps/{sweep['id']}"), 404, "not_found")
    assert not list(services.redis.scan_iter(match=services.keys.sweep_study(sweep["id"]) + "*"))


def test_a_grid_runs_each_point_once_at_most(client):
    corpus = upload(client, TEXT)
    sweep = client.post("/v1/sweeps", json=sweep_body(
        corpus["id"], space={"model.units": [8, 16], "model.layers": [1, 2]}, trials=10,
        parallel=4)).get_json()
    assert sweep["sampler"] == "grid" and sweep["max_trials"] == 4
    points = {(t["params"]["model.units"], t["params"]["model.layers"]) for t in sweep["trials"]}
    assert points == {(8, 1), (8, 2), (16, 1), (16, 2)}


@pytest.mark.parametrize("space, field", [
    ({"model.colour": [1]}, "space.model.colour"),
    ({"units": [8]}, "space.units"),
    ({"model.units": [8, 0]}, "space.model.units"),
    ({"model.units": [8, "8"]}, "space.model.units"),
    ({"model.units": {"low": 8, "high": 4}}, "space.model.units"),
    ({"model.units": {"low": 8.5, "high": 16}}, "space.model.units"),
    ({"training.learning_rate": {"low": 1e-3, "high": 2.0}}, "space.training.learning_rate"),
    ({"training.learning_rate": {"low": 0.0, "high": 0.1, "log": True}},
     "space.training.learning_rate"),
    ({"model.architecture": {"low": 1, "high": 2}}, "space.model.architecture"),
    ({"training.max_seconds": [5, 10]}, "space.training.max_seconds"),
    ({"training.validation_fraction": [0.1, 0.2]}, "space.training.validation_fraction"),
])
def test_a_space_field_that_is_not_in_the_spec_or_fails_its_validation_is_named(
        client, services, space, field):
    corpus = upload(client, TEXT)
    body = assert_problem(client.post("/v1/sweeps", json=sweep_body(corpus["id"], space=space)),
                          422, "validation_failed", field)
    assert body["errors"][0]["field"] == field
    assert not services.sweeps.running()  # nothing stored


@pytest.mark.parametrize("fields, field", [
    ({"model": {"units": 0}}, "model.units"),
    ({"preset": "seed"}, "training.validation_fraction"),  # no validation split to minimize
    ({"trial_seconds": 10**9}, "trial_seconds"),
    ({"trial_seconds": 7 * 86400}, "trial_seconds"),  # over TEXTGEN_MAX_TRAIN_SECONDS
    ({"trials": 0}, "trials"),
    ({"space": {}}, "space"),
    ({"objective": "loss"}, "objective"),
])
def test_a_bad_base_spec_or_budget_is_refused(client, fields, field):
    corpus = upload(client, TEXT)
    assert_problem(client.post("/v1/sweeps", json=sweep_body(corpus["id"], **fields)), 422,
                   "validation_failed", field)



def test_the_step_that_tells_a_grids_last_trial_ends_the_sweep(client, services):
    corpus = upload(client, TEXT)
    sweep = client.post("/v1/sweeps", json=sweep_body(
        corpus["id"], space={"model.units": [8, 16]}, parallel=2)).get_json()
    for trial in sweep["trials"]:
        services.jobs.cancel(trial["job_id"])
    sweep_runner.advance(services, sweep["id"])  # Optuna's grid once raised here
    ended = client.get(f"/v1/sweeps/{sweep['id']}").get_json()
    assert ended["status"] == "succeeded" and ended["best"] is None


def test_a_step_lost_when_a_trial_ended_is_taken_by_the_next_reaper_pass(client, services):
    from worker.reaper import Reaper

    corpus = upload(client, TEXT)
    sweep = client.post("/v1/sweeps", json=sweep_body(corpus["id"], parallel=1,
                                                      trials=2)).get_json()
    services.jobs.cancel(sweep["trials"][0]["job_id"])  # ended, and nobody advanced
    Reaper(services).run_once()
    trials = client.get(f"/v1/sweeps/{sweep['id']}").get_json()["trials"]
    assert [t["status"] for t in trials] == ["cancelled", "queued"]
