"""shared.stores.jobs on real Redis: fenced transitions, owners and quotas, leases and reaping."""

import time

import pytest

from shared.contracts.errors import ConflictError, NotFoundError, TooManyQueuedJobsError
from shared.stores.jobs import JobStatus, JobType
from shared.runtime.redis_db import model_id_of

SPEC = {"preset": "default"}
LEASE_MS = 30_000


def create(services, owner="alice", job_type=JobType.TRAIN, max_queued=8, **lineage):
    return services.jobs.create(job_type, SPEC, owner, max_queued=max_queued,
                                **(lineage or {"corpus_id": "c"}))


def test_create_get_and_page_newest_first_per_owner(services):
    first = create(services, corpus_id="cor_1")
    second = create(services, job_type=JobType.GENERATE, model_id="m")
    theirs = create(services, owner="bob")
    assert services.jobs.get(first["id"]) == first
    assert first["status"] == JobStatus.QUEUED and first["attempt"] == 1
    assert [j["id"] for j in services.jobs.page("alice").data] == [second["id"], first["id"]]
    assert [j["id"] for j in services.jobs.page("bob").data] == [theirs["id"]]
    # Another owner's job is not found, exactly like one that never existed.
    with pytest.raises(NotFoundError):
        services.jobs.get(theirs["id"], owner="alice")
    page = services.jobs.page("alice", limit=1)
    assert [j["id"] for j in page.data] == [second["id"]] and page.has_more
    rest = services.jobs.page("alice", after=page.next, limit=1)
    assert [j["id"] for j in rest.data] == [first["id"]] and not rest.has_more
    generated = services.jobs.page("alice", job_type="generate")
    assert [j["id"] for j in generated.data] == [second["id"]]
    assert services.jobs.page("alice", status="running").data == []


def test_lifecycle_to_succeeded_registers_the_model_in_the_same_step(services):
    job = create(services)
    attempt = services.jobs.start(job["id"], "w1", LEASE_MS)
    assert attempt == 1
    progress = {"epoch": 1, "epochs": 2, "step": 3, "steps": 10, "fraction": 0.15,
                "eta_seconds": 12.0}
    assert services.jobs.report_progress(job["id"], attempt, progress, {"loss": 2.0})
    model = {"id": model_id_of(job["id"]), "owner": "alice", "job_id": job["id"]}
    assert services.jobs.succeed(job["id"], attempt, {"model_id": model["id"]}, model=model,
                                 stopped_reason="epochs_done")
    stored = services.jobs.get(job["id"])
    assert stored["status"] == JobStatus.SUCCEEDED and stored["stopped_reason"] == "epochs_done"
    assert stored["progress"] == progress and stored["metrics"] == {"loss": 2.0}
    assert stored["started_at"] and stored["finished_at"] and stored["worker"] == "w1"
    assert services.models.get(model["id"], "alice") == model
    assert [m["id"] for m in services.models.page("alice").data] == [model["id"]]
    assert services.jobs.active_of("alice") == []


def test_a_cancelled_job_registers_no_model(services):
    job = create(services)
    attempt = services.jobs.start(job["id"], "w1", LEASE_MS)
    services.jobs.cancel(job["id"])
    model = {"id": model_id_of(job["id"]), "owner": "alice"}
    assert not services.jobs.succeed(job["id"], attempt, {"model_id": model["id"]},
                                     model=model)
    with pytest.raises(NotFoundError):
        services.models.get(model["id"])
    assert services.models.page("alice").data == []  # the index entry has no record


def test_terminal_states_are_final(services):
    job = create(services)
    attempt = services.jobs.start(job["id"], "w1", LEASE_MS)
    assert services.jobs.fail(job["id"], attempt, "boom", "it broke")
    # A late or duplicate runner can change nothing any more.
    assert services.jobs.start(job["id"], "w2", LEASE_MS) is None
    assert not services.jobs.succeed(job["id"], attempt, {"model_id": "late"})
    assert not services.jobs.report_progress(job["id"], attempt, {"epoch": 9})
    assert not services.jobs.renew_lease(job["id"], attempt, LEASE_MS)
    with pytest.raises(ConflictError):
        services.jobs.cancel(job["id"])
    stored = services.jobs.get(job["id"])
    assert stored["status"] == JobStatus.FAILED
    assert stored["error"] == {"code": "boom", "message": "it broke"}


def test_a_runner_of_another_attempt_cannot_write(services):
    job = create(services)
    attempt = services.jobs.start(job["id"], "w1", LEASE_MS)
    assert not services.jobs.report_progress(job["id"], attempt + 1, {"epoch": 1})
    assert not services.jobs.succeed(job["id"], attempt + 1, {})
    assert not services.jobs.is_current(job["id"], attempt + 1)
    assert services.jobs.is_current(job["id"], attempt)
    assert services.jobs.get(job["id"])["status"] == JobStatus.RUNNING


def test_cancel_queued_and_running(services):
    queued = create(services)
    assert services.jobs.cancel(queued["id"])["status"] == JobStatus.CANCELLED
    assert services.jobs.start(queued["id"], "w", LEASE_MS) is None  # never starts
    running = create(services)
    attempt = services.jobs.start(running["id"], "w", LEASE_MS)
    services.jobs.cancel(running["id"])
    assert not services.jobs.report_progress(running["id"], attempt, {"epoch": 1})
    assert not services.jobs.is_current(running["id"], attempt)
    assert services.jobs.get(running["id"])["stopped_reason"] == "cancelled"


def test_quota_counts_the_jobs_waiting_for_a_worker_per_owner(services):
    jobs = [create(services, max_queued=2) for _ in range(2)]
    with pytest.raises(TooManyQueuedJobsError) as e:
        create(services, max_queued=2)
    assert e.value.status == 429 and int(e.value.headers["Retry-After"]) > 0
    create(services, owner="bob", max_queued=2)  # another owner's quota is their own
    services.jobs.cancel(jobs[0]["id"])  # an ended job frees its place
    create(services, max_queued=2)


def test_an_expired_lease_hands_the_job_to_the_next_attempt(services):
    job = create(services)
    attempt = services.jobs.start(job["id"], "w1", lease_ms=50)
    assert services.jobs.reap(job["id"], max_attempts=3) == ""  # still alive
    time.sleep(0.1)
    assert services.jobs.reap(job["id"], max_attempts=3) == "requeued"
    assert services.jobs.reap(job["id"], max_attempts=3) == ""  # only once
    stored = services.jobs.get(job["id"])
    assert stored["status"] == JobStatus.QUEUED and stored["attempt"] == attempt + 1
    # The first attempt is fenced off; the second one runs.
    assert not services.jobs.renew_lease(job["id"], attempt, LEASE_MS)
    assert services.jobs.start(job["id"], "w2", LEASE_MS) == attempt + 1
    assert services.jobs.renew_lease(job["id"], attempt + 1, LEASE_MS)
    assert not services.jobs.report_progress(job["id"], attempt, {"epoch": 3})


def test_a_renewed_lease_is_not_reaped(services):
    job = create(services)
    attempt = services.jobs.start(job["id"], "w1", lease_ms=200)
    for _ in range(4):
        time.sleep(0.1)
        assert services.jobs.renew_lease(job["id"], attempt, 200)
        assert services.jobs.reap(job["id"], max_attempts=3) == ""


def test_attempts_run_out(services):
    job = create(services)
    for attempt in (1, 2, 3):
        assert services.jobs.start(job["id"], f"w{attempt}", lease_ms=1) == attempt
        time.sleep(0.01)
        outcome = services.jobs.reap(job["id"], max_attempts=3)
        assert outcome == ("exhausted" if attempt == 3 else "requeued")
    stored = services.jobs.get(job["id"])
    assert stored["status"] == JobStatus.FAILED
    assert stored["error"]["code"] == "attempts_exhausted"
    assert "3 times" in stored["error"]["message"]
    assert services.jobs.scheduler.released("train") == {}  # its slot is free
    assert services.redis.scard(services.keys.owner_active("alice")) == 0


def test_an_epoch_is_reported_once_over_all_attempts(services):
    job = create(services)
    first = services.jobs.start(job["id"], "w1", lease_ms=1)
    for epoch in (1, 2, 3):
        assert services.jobs.add_event(job["id"], first, "epoch_end", {"epoch": epoch},
                                       epoch=epoch)
    time.sleep(0.01)
    services.jobs.reap(job["id"], max_attempts=3)
    second = services.jobs.start(job["id"], "w2", LEASE_MS)
    # The second attempt resumed from epoch 2's checkpoint: it redoes epoch 3, which is
    # not reported again.
    assert not services.jobs.add_event(job["id"], second, "epoch_end", {"epoch": 3}, epoch=3)
    assert services.jobs.add_event(job["id"], second, "epoch_end", {"epoch": 4}, epoch=4)
    events, _ = services.jobs.events(job["id"])
    assert [e["data"]["epoch"] for e in events if e["type"] == "epoch_end"] == [1, 2, 3, 4]


def test_a_deleted_job_refuses_its_runner_without_raising(services):
    """Its heartbeat thread and its reports see a refusal, as for a cancelled job, not
    NotFoundError (which killed the heartbeat thread with a traceback)."""
    job = create(services)
    attempt = services.jobs.start(job["id"], "w", LEASE_MS)
    services.jobs.cancel(job["id"])
    services.jobs.delete(services.jobs.get(job["id"]))
    assert services.jobs.renew_lease(job["id"], attempt, LEASE_MS) is False
    assert services.jobs.report_progress(job["id"], attempt, {"epoch": 1}) is False
    assert services.jobs.add_event(job["id"], attempt, "epoch_end", {"epoch": 1}) is False
    assert services.jobs.fail(job["id"], attempt, "x", "y") is False
    assert not services.jobs.is_current(job["id"], attempt)
    with pytest.raises(NotFoundError):
        services.jobs.cancel(job["id"])


def test_unknown_job(services):
    with pytest.raises(NotFoundError):
        services.jobs.get("job_nope")
    with pytest.raises(NotFoundError):
        services.jobs.start("job_nope", "w", LEASE_MS)


def test_events_record_every_status_change_and_page_with_a_cursor(services):
    job = create(services)
    attempt = services.jobs.start(job["id"], "w1", LEASE_MS)
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


def test_text_events_stop_at_their_cap_and_write_progress_with_them(services, monkeypatch):
    from shared.stores import jobs

    monkeypatch.setattr(jobs, "STREAMED_EVENT_CAP", 2)
    job = create(services, job_type=JobType.GENERATE, model_id="m")
    attempt = services.jobs.start(job["id"], "w1", LEASE_MS)
    sent = [services.jobs.add_event(job["id"], attempt, "text", {"n": n},
                                    progress={"epoch": 0, "step": n}, capped=True)
            for n in range(4)]
    assert sent == [True, True, False, False]
    # Past the cap the progress is still written, and an uncapped event still goes in.
    assert services.jobs.get(job["id"])["progress"] == {"epoch": 0, "step": 3}
    assert services.jobs.add_event(job["id"], attempt, "text", {"n": "end"})
    events, _ = services.jobs.events(job["id"])
    assert [e["data"].get("n") for e in events if e["type"] == "text"] == [0, 1, "end"]


def test_progress_events_go_with_the_records_progress_under_the_same_cap(services,
                                                                          monkeypatch):
    from shared.stores import jobs

    monkeypatch.setattr(jobs, "STREAMED_EVENT_CAP", 2)
    job = create(services)
    attempt = services.jobs.start(job["id"], "w1", LEASE_MS)
    for step in range(1, 4):
        progress = {"epoch": 1, "step": step}
        assert services.jobs.report_progress(job["id"], attempt, progress, {"loss": 2.0},
                                             event={**progress, "loss": 2.0})
    # Past the cap the record still moves on; the stream keeps its first two.
    assert services.jobs.get(job["id"])["progress"] == {"epoch": 1, "step": 3}
    events, _ = services.jobs.events(job["id"])
    assert [e["data"] for e in events if e["type"] == "progress"] == [
        {"epoch": 1, "step": 1, "loss": 2.0}, {"epoch": 1, "step": 2, "loss": 2.0}]
    services.jobs.cancel(job["id"], "alice")
    assert not services.jobs.report_progress(job["id"], attempt, {"epoch": 1, "step": 4},
                                             event={"epoch": 1, "step": 4})
    assert len(services.jobs.events(job["id"])[0]) == len(events) + 1  # the cancel's own


def test_non_finite_numbers_are_stored_as_null(services):
    job = create(services)
    attempt = services.jobs.start(job["id"], "w1", LEASE_MS)
    services.jobs.report_progress(job["id"], attempt, {"epoch": 1},
                                  {"loss": float("nan"), "val_loss": float("inf")})
    services.jobs.add_event(job["id"], attempt, "epoch_end", {"perplexity": float("inf")})
    assert services.jobs.get(job["id"])["metrics"] == {"loss": None, "val_loss": None}
    assert services.jobs.events(job["id"])[0][-1]["data"] == {"perplexity": None}


def test_a_job_no_worker_started_is_sent_again_at_doubling_waits(services):
    services.jobs.scheduler.worker_seen("w@host", ["train"], 1)
    job = create(services)
    assert services.jobs.scheduler.dispatch("train") == [job["id"]]  # released: sent now

    def sent(released_s_ago, resent_s_ago=None):
        """As if released, and last sent again, that long ago by Redis' clock."""
        seconds, micros = services.redis.time()
        now_ms = seconds * 1000 + micros // 1000
        services.redis.hset(services.keys.job(job["id"]), mapping={
            "enqueued_ms": now_ms - released_s_ago * 1000,
            "resent_ms": 0 if resent_s_ago is None else now_ms - resent_s_ago * 1000})

    def due():  # lost after a minute; an hour between messages at most
        return services.jobs.claim_resend(job["id"], 60_000, 3_600_000)

    assert not due()  # just sent
    sent(61)
    assert due()
    assert not due()  # another reaper: sent again just now
    sent(200, resent_s_ago=90)  # 110 s after its release: the next waits 110 s
    assert not due()
    sent(200, resent_s_ago=111)
    assert due()
    sent(36_000, resent_s_ago=3599)  # after 10 hours: an hour at most
    assert not due()
    sent(36_000, resent_s_ago=3601)
    assert due()
    services.jobs.start(job["id"], "w", LEASE_MS)
    sent(36_000, resent_s_ago=36_000)
    assert not due()  # a worker started it: its message was not lost


def test_a_second_delivery_of_a_running_job_does_not_start_it(services):
    job = create(services)
    assert services.jobs.start(job["id"], "w1", LEASE_MS) == 1
    assert services.jobs.start(job["id"], "w2", LEASE_MS) is None
    assert services.jobs.get(job["id"])["worker"] == "w1"
