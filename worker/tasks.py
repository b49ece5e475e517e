"""The Celery tasks, and the pieces a worker runs them in.

A task takes its job (start) and runs the work (worker/runs.py) inside a few small
pieces, listed in run_job outermost first:

    job_context      every log line names the job, owner and attempt (shared/runtime/logs.py)
    NextTurn         then: the freed slot to the next waiting job, the sweep's next step
                     (worker/next_turn.py)
    OutcomeRecorder  the end written once (success, failure, internal error), then metrics
                     and the webhook; the worker boundary that catches broadly
                     (worker/outcome.py)
    Lease            renewed by a heartbeat while the work runs, which first asks the run's
                     StallWatchdog whether a step ended lately (worker/lease.py, stall.py)

Dramatiq's middleware is the model: optional behaviour in small classes beside the task,
not threaded through the work. Its hooks (before and after processing a message) are
context managers here, with no registry to dispatch them: each piece's before and after
sit in one class, the work's exception passes through them innermost first, and one
`with` statement is the list. The worker's periodic pieces (the reaper, the retention
sweep, the webhook sender), each a thread of its own, start when the worker is ready
(start_periodic).
"""

import functools
import logging
import os
import time

from celery import signals

from shared.contracts.errors import NotFoundError
from shared.stores.jobs import JobType
from shared.runtime.logs import job_context
from shared.runtime.queue import QUEUES, TASK_GENERATE, TASK_TRAIN
from shared.service.retention import CHECK_S, sweep_when_due
from worker.lease import Lease
from worker.model_cache import ModelCache
from worker.next_turn import NextTurn, release_now
from worker.outcome import OutcomeRecorder
from worker.periodic import Periodic
from worker.reaper import Reaper
from worker.runs import model_loader, run_evaluation, run_generation, run_training
from worker.stall import watchdog_for
from worker.webhook_sender import WebhookSender

log = logging.getLogger(__name__)


def register_tasks(celery, svc):
    cache = ModelCache(model_loader(svc))  # lives as long as the worker process

    @celery.task(name=TASK_TRAIN, bind=True)
    def train(task, job_id):
        run_job(svc, job_id, run_training, worker_name(task))

    def short_job(svc, job, lease):
        # The generate queue's jobs: a sample, or an evaluation (shared/runtime/queue.py).
        run = run_evaluation if job["type"] == JobType.EVALUATE else run_generation
        return run(svc, job, lease, cache)

    @celery.task(name=TASK_GENERATE, bind=True)
    def generate(task, job_id):
        run_job(svc, job_id, short_job, worker_name(task))

    me = {}  # this worker's name, queues and reaper, once it is ready

    @signals.worker_ready.connect(weak=False)
    def start_periodic(sender, **kwargs):
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
        # The worker's periodic pieces, each a thread of its own (worker/periodic.py):
        me["reaper"].start()  # its slots count at once too (shared/stores/scheduler.py)
        Periodic("retention", CHECK_S,  # finished jobs past TEXTGEN_RETENTION_DAYS
                 functools.partial(sweep_when_due, svc, me["name"])).start()
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
    """Run `body(svc, job, lease)` as the job's attempt, if the job is queued. `body`
    returns the job fields to write on success, or None when the job stopped being this
    attempt's."""
    asked = time.monotonic()  # the lease lasts lease_s from here at least
    attempt = start(svc, job_id, worker)
    if attempt is None:
        return
    job = svc.jobs.get(job_id)
    with (job_context(job_id, job["owner"], attempt),
          NextTurn(svc, job),
          OutcomeRecorder(svc, job, attempt) as outcome,
          Lease(svc.jobs, job_id, attempt, svc.settings.lease_s, granted_at=asked,
                watchdog=watchdog_for(svc, job, attempt)) as lease):
        log.info("job %s: started (attempt %d) on %s", job_id, attempt, worker)
        outcome.fields = body(svc, job, lease)


def start(svc, job_id, worker):
    """queued -> running on `worker`: the attempt to run, or None (the message dropped)."""
    try:
        attempt = svc.jobs.start(job_id, worker, int(svc.settings.lease_s * 1000))
    except NotFoundError:
        log.warning("job %s: no such record; message dropped", job_id)
        return None
    if attempt is None:
        log.info("job %s: not queued (cancelled, or another delivery runs it); skipped",
                 job_id)
        release_now(svc, QUEUES)  # a job cancelled after its release freed its slot
    return attempt
