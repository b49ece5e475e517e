"""shared.service.retention: finished jobs past TEXTGEN_RETENTION_DAYS go, with their events and
checkpoints; active jobs, recent ones and models stay."""

from datetime import datetime, timedelta, UTC

from shared.stores.jobs import JobType
from shared.service.retention import SWEEP_INTERVAL_S, sweep_finished_jobs, sweep_when_due
from tests.api_helpers import registered_model


def test_old_finished_jobs_are_swept_with_their_events_and_checkpoints(services):
    def job():
        return services.jobs.create(JobType.TRAIN, {}, "alice", max_queued=100,
                                    corpus_id="c")["id"]

    finished, running, queued = job(), job(), job()
    attempt = services.jobs.start(finished, "w", 30_000)
    services.jobs.fail(finished, attempt, "boom", "it broke")
    services.artifacts.checkpoints(finished, 1).write_state({"epoch": 1})
    services.jobs.start(running, "w", 30_000)
    model = registered_model(services)  # its job succeeded just now

    now = datetime.now(UTC)
    assert sweep_finished_jobs(services, now=now) == 0  # nothing is 30 days old yet
    later = now + timedelta(days=31)
    assert sweep_finished_jobs(services, now=later) == 2  # the failed job, the model's job
    remaining = {j["id"] for j in services.jobs.page("alice").data}
    assert remaining == {running, queued}
    assert services.jobs.events(finished)[0] == []
    assert services.artifacts.checkpoints(finished, 1).read_state() is None
    assert services.models.get(model["id"])  # a model lives until it is deleted


def test_one_worker_an_interval_sweeps(services):
    assert sweep_when_due(services, "w1") == 0  # swept: nothing was old enough
    assert sweep_when_due(services, "w2") is None  # another worker, within the interval
    assert 0 < services.redis.ttl(services.keys.sweep_lock()) <= SWEEP_INTERVAL_S
