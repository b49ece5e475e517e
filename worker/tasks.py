"""The Celery tasks: take the job, hold its lease while it runs, record the outcome.

Kept thin on purpose: the work is in worker/runs.py, the lease in worker/lease.py. This is
the one place that catches broadly, so that no job is ever left running after an error.
"""

import functools
import logging
import os
import time

import redis
from celery import signals

from shared.errors import InternalError, NotFoundError, TextgenError
from shared.jobs import JobStatus, JobType
from shared.logs import job_context
from shared.queue import QUEUES, TASK_GENERATE, TASK_TRAIN, queue_of
from shared.retention import CHECK_S, sweep_when_due
from shared.sweep_runner import advance as advance_sweep
from worker.lease import Lease
from worker.model_cache import ModelCache
from worker.periodic import Periodic
from worker.reaper import Reaper, release_waiting
from worker.runs import model_loader, run_evaluation, run_generation, run_training
from worker.stall import StallWatchdog, give_up_and_exit
from worker.webhook_sender import WebhookSender

log = logging.getLogger(__name__)

UNEXPECTED_MESSAGE = ("the worker hit an unexpected error; its details are in the worker's "
                      "log (job {job_id}, attempt {attempt}). Retrying may help; if it "
                      "happens again, tell the operator")


def register_tasks(celery, svc):
    cache = ModelCache(model_loader(svc))  # lives as long as the worker process

    @celery.task(name=TASK_TRAIN, bind=True)
    def train(task, job_id):
        run_job(svc, job_id, run_training, worker_name(task))

    def short_job(svc, job, lease):
        # The generate queue's jobs: a sample, or an evaluation (shared/queue.py).
        run = run_evaluation if job["type"] == JobType.EVALUATE else run_generation
        return run(svc, job, lease, cache)

    @celery.task(name=TASK_GENERATE, bind=True)
    def generate(task, job_id):
        run_job(svc, job_id, short_job, worker_name(task))

    me = {}  # this worker's name, queues and reaper, once it is ready

    @signals.worker_ready.connect(weak=False)
    def start_reaper(sender, **kwargs):
        # sender: the worker's consumer; it knows the node name, the queues it reads and
        # (its controller) how many tasks it runs at once.
        me.update(name=f"{sender.hostname}/{os.getpid()}",
                  queues=[queue.name for queue in sender.task_consumer.queues])
        # A first heartbeat now: health counts the worker from the moment it listens, not
        # from the reaper's first pass, which reports it from then on.
        svc.metrics.worker_alive(me["name"], me["queues"])
        concurrency = getattr(sender.controller, "concurrency", None) or 1
        me["reaper"] = Reaper(svc, me["name"], me["queues"], node=sender.hostname,
                              concurrency=concurrency)
        me["reaper"].start()  # its slots count at once too (shared/scheduler.py)
        Periodic("retention", CHECK_S, functools.partial(sweep_when_due, svc, me["name"])
                 ).start()
        WebhookSender(svc.webhooks, svc.settings.webhook_allow_hosts).start()

    @signals.worker_shutdown.connect(weak=False)
    def report_gone(**kwargs):
        if me:  # a clean stop: health stops counting the worker, and its slots go, at once
            svc.metrics.worker_gone(me["name"], me["queues"])
            me["reaper"].stop()

    return train, generate


def worker_name(task):
    """Celery's node name (unique per worker) and the process id: two workers on one host
    share the host name, never this."""
    return f"{task.request.hostname or 'worker'}/{os.getpid()}"


def run_job(svc, job_id, body, worker):
    """Move the job to running, call `body(svc, job, lease)` while the lease is held,
    record its outcome. `body` returns a dict of job fields to write on success, or None
    when the job stopped being this attempt's."""
    asked = time.monotonic()  # the lease lasts lease_s from here at least
    try:
        attempt = svc.jobs.start(job_id, worker, int(svc.settings.lease_s * 1000))
    except NotFoundError:
        log.warning("job %s: no such record; message dropped", job_id)
        return
    if attempt is None:
        log.info("job %s: not queued (cancelled, or another delivery runs it); skipped",
                 job_id)
        _next_turn(svc, QUEUES)  # a job cancelled after its release freed its slot
        return
    job = svc.jobs.get(job_id)
    try:
        with job_context(job_id, job["owner"], attempt):
            _run_attempt(svc, job, attempt, body, worker, asked)
    finally:
        _next_turn(svc, [queue_of(job)])
        if job.get("sweep_id"):
            _next_trial(svc, job["sweep_id"])


def _next_turn(svc, queues):
    """This worker's slot is free: the next turn now, not at the next reaper pass."""
    try:
        release_waiting(svc, queues)
    except redis.RedisError as e:
        log.warning("releasing the next job failed (%s); a reaper does it", type(e).__name__)


def _next_trial(svc, sweep_id):
    """A trial ended (or its attempt did): the sweep's next trial now, not at the next
    reaper pass."""
    try:
        advance_sweep(svc, sweep_id)
    except redis.RedisError as e:
        log.warning("advancing sweep %s failed (%s); a reaper does it", sweep_id,
                    type(e).__name__)


def _run_attempt(svc, job, attempt, body, worker, leased_at):
    job_id = job["id"]
    log.info("job %s: started (attempt %d) on %s", job_id, attempt, worker)
    started = time.monotonic()
    ended = None  # the status this attempt wrote, if it ended the job
    # Pinged by the training loop's steps (worker/stall.py); a stuck one ends the process.
    watchdog = StallWatchdog(svc.settings.stall_s, on_stall=functools.partial(
        give_up_and_exit, Reaper(svc), job, attempt))
    with Lease(svc.jobs, job_id, attempt, svc.settings.lease_s, watchdog=watchdog,
               granted_at=leased_at) as lease:
        try:
            outcome = body(svc, job, lease)
        except TextgenError as e:
            log.warning("job %s: failed: %s: %s", job_id, e.code, e.message)
            if svc.jobs.fail(job_id, attempt, e.code, e.message):
                ended = JobStatus.FAILED
        except Exception:  # the worker boundary: record it, never leave the job running
            log.error("job %s: failed unexpectedly", job_id, exc_info=True)
            # The user sees a stable code and this message; the exception's own text may
            # hold paths, hosts or secrets, so it stays in the worker's log with its trace.
            if svc.jobs.fail(job_id, attempt, InternalError.code, UNEXPECTED_MESSAGE.format(
                    job_id=job_id, attempt=attempt)):
                ended = JobStatus.FAILED
        else:
            # Success and the model's registration are one fenced step: a job cancelled
            # or handed on meanwhile registers nothing.
            if outcome is not None and svc.jobs.succeed(job_id, attempt, **outcome):
                log.info("job %s: succeeded", job_id)
                ended = JobStatus.SUCCEEDED
            elif outcome is not None:
                log.info("job %s: ended meanwhile (cancelled?); its result is dropped", job_id)
                if outcome.get("model"):
                    svc.artifacts.discard_model_attempt(outcome["model"]["id"], attempt)
                    svc.storage.release(job["owner"], f"model:{outcome['model']['id']}")
                elif job["type"] == JobType.GENERATE:
                    svc.artifacts.discard_result(job_id, attempt)
    if ended is not None:
        svc.metrics.job_ended(job["type"], ended.value, time.monotonic() - started)
        svc.webhooks.notify(svc.jobs.get(job_id), "completed")
    elif _deleted(svc, job_id):
        # Deleted while this attempt ran: the API removed the job's files, and files this
        # attempt wrote after that (a commit under way when the job was deleted) go too.
        log.info("job %s: deleted while attempt %d ran; removing what it wrote", job_id,
                 attempt)
        svc.artifacts.delete_job_files(job_id)
        svc.storage.release(job["owner"], f"checkpoints:{job_id}")  # what it counted


def _deleted(svc, job_id):
    try:
        svc.jobs.get(job_id)
    except NotFoundError:
        return True
    return False
