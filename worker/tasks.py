"""The Celery tasks: take the job, run it, record the outcome.

Kept thin on purpose: the work is in worker/runs.py. This is the one place that catches
broadly, so that no job is ever left running after an error.
"""

import functools
import logging
import socket

from shared.errors import NotFoundError, TextgenError
from shared.queue import TASK_GENERATE, TASK_TRAIN
from worker.model_cache import ModelCache
from worker.runs import model_loader, run_generation, run_training

log = logging.getLogger(__name__)


def register_tasks(celery, svc):
    cache = ModelCache(model_loader(svc))  # lives as long as the worker process

    @celery.task(name=TASK_TRAIN)
    def train(job_id):
        run_job(svc, job_id, run_training)

    @celery.task(name=TASK_GENERATE)
    def generate(job_id):
        run_job(svc, job_id, functools.partial(run_generation, cache=cache))

    return train, generate


def run_job(svc, job_id, body):
    """Move the job to running, call `body(svc, job, attempt)`, record success or failure."""
    worker_name = socket.gethostname()
    try:
        attempt = svc.jobs.start(job_id, worker_name)
    except NotFoundError:
        log.warning("job %s: no such record; message dropped", job_id)
        return
    if attempt is None:
        log.info("job %s: not queued any more (cancelled or already taken); skipped", job_id)
        return
    log.info("job %s: started (attempt %d)", job_id, attempt)
    try:
        outcome = body(svc, svc.jobs.get(job_id), attempt)
    except TextgenError as e:
        log.warning("job %s: failed: %s: %s", job_id, e.code, e.message)
        svc.jobs.fail(job_id, attempt, e.code, e.message)
    except Exception as e:  # the worker boundary: record it, never leave the job running
        log.error("job %s: failed unexpectedly", job_id, exc_info=True)
        svc.jobs.fail(job_id, attempt, "internal_error", f"{type(e).__name__}: {e}")
    else:
        if outcome is not None:
            result, metrics = outcome
            svc.jobs.succeed(job_id, attempt, result, metrics)
            log.info("job %s: succeeded", job_id)
