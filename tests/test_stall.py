"""A stuck step (issue 15): the watchdog's rule, the lease that gives a stuck run up, the
reap step that records why, and a real worker whose training step hangs."""

import secrets
import time

import pytest

from client.api_client import Client
from shared.stack.runner import LocalStack, free_port
from shared.stores.jobs import STALLED, JobType
from tests.conftest import TEST_REDIS_URL, TOKENS, delete_prefix
from tests.faults import FAST_LEASES, SLOW_EPOCHS, TEXT, all_events, statuses, wait_for
from worker.lease import Lease
from worker.reaper import Reaper
from worker.stall import EXIT_STALLED, StallWatchdog


class Clock:
    """A clock the test moves: the watchdog's rule without waiting minutes."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_default_limit_is_ten_times_the_slowest_step_and_at_least_five_minutes():
    clock = Clock()
    watchdog = StallWatchdog(clock=clock)
    clock.now += 3600
    assert watchdog.stalled_for() is None  # training has not started: no step to wait for
    watchdog.start()
    clock.now += 299
    assert watchdog.stalled_for() is None
    clock.now += 2
    assert watchdog.stalled_for() == pytest.approx(301)
    watchdog.step_ended()  # a 301 s step: from now on the limit is 3010 s
    clock.now += 40
    watchdog.step_ended()
    assert watchdog.limit_s == pytest.approx(3010)
    clock.now += 3000
    assert watchdog.stalled_for() is None
    clock.now += 11
    assert watchdog.stalled_for() == pytest.approx(3011)


def test_a_run_is_watched_from_the_start_to_the_end_of_training_only():
    clock = Clock()
    watchdog = StallWatchdog(limit_s=2, clock=clock)
    watchdog.start()
    watchdog.step_ended()
    clock.now += 1
    watchdog.step_ended()
    watchdog.stop()  # then the model is saved and published: no steps, however long
    clock.now += 3600
    assert watchdog.stalled_for() is None


def test_a_set_limit_holds_from_the_second_step_whatever_the_steps_took():
    clock = Clock()
    watchdog = StallWatchdog(limit_s=2, clock=clock)
    watchdog.start()
    clock.now += 60
    assert watchdog.stalled_for() is None  # the first step compiles: it gets 5 minutes
    watchdog.step_ended()
    assert watchdog.limit_s == 2
    clock.now += 2.5
    assert watchdog.stalled_for() == pytest.approx(2.5)
    assert StallWatchdog(limit_s=900).limit_s == 900  # a first step gets more if set so


def running_job(services, lease_ms=60_000):
    job = services.jobs.create(JobType.TRAIN, {}, "alice", max_queued=100, corpus_id="c")
    attempt = services.jobs.start(job["id"], "w1", lease_ms)
    return services.jobs.get(job["id"]), attempt


def test_a_stuck_run_is_given_up_by_its_heartbeat_and_its_lease_not_renewed(services):
    job, attempt = running_job(services, lease_ms=600)
    stalls = []
    watchdog = StallWatchdog(limit_s=0.3, on_stall=lambda *args: stalls.append(args))
    with Lease(services.jobs, job["id"], attempt, lease_s=0.6, watchdog=watchdog) as lease:
        watchdog.start()
        for _ in range(5):  # steps that end: the lease is renewed
            time.sleep(0.1)
            watchdog.step_ended()
        assert lease.still_ours()
        assert lease.lost.wait(2)  # then a step that never ends
    [(stalled_s, limit_s)] = stalls
    assert stalled_s > 0.3 and limit_s == 0.3
    time.sleep(0.7)  # renewed no more: its lease runs out
    assert services.jobs.reap(job["id"], max_attempts=3) == "requeued"


def test_an_attempt_that_gives_up_is_handed_on_and_the_last_fails_as_stalled(services):
    reaper = Reaper(services)  # max_attempts 3
    job, attempt = running_job(services)
    given_up = {"attempt": attempt, "code": STALLED, "message": "no step for 9 s"}
    assert reaper.reap_running(job, given_up) == "requeued"  # its lease was still alive
    assert services.jobs.reap(job["id"], 3, given_up) == ""  # attempt 1 is not current
    queued = all_status_events(services, job["id"])[-1]
    assert queued == {"status": "queued", "attempt": 2, "code": STALLED,
                      "reason": "no step for 9 s"}
    for attempt in (2, 3):
        assert services.jobs.start(job["id"], "w2", 60_000) == attempt
        job = services.jobs.get(job["id"])
        outcome = reaper.reap_running(job, {**given_up, "attempt": attempt})
    assert outcome == "exhausted"
    failed = services.jobs.get(job["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == STALLED
    assert failed["error"]["message"].endswith("the last attempt ended: no step for 9 s")
    # Each attempt given up is kept with why it ended (GET /v1/jobs/<id> shows `attempts`).
    assert [(a["attempt"], a["outcome"], a["reason"]) for a in failed["attempts"]] == [
        (n, "lost", "no step for 9 s") for n in (1, 2, 3)]


def test_a_job_whose_last_lease_expired_still_fails_as_attempts_exhausted(services):
    job, attempt = running_job(services, lease_ms=10)
    time.sleep(0.05)
    assert services.jobs.reap(job["id"], max_attempts=1) == "exhausted"
    assert services.jobs.get(job["id"])["error"]["code"] == "attempts_exhausted"


def all_status_events(services, job_id):
    events, _ = services.jobs.events(job_id)
    return [e["data"] for e in events if e["type"] == "status"]


# --- a real worker whose training step hangs ---------------------------------------------


@pytest.fixture
def stuck_stack(tmp_path):
    """The local stack with two training workers whose step 10 of epoch 2 never ends."""
    prefix = f"test-stall-{secrets.token_hex(4)}:"
    env = {**FAST_LEASES, "TEXTGEN_REDIS_PREFIX": prefix, "TEXTGEN_STALL_S": "2",
           "TEXTGEN_MAX_ATTEMPTS": "2", "TEXTGEN_TRAIN_CALLBACKS": "tests.stuck_step:StuckStep",
           "TEXTGEN_API_TOKENS": f"alice:{TOKENS['alice']}"}
    try:
        with LocalStack(tmp_path / "data", port=free_port(), redis_url=TEST_REDIS_URL, env=env,
                        workers={"train": 2, "generate": 1}) as stack:
            yield stack
    finally:
        delete_prefix(TEST_REDIS_URL, prefix)


@pytest.mark.stack  # stuck_stack
@pytest.mark.slow
def test_a_stuck_step_is_given_up_resumed_elsewhere_and_then_fails_as_stalled(stuck_stack):
    """Each attempt hangs in epoch 2: the first is given up after TEXTGEN_STALL_S and its
    worker exits; the other worker resumes from epoch 1's checkpoint, hangs too, and with
    TEXTGEN_MAX_ATTEMPTS=2 the job fails as `stalled`."""
    api = Client(stuck_stack.url, token=TOKENS["alice"])
    corpus_path = stuck_stack.data_dir / "night.txt"
    corpus_path.write_text(TEXT * 40)
    job = api.train(api.upload_corpus(corpus_path)["id"], "default", **SLOW_EPOCHS)
    done = api.wait(job["id"], poll_s=0.2, timeout_s=120)
    assert done["status"] == "failed" and done["error"]["code"] == STALLED, done["error"]
    assert "no training step ended for" in done["error"]["message"]

    events = all_events(api, job["id"])
    assert statuses(events) == [("queued", None), ("running", None), ("queued", 2),
                                ("running", None), ("failed", None)]
    [first_run, second_run] = [e["data"]["worker"] for e in events
                               if e["type"] == "status" and e["data"]["status"] == "running"]
    assert first_run.split("@")[0] != second_run.split("@")[0]  # resumed elsewhere
    [requeued] = [e["data"] for e in events if e["data"].get("status") == "queued"
                  and e["data"].get("attempt") == 2]
    assert requeued["code"] == STALLED
    [resumed] = [e["data"] for e in events if e["type"] == "resumed"]
    assert resumed == {"attempt": 2, "epoch": 1}  # from epoch 1's checkpoint
    # Both workers exited with the stall's code, and the stack's supervisor restarts them.
    for name in ("worker-train", "worker-train-2"):
        log = stuck_stack.log_dir / f"{name}.log"
        wait_for(lambda: f"exited with code {EXIT_STALLED}; restarting" in log.read_text(),
                 10, f"{name} to exit")
