"""worker.lease and worker.reaper on real Redis, without worker processes."""

import dataclasses
import time

import pytest

from shared.stack.runner import free_port
from shared.stores.jobs import JobType
from shared.runtime.queue import QUEUES
from shared.runtime.services import Services
from worker.lease import Lease
from worker.reaper import Reaper


def running_job(services, lease_ms=60_000):
    job = services.jobs.create(JobType.TRAIN, {}, "alice", max_queued=100, corpus_id="c")
    attempt = services.jobs.start(job["id"], "w1", lease_ms)
    return job["id"], attempt


def test_a_cancel_is_seen_at_the_next_step_not_the_next_heartbeat(services):
    job_id, attempt = running_job(services)
    with Lease(services.jobs, job_id, attempt, lease_s=60) as lease:  # beats every 10 s
        assert lease.still_ours()
        services.jobs.cancel(job_id)
        assert not lease.still_ours()
        assert lease.lost.is_set()


def test_the_heartbeat_keeps_the_lease_alive(services):
    job_id, attempt = running_job(services, lease_ms=600)
    with Lease(services.jobs, job_id, attempt, lease_s=0.6) as lease:
        time.sleep(1.5)
        assert services.jobs.reap(job_id, max_attempts=3) == ""
        assert lease.still_ours()
    time.sleep(0.8)  # no more beats: it expires
    assert services.jobs.reap(job_id, max_attempts=3) == "requeued"


def test_a_lease_handed_on_is_lost_at_the_next_beat(services):
    job_id, attempt = running_job(services, lease_ms=100)
    time.sleep(0.2)
    services.jobs.reap(job_id, max_attempts=3)
    with Lease(services.jobs, job_id, attempt, lease_s=0.3) as lease:
        assert lease.lost.wait(2)


def test_the_reaper_requeues_expired_jobs_and_resends_jobs_no_worker_started(services,
                                                                             settings):
    svc = dataclasses.replace(services, settings=dataclasses.replace(
        settings, lost_message_s=0.5))
    reaper = Reaper(svc, "w/1", ["train", "generate"], node="w", concurrency=4)
    expired, _ = running_job(services, lease_ms=50)
    alive, _ = running_job(services)
    # Released, and no worker started it (its message was lost, or waits: the same to the
    # reaper), and one still waiting for its turn.
    released = services.jobs.create(JobType.GENERATE, {}, "alice", max_queued=100,
                                    model_id="m")
    services.jobs.scheduler.worker_seen("w", ["train", "generate"], 4)
    assert services.jobs.scheduler.dispatch("generate") == [released["id"]]
    waiting = services.jobs.create(JobType.TRAIN, {}, "bob", max_queued=100, corpus_id="c")
    time.sleep(0.6)
    assert sorted(reaper.reap_once()) == sorted([expired, released["id"]])
    assert services.jobs.get(expired)["attempt"] == 2
    assert services.jobs.get(alive)["status"] == "running"
    assert services.jobs.get(released["id"])["resent_ms"] > 0  # when, for the next pass
    # The waiting job took a free train slot in the same pass.
    assert waiting["id"] in services.jobs.scheduler.released("train")
    assert reaper.reap_once() == []  # nothing new: nothing sent twice


def test_a_lease_that_cannot_be_renewed_for_lease_s_is_presumed_lost(settings):
    """Redis unreachable (this host cut off): the run goes on while the lease surely holds,
    and stops once it may have expired and been handed on, though nobody can say so."""
    unreachable = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    jobs = Services.from_settings(unreachable).jobs
    with Lease(jobs, "job_0123456789abcdef01234567", 1, lease_s=0.6) as lease:
        assert lease.still_ours()  # Redis cannot say, and the lease cannot have expired
        assert lease.lost.wait(2)
        assert not lease.still_ours()


@pytest.mark.subprocess  # a redis-server of its own
def test_a_reaper_pass_reads_the_jobs_holding_slots_not_the_backlog(settings, tmp_path):
    from tests.faults import RedisProcess

    server = RedisProcess(tmp_path / "redis").start()
    try:
        services = Services.from_settings(dataclasses.replace(settings, redis_url=server.url))
        backlog = [services.jobs.create(JobType.GENERATE, {}, f"owner{i % 20}",
                                        max_queued=1000, model_id="m")["id"]
                   for i in range(2000)]
        reaper = Reaper(services, "w/1", ["generate"], node="w", concurrency=2)
        reaper.reap_once()  # two released: the oldest jobs of the first two owners
        services.redis.config_resetstat()
        reaper.reap_once()
        reads = services.redis.info("commandstats")["cmdstat_hgetall"]["calls"]
        # Each queue's released set, and the two released jobs' records: none of the
        # 1,998 waiting (the reaper used to read every queued job's record every pass).
        assert reads == len(QUEUES) + 2
        assert sorted(services.jobs.scheduler.released("generate")) == sorted(backlog[:2])
    finally:
        server.stop()
