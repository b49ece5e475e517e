"""POST /v1/sweeps through the real app on real Redis (no worker: trials stay queued): what
is stored, how the study hands out trials, what is refused and with which code, and that
another owner sees none of it. The sweep run by workers: tests/test_sweeps_e2e.py."""

import dataclasses

import pytest
import redis

from shared.runtime.redis_db import model_id_of
from shared.sweeps import runner as sweep_runner
from tests.api_helpers import assert_problem, upload
from tests.conftest import client_of
from tests.faults import RedisProcess

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


@pytest.mark.parametrize("final_fraction, message", [
    (-0.1, "greater than or equal to 0"),
    (0.95, "less than or equal to 0.9"),  # the search keeps a tenth at least
    ("half", "a valid number"),
])
def test_a_final_fraction_out_of_its_range_is_refused(client, services, final_fraction,
                                                      message):
    corpus = upload(client, TEXT)
    body = assert_problem(client.post("/v1/sweeps", json=sweep_body(
        corpus["id"], final_fraction=final_fraction)), 422, "validation_failed",
        "final_fraction")
    assert message in body["detail"]
    assert not services.sweeps.running()


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


def test_the_same_idempotency_key_and_body_start_one_sweep(client, services):
    corpus = upload(client, TEXT)
    headers = {"Idempotency-Key": "sweep-1"}
    first = client.post("/v1/sweeps", json=sweep_body(corpus["id"], parallel=2),
                        headers=headers)
    again = client.post("/v1/sweeps", json=sweep_body(corpus["id"], parallel=2),
                        headers=headers)
    assert first.status_code == again.status_code == 201, again.get_json()
    assert again.get_json() == first.get_json()  # the first answer, with its first trials
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [s["id"] for s in services.sweeps.page("alice").data] == [first.get_json()["id"]]
    assert len(services.jobs.page("alice").data) == 2  # its two first trials, once
    assert_problem(client.post("/v1/sweeps", json=sweep_body(corpus["id"], parallel=1),
                               headers=headers), 409, "idempotency_key_reused",
                   field="Idempotency-Key")


def test_a_sweep_is_stored_with_its_answer_over_its_own_pending_marker_only(services):
    key = services.keys.idempotency("alice", "k")
    answer = {"key": key, "pending": "mine", "value": "the answer", "ttl_s": 60}
    services.redis.set(key, "mine")
    mine = services.sweeps.new_record("alice", trials=1)
    services.sweeps.put(mine, answer=answer)
    assert services.redis.get(key) == "the answer"
    assert services.sweeps.get(mine["id"])["owner"] == "alice"
    # A request whose marker expired: the key is another request's now, and stays so.
    services.redis.set(key, "theirs")
    late = services.sweeps.new_record("alice", trials=1)
    services.sweeps.put(late, answer=answer)
    assert services.redis.get(key) == "theirs"
    assert services.sweeps.count("alice") == services.sweeps.running_count("alice") == 2


@pytest.mark.subprocess  # a redis-server of its own
def test_a_request_that_fails_after_its_sweep_was_stored_is_answered_with_it_on_retry(
        tmp_path, settings):
    """Here its first trial's job record is refused by an ACL, after the sweep and its
    answer were written: the request fails (500), and its retry gets the sweep as stored,
    never a second one. A request killed at that point leaves the same state."""
    from api import create_app

    server = RedisProcess(tmp_path / "redis").start()
    try:
        settings = dataclasses.replace(settings, redis_url=server.url)
        full = create_app(settings)
        corpus = upload(client_of(full), TEXT)
        prefix = settings.redis_prefix
        # Everything may be read; written: owners' keys, sweeps' keys, not job records.
        redis.Redis.from_url(server.url).execute_command(
            "ACL", "SETUSER", "submitter", "on", ">submitter-password", "+@all", "%R~*",
            f"~{prefix}owner*", f"~{prefix}{{swp_*", f"~{prefix}sweeps-running")
        limited = client_of(create_app(dataclasses.replace(
            settings, redis_url=f"redis://submitter:submitter-password@127.0.0.1:"
                                f"{server.port}/0")))
        request = {"json": sweep_body(corpus["id"], parallel=1),
                   "headers": {"Idempotency-Key": "sweep-1"}}
        assert_problem(limited.post("/v1/sweeps", **request), 500, "internal_error")

        retry = client_of(full).post("/v1/sweeps", **request)
        assert retry.status_code == 201, retry.get_json()
        assert retry.headers["Idempotent-Replayed"] == "true"
        sweep = retry.get_json()
        assert sweep["status"] == "running" and sweep["trials"] == []  # as it was stored
        services = full.extensions["textgen"]
        assert [s["id"] for s in services.sweeps.page("alice").data] == [sweep["id"]]
        assert services.jobs.page("alice").data == []
    finally:
        server.stop()


def finish(services, job_id, val_loss):
    """The job as a worker ends it: succeeded with `val_loss`, its model registered."""
    attempt = services.jobs.start(job_id, "test-worker", 60_000)
    model_id = model_id_of(job_id)
    assert services.jobs.succeed(job_id, attempt, {"model_id": model_id, "best_epoch": 1},
                                 {"val_loss": val_loss}, stopped_reason="time_limit",
                                 model={"id": model_id, "owner": "alice", "job_id": job_id})


def test_the_best_trial_goes_on_as_the_final_phase_and_wins_only_if_lower(client, services):
    corpus = upload(client, TEXT)
    sweep = client.post("/v1/sweeps", json=sweep_body(
        corpus["id"], space={"model.units": [8, 16]}, parallel=2, trial_seconds=40,
        budget_seconds=100, final_fraction=0.4)).get_json()
    assert sweep["final_fraction"] == 0.4 and sweep["final"] is None
    first, second = sweep["trials"]
    # The search has 100 x 0.6 = 60 s: each trial gets its 40.
    for trial in sweep["trials"]:
        assert client.get(f"/v1/jobs/{trial['job_id']}").get_json()[
            "spec"]["training"]["max_seconds"] == 40
    finish(services, first["job_id"], 1.5)
    sweep_runner.advance(services, sweep["id"])
    assert client.get(f"/v1/sweeps/{sweep['id']}").get_json()["final"] is None  # one runs
    finish(services, second["job_id"], 1.2)
    sweep_runner.advance(services, sweep["id"])
    sweep = client.get(f"/v1/sweeps/{sweep['id']}").get_json()
    final = sweep["final"]
    assert sweep["status"] == "running" and final["status"] == "queued"
    assert final["number"] == second["number"] and final["val_loss"] is None
    assert 90 <= final["max_seconds"] <= 100  # what is left of the whole budget
    job = client.get(f"/v1/jobs/{final['job_id']}").get_json()
    trial_job = client.get(f"/v1/jobs/{second['job_id']}").get_json()
    assert job["sweep_id"] == sweep["id"] and job["sweep_final"] is True
    assert job["init_from_model"] == model_id_of(second["job_id"])
    assert job["spec"] == {**trial_job["spec"], "training": {
        **trial_job["spec"]["training"], "max_seconds": final["max_seconds"]}}
    sweep_runner.advance(services, sweep["id"])  # a step while it runs changes nothing
    assert client.get(f"/v1/sweeps/{sweep['id']}").get_json() == sweep
    assert sweep["best"]["job_id"] == second["job_id"] and not sweep["best"]["final"]

    finish(services, final["job_id"], 1.1)
    sweep_runner.advance(services, sweep["id"])
    ended = client.get(f"/v1/sweeps/{sweep['id']}").get_json()
    assert ended["status"] == "succeeded" and ended["final"]["status"] == "succeeded"
    assert ended["final"]["val_loss"] == 1.1
    assert ended["best"] == {"number": second["number"], "job_id": final["job_id"],
                             "model_id": model_id_of(final["job_id"]), "val_loss": 1.1,
                             "params": second["params"], "final": True}
    events = client.get(f"/v1/sweeps/{sweep['id']}/events").get_json()["data"]
    assert [e["type"] for e in events][-3:] == ["final_started", "final_ended", "status"]
    assert events[-2]["data"]["improved"] is True


@pytest.mark.parametrize("final_fraction", [0, None])
def test_without_a_final_phase_or_a_complete_trial_the_sweep_ends_with_its_trials(
        client, services, final_fraction):
    corpus = upload(client, TEXT)
    body = sweep_body(corpus["id"], space={"model.units": [8]}, trials=1, parallel=1,
                      budget_seconds=100)
    if final_fraction is not None:
        body["final_fraction"] = final_fraction
    sweep = client.post("/v1/sweeps", json=body).get_json()
    job_id = sweep["trials"][0]["job_id"]
    if final_fraction is None:  # on by default, but a cancelled trial leaves no best
        services.jobs.cancel(job_id)
    else:
        finish(services, job_id, 1.5)
    sweep_runner.advance(services, sweep["id"])
    ended = client.get(f"/v1/sweeps/{sweep['id']}").get_json()
    assert ended["status"] == "succeeded" and ended["final"] is None
    assert ended["final_fraction"] == (0 if final_fraction == 0 else 0.5)


def test_cancelling_a_sweep_in_its_final_phase_cancels_the_final_job(client, services):
    corpus = upload(client, TEXT)
    sweep = client.post("/v1/sweeps", json=sweep_body(
        corpus["id"], space={"model.units": [8]}, trials=1, parallel=1,
        budget_seconds=100)).get_json()
    finish(services, sweep["trials"][0]["job_id"], 1.5)
    sweep_runner.advance(services, sweep["id"])
    final_job = client.get(f"/v1/sweeps/{sweep['id']}").get_json()["final"]["job_id"]
    cancelled = client.post(f"/v1/sweeps/{sweep['id']}/cancel").get_json()
    assert cancelled["status"] == "cancelled" and cancelled["final"]["status"] == "cancelled"
    assert client.get(f"/v1/jobs/{final_job}").get_json()["status"] == "cancelled"
    assert cancelled["best"]["job_id"] == sweep["trials"][0]["job_id"]
