"""The Celery app both sides share: task names, queues, and broker settings.

The API sends tasks by name (`send_task`) through this app and never imports worker code;
the worker registers the real functions under the same names. Only job ids travel through
the broker: the spec, corpus and model stay in Redis and the artifact store.
"""

import logging

from celery import Celery

from shared.runtime.redis_db import tls_options

log = logging.getLogger(__name__)

QUEUE_TRAIN = "train"  # long, CPU-heavy: one task per worker process
QUEUE_TRAIN_GPU = "train-gpu"  # training jobs that asked for a GPU: GPU workers only
QUEUE_GENERATE = "generate"  # short sampling jobs
QUEUES = (QUEUE_TRAIN, QUEUE_TRAIN_GPU, QUEUE_GENERATE)
TASK_TRAIN = "textgen.train"
TASK_GENERATE = "textgen.generate"  # runs every job of the generate queue, by its type
# Job types (shared/stores/jobs.py JobType) that are short and run on the generate queue.
SHORT_JOB_TYPES = ("generate", "evaluate")

# With Redis, an unacknowledged message is handed out again after the visibility timeout.
# We do not rely on it: a dead worker's job is handed on by its expired lease within a
# minute (worker/reaper.py). It stays longer than any training budget we accept (7 days,
# shared/contracts/specs.py) so that it never hands out a job that still runs; if it ever does, the
# job store's start step refuses a job that is not queued.
_VISIBILITY_TIMEOUT_S = 7 * 24 * 3600
_SOCKET_TIMEOUT_S = 5.0  # a broker call that hangs longer is an error, not a stall


def make_celery(settings):
    app = Celery("textgen", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,  # results live in our job records, not in Celery's backend
        task_ignore_result=True,
        task_routes={TASK_TRAIN: {"queue": QUEUE_TRAIN},
                     TASK_GENERATE: {"queue": QUEUE_GENERATE}},
        # Acknowledged after the task returns, so that with a prefetch of 1 a process holds
        # no second message while it runs a job. One whose worker dies stays unacked until
        # the visibility timeout; the job's lease hands the job on long before.
        task_acks_late=True,
        worker_prefetch_multiplier=1,  # never hold a second training job behind a long one
        broker_transport_options={
            "visibility_timeout": _VISIBILITY_TIMEOUT_S,
            # Queues carry our key prefix too, so two deployments (or a test run) sharing
            # one Redis database never take each other's messages.
            "global_keyprefix": settings.redis_prefix,
            "socket_timeout": _SOCKET_TIMEOUT_S,
            "socket_connect_timeout": _SOCKET_TIMEOUT_S,
        },
        broker_use_ssl=tls_options(settings.redis_url),  # rediss://: check the certificate
        broker_connection_retry_on_startup=True,
        # A worker whose Redis restarts reconnects by itself, however long it takes.
        broker_connection_max_retries=None,
        # Celery 5 default, stated: a lost broker connection does not abort the task that
        # runs; its lease (our Redis writes) decides whether its work still counts.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
    )
    return app


# Publishing to a Redis that is down must fail fast (the API answers 503), not retry for
# the default minute: one retry, a few seconds at most.
_PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5,
                  "interval_max": 1.0}


def queue_of(job):
    """The queue the job's type and resources name."""
    if job["type"] in SHORT_JOB_TYPES:
        return QUEUE_GENERATE
    gpu = (job.get("resources") or {}).get("accelerator") == "gpu"
    return QUEUE_TRAIN_GPU if gpu else QUEUE_TRAIN


def send(celery, job_id, queue):
    """Send a job's id to `queue`."""
    task = TASK_GENERATE if queue == QUEUE_GENERATE else TASK_TRAIN
    celery.send_task(task, args=[job_id], queue=queue, retry=True,
                     retry_policy=_PUBLISH_RETRY)


def enqueue(celery, job):
    """Send the job's id to its queue."""
    send(celery, job["id"], queue_of(job))


def send_released(celery, queue, job_ids):
    """Send the jobs the scheduler released to `queue` (shared/stores/scheduler.py). One the
    broker does not take stays released without a message, and a reaper sends it again
    once no worker started it for TEXTGEN_LOST_MESSAGE_S (worker/reaper.py)."""
    for job_id in job_ids:
        try:
            send(celery, job_id, queue)
        except Exception as e:  # noqa: BLE001 - kombu raises many kinds; all mean "not sent"
            log.warning("job %s: released, but the broker did not take it (%s); a reaper "
                        "sends it again", job_id, type(e).__name__)
