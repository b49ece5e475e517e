import pytest

from shared.errors import ConflictError, NotFoundError
from shared.jobs import JobStatus, JobType

SPEC = {"preset": "default"}


def test_create_get_and_list_newest_first(services):
    first = services.jobs.create(JobType.TRAIN, SPEC, corpus_id="cor_1")
    second = services.jobs.create(JobType.GENERATE, {"model_id": "m"}, model_id="m")
    assert services.jobs.get(first["id"]) == first
    assert first["status"] == JobStatus.QUEUED and first["attempt"] == 1
    assert [j["id"] for j in services.jobs.list()] == [second["id"], first["id"]]
    assert [j["id"] for j in services.jobs.list(limit=1, offset=1)] == [first["id"]]


def test_lifecycle_to_succeeded(services):
    job = services.jobs.create(JobType.TRAIN, SPEC, corpus_id="c")
    attempt = services.jobs.start(job["id"], "w1")
    assert attempt == 1
    progress = {"epoch": 1, "epochs": 2, "step": 3, "steps": 10, "fraction": 0.15,
                "eta_seconds": 12.0}
    assert services.jobs.report_progress(job["id"], attempt, progress, {"loss": 2.0})
    assert services.jobs.succeed(job["id"], attempt, {"model_id": "mdl_x"})
    stored = services.jobs.get(job["id"])
    assert stored["status"] == JobStatus.SUCCEEDED
    assert stored["progress"] == progress and stored["metrics"] == {"loss": 2.0}
    assert stored["result"] == {"model_id": "mdl_x"}
    assert stored["started_at"] and stored["finished_at"] and stored["worker"] == "w1"


def test_terminal_states_are_final(services):
    job = services.jobs.create(JobType.TRAIN, SPEC, corpus_id="c")
    attempt = services.jobs.start(job["id"], "w1")
    assert services.jobs.fail(job["id"], attempt, "boom", "it broke")
    # A late or duplicate runner can change nothing any more.
    assert services.jobs.start(job["id"], "w2") is None
    assert not services.jobs.succeed(job["id"], attempt, {"model_id": "late"})
    assert not services.jobs.report_progress(job["id"], attempt, {"epoch": 9})
    with pytest.raises(ConflictError):
        services.jobs.cancel(job["id"])
    stored = services.jobs.get(job["id"])
    assert stored["status"] == JobStatus.FAILED
    assert stored["error"] == {"code": "boom", "message": "it broke"}


def test_a_runner_of_another_attempt_cannot_write(services):
    job = services.jobs.create(JobType.TRAIN, SPEC, corpus_id="c")
    attempt = services.jobs.start(job["id"], "w1")
    assert not services.jobs.report_progress(job["id"], attempt + 1, {"epoch": 1})
    assert not services.jobs.succeed(job["id"], attempt + 1, {})
    assert services.jobs.get(job["id"])["status"] == JobStatus.RUNNING


def test_cancel_queued_and_running(services):
    queued = services.jobs.create(JobType.TRAIN, SPEC, corpus_id="c")
    assert services.jobs.cancel(queued["id"])["status"] == JobStatus.CANCELLED
    assert services.jobs.start(queued["id"], "w") is None  # a cancelled job never starts

    running = services.jobs.create(JobType.TRAIN, SPEC, corpus_id="c")
    attempt = services.jobs.start(running["id"], "w")
    services.jobs.cancel(running["id"])
    assert not services.jobs.report_progress(running["id"], attempt, {"epoch": 1})
    assert services.jobs.get(running["id"])["status"] == JobStatus.CANCELLED


def test_unknown_job(services):
    with pytest.raises(NotFoundError):
        services.jobs.get("job_nope")
    with pytest.raises(NotFoundError):
        services.jobs.start("job_nope", "w")


def test_events_record_every_status_change_and_page_with_a_cursor(services):
    job = services.jobs.create(JobType.TRAIN, SPEC, corpus_id="c")
    attempt = services.jobs.start(job["id"], "w1")
    assert services.jobs.add_event(job["id"], attempt, "epoch_end", {"epoch": 1, "loss": 2.5})
    assert not services.jobs.add_event(job["id"], attempt + 1, "epoch_end", {"epoch": 9})
    services.jobs.succeed(job["id"], attempt, {"model_id": "m"})
    assert not services.jobs.add_event(job["id"], attempt, "epoch_end", {"epoch": 2})

    events, cursor = services.jobs.events(job["id"])
    assert [(e["type"], e["data"].get("status")) for e in events] == [
        ("status", "queued"), ("status", "running"), ("epoch_end", None),
        ("status", "succeeded")]
    assert events[2]["data"] == {"epoch": 1, "loss": 2.5}
    assert all(e["time"].endswith("Z") for e in events)
    first_two, middle = services.jobs.events(job["id"], limit=2)
    assert first_two == events[:2]
    assert services.jobs.events(job["id"], after=middle)[0] == events[2:]
    assert services.jobs.events(job["id"], after=cursor) == ([], cursor)
    with pytest.raises(NotFoundError):
        services.jobs.events("job_nope")


def test_non_finite_numbers_are_stored_as_null(services):
    job = services.jobs.create(JobType.TRAIN, SPEC, corpus_id="c")
    attempt = services.jobs.start(job["id"], "w1")
    services.jobs.report_progress(job["id"], attempt, {"epoch": 1},
                                  {"loss": float("nan"), "val_loss": float("inf")})
    services.jobs.add_event(job["id"], attempt, "epoch_end", {"perplexity": float("inf")})
    assert services.jobs.get(job["id"])["metrics"] == {"loss": None, "val_loss": None}
    assert services.jobs.events(job["id"])[0][-1]["data"] == {"perplexity": None}
