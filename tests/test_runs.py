"""What a run does when things go wrong, on real Redis and the real store, run in-process
the way a worker runs it (worker.tasks.run_job): a loss that is not a number, a generation
past its time limit, a broker that did not take a job."""

import dataclasses
import time

import numpy as np
import pytest

from shared.runtime.queue import enqueue, make_celery
from shared.runtime.redis_db import model_id_of
from shared.contracts.specs import resolve_train_spec
from tests.api_helpers import upload
from tests.conftest import client_of
from tests.test_end_to_end import TEXT, TINY_DEFAULT
from worker.model_files import save_model
from worker.reaper import Reaper
from worker.runs import run_generation, run_training
from worker.tasks import run_job
from worker.training import TrainHooks, train

pytestmark = pytest.mark.keras  # trains or samples Keras models in this process


def register(services, trained, spec, owner="alice"):
    """A model of `trained` registered as a training job does, under a job of its own."""
    job = services.jobs.create("train", spec.model_dump(), owner, max_queued=100,
                               corpus_id="cor_x")
    attempt = services.jobs.start(job["id"], "w", 30_000)
    model_id = model_id_of(job["id"])
    with services.artifacts.scratch_dir() as directory:
        save_model(directory, trained, spec, {"job_id": job["id"]})
        services.artifacts.publish_model(model_id, attempt, directory)
    record = {"id": model_id, "owner": owner, "attempt": attempt, "job_id": job["id"],
              "corpus_id": "cor_x", "created_at": "2026-11-28T00:00:00.000Z",
              "preset": "default", "config": spec.model_dump(), "vocab_size": trained.vocab.size,
              "alphabet": "".join(trained.vocab.tokens), "metrics": {}}
    assert services.jobs.succeed(job["id"], attempt, {"model_id": model_id}, model=record)
    return model_id


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    spec = resolve_train_spec("default", TINY_DEFAULT)
    return spec, train(spec, TEXT, tmp_path_factory.mktemp("ckpt"), TrainHooks())


def test_a_run_whose_loss_is_not_a_number_fails_and_registers_nothing(app, services, tiny):
    spec, trained = tiny
    broken = [np.full_like(w, np.nan) for w in trained.model.get_weights()]
    trained.model.set_weights(broken)  # continuing from these, every loss is NaN
    try:
        nan_model = register(services, trained, spec)
    finally:
        trained.model.set_weights([np.nan_to_num(w) for w in broken])
    client = client_of(app)
    job = client.post("/v1/train", json={"corpus_id": upload(client, TEXT)["id"],
                                         "init_from_model": nan_model,
                                         "training": {"epochs": 2}}).get_json()
    run_job(services, job["id"], run_training, "test-worker")
    done = services.jobs.get(job["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "training_diverged"
    assert "not a number" in done["error"]["message"]
    assert services.models.page("alice").data[0]["id"] == nan_model  # no second model
    assert services.artifacts.checkpoints(job["id"], 1).read_state() is None  # none good


def test_a_generation_past_its_time_limit_fails(app, services, settings, tiny):
    spec, trained = tiny
    model_id = register(services, trained, spec)
    job = client_of(app).post("/v1/generate", json={"model_id": model_id,
                                                    "length": 5000}).get_json()
    hurried = dataclasses.replace(services, settings=dataclasses.replace(
        settings, generation_max_s=1e-6))
    from worker.model_cache import ModelCache
    from worker.runs import model_loader

    cache = ModelCache(model_loader(services))
    run_job(hurried, job["id"], lambda svc, job, lease: run_generation(svc, job, lease, cache),
            "test-worker")
    done = services.jobs.get(job["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "time_limit"
    assert "TEXTGEN_GENERATION_MAX_S" in done["error"]["message"]


def test_a_job_the_broker_did_not_take_is_accepted_once_and_sent_later(settings, services):
    """Stored is accepted: the answer is a 202 (a 503 invited a retry that made a second
    job), a retry with the same key gets the same job, and a reaper sends it later."""
    from api import create_app
    from shared.stack.runner import free_port

    dead = make_celery(dataclasses.replace(
        settings, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    client = client_of(create_app(settings, celery=dead))
    corpus = upload(client)
    services.jobs.scheduler.worker_seen("w@host", ["train"], 1)  # a free slot: released now
    started = time.monotonic()
    request = {"json": {"corpus_id": corpus["id"]}, "headers": {"Idempotency-Key": "once"}}
    first = client.post("/v1/train", **request)
    assert first.status_code == 202, first.get_json()
    assert time.monotonic() - started < 10
    again = client.post("/v1/train", **request)
    assert again.status_code == 202 and again.get_json()["id"] == first.get_json()["id"]
    job_id = first.get_json()["id"]
    assert [job["id"] for job in services.jobs.page("alice").data] == [job_id]
    assert services.jobs.get(job_id)["status"] == "queued"  # stored, and not lost:
    reaper = Reaper(dataclasses.replace(services, settings=dataclasses.replace(
        settings, lost_message_s=0.01)))
    time.sleep(0.02)
    assert reaper.reap_once() == [job_id]
    assert services.jobs.get(job_id)["resent_ms"] > 0
    assert services.redis.llen(settings.redis_prefix + "train") == 1  # on the broker now


def test_a_job_sent_again_runs_once_whichever_message_comes_first(settings, services):
    """A released job that no worker started is sent again, though its first message may
    only have waited: a worker takes both, and the second finds the job started."""
    services.jobs.scheduler.worker_seen("w@host", ["generate"], 1)
    job = services.jobs.create("generate", {}, "alice", max_queued=100, model_id="m")
    assert services.jobs.scheduler.dispatch("generate") == [job["id"]]
    enqueue(services.celery, job)
    reaper = Reaper(dataclasses.replace(services, settings=dataclasses.replace(
        settings, lost_message_s=0.01)))
    time.sleep(0.02)
    assert reaper.reap_once() == [job["id"]]
    runs = []

    def body(svc, job, lease):
        runs.append(lease.attempt)
        return {"result": {"samples": []}}

    for _ in range(2):  # each message delivered
        run_job(services, job["id"], body, "test-worker")
    assert runs == [1]
    assert services.jobs.get(job["id"])["status"] == "succeeded"
    assert reaper.reap_once() == []  # ended: it frees its slot, and nothing is sent
    assert services.jobs.scheduler.released("generate") == {}


def test_an_unexpected_error_fails_the_job_with_a_stable_code_and_frees_its_slot(services,
                                                                                caplog):
    services.jobs.scheduler.worker_seen("w@host", ["generate"], 1)
    job = services.jobs.create("generate", {}, "alice", max_queued=100, model_id="m")
    assert services.jobs.scheduler.dispatch("generate") == [job["id"]]

    def body(svc, job, lease):
        raise OSError("cannot read /srv/secret/model.keras")

    run_job(services, job["id"], body, "test-worker")
    failed = services.jobs.get(job["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "internal_error"
    assert "/srv" not in failed["error"]["message"]
    assert "/srv/secret" in caplog.text and "Traceback" in caplog.text  # the log has it
    assert services.jobs.scheduler.released("generate") == {}


def test_progress_reports_send_a_progress_event_twice_a_second_at_most(services):
    from worker.runs import PROGRESS_EVENT_S, ProgressReporter

    spec = resolve_train_spec("default", {})
    job = services.jobs.create("train", spec.model_dump(), "alice", max_queued=100,
                               corpus_id="cor_x")
    reporter = ProgressReporter(services, job, services.jobs.start(job["id"], "w", 30_000),
                                spec)

    def report(step):
        reporter.on_progress({"epoch": 1, "epochs": 1, "step": step, "steps": 100},
                             {"loss": 3.0})

    for step in range(1, 11):  # ten reports at once: the record takes each, the stream one
        report(step)
    assert services.jobs.get(job["id"])["progress"]["step"] == 10
    time.sleep(PROGRESS_EVENT_S)
    report(11)
    sent = [e["data"] for e in services.jobs.events(job["id"])[0] if e["type"] == "progress"]
    assert [(data["step"], data["loss"]) for data in sent] == [(1, 3.0), (11, 3.0)]
