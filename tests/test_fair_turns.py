"""Fair turns on real processes: a backlog of one owner never delays another's job, and no
owner runs more than TEXTGEN_MAX_RUNNING_PER_OWNER jobs of a queue at once, however many
workers are free (shared/stores/scheduler.py, docs/capacity.md)."""

import pytest

from client.api_client import Client
from shared.stack.runner import LocalStack, free_port
from tests.conftest import TEST_REDIS_URL, TOKENS, delete_prefix
from tests.faults import wait_for

pytestmark = pytest.mark.stack  # a stack of its own, or the session's

TEXT = ("It was on a dreary night of November that I beheld the accomplishment of my toils.\n"
        "With an anxiety that almost amounted to agony, I collected the instruments of life.\n"
        ) * 30
# One short epoch of the smallest model: a second or two a job.
TINY = {"model": {"units": 8, "layers": 1, "embedding_dim": 8},
        "training": {"epochs": 1, "seq_length": 16, "batch_size": 64, "seed": 1}}


def upload(api, tmp_path):
    path = tmp_path / "night.txt"
    path.write_text(TEXT)
    return api.upload_corpus(path)


def test_one_owners_backlog_does_not_delay_anothers_job(stack, tmp_path):
    """The issue's case on the shared stack (one training worker): A queues 50 jobs, then
    B queues 1; B's is the next job to start."""
    a, b = (Client(stack.url, token=TOKENS[owner]) for owner in ("alice", "bob"))
    corpus_a, corpus_b = upload(a, tmp_path), upload(b, tmp_path)
    backlog = [a.train(corpus_a["id"], "default", **TINY)["id"] for _ in range(50)]
    try:
        wait_for(lambda: any(job["status"] != "queued" for job in a.jobs(type="train",
                                                                          page_size=200)
                             if job["id"] in backlog), 60, "A's backlog to start")
        mine = b.train(corpus_b["id"], "default", **TINY)
        started = wait_for(lambda: b.job(mine["id"])["started_at"], 60, "B's job to start")
        # Every job of A's that started after B queued started after B's.
        a_jobs = [job for job in a.jobs(type="train", page_size=200) if job["id"] in backlog]
        overtaking = [job["id"] for job in a_jobs if job["started_at"]
                      and mine["created_at"] <= job["started_at"] < started]
        assert overtaking == []
        assert sum(job["status"] == "queued" for job in a_jobs) >= 45  # still a backlog
    finally:
        for job_id in backlog:
            if a.job(job_id)["status"] in ("queued", "running"):
                a.cancel(job_id)


@pytest.fixture(scope="module")
def capped_stack(tmp_path_factory):
    """Two training workers; one running job per owner and queue; every training job ends
    after 2 s unless it asks for less."""
    prefix = f"test-capped-{free_port()}:"
    env = {"TEXTGEN_REDIS_PREFIX": prefix, "TEXTGEN_PROGRESS_INTERVAL_S": "0.2",
           "TEXTGEN_MAX_RUNNING_PER_OWNER": "1", "TEXTGEN_MAX_TRAIN_SECONDS": "2",
           "TEXTGEN_API_TOKENS": ",".join(f"{name}:{token}" for name, token in TOKENS.items())}
    with LocalStack(tmp_path_factory.mktemp("capped"), port=free_port(),
                    redis_url=TEST_REDIS_URL, env=env,
                    workers={"train": 2, "generate": 1}) as running:
        yield running
    delete_prefix(TEST_REDIS_URL, prefix)


def test_an_owner_runs_one_job_at_a_time_while_another_uses_the_second_worker(
        capped_stack, tmp_path):
    a, b = (Client(capped_stack.url, token=TOKENS[owner]) for owner in ("alice", "bob"))
    corpus_a, corpus_b = upload(a, tmp_path), upload(b, tmp_path)
    # Jobs that would train for a long time: the operator's ceiling ends each after 2 s.
    endless = {**TINY, "training": {**TINY["training"], "epochs": 10_000}}
    mine = [a.train(corpus_a["id"], "default", **endless) for _ in range(2)]
    theirs = b.train(corpus_b["id"], "default", **endless)
    assert all(job["spec"]["training"]["max_seconds"] == 2.0 for job in mine)
    first, second, other = (a.wait(mine[0]["id"], poll_s=0.2, timeout_s=120),
                            a.wait(mine[1]["id"], poll_s=0.2, timeout_s=120),
                            b.wait(theirs["id"], poll_s=0.2, timeout_s=120))
    assert {job["stopped_reason"] for job in (first, second, other)} == {"time_limit"}
    # A's two jobs ran one after the other, though a worker was free: B's job ran beside
    # A's first on the other worker.
    assert first["finished_at"] <= second["started_at"]
    assert other["started_at"] < first["finished_at"]
