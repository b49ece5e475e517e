"""The Celery app both sides share: task names, queues, and broker settings.

The API sends tasks by name (`send_task`) through this app and never imports worker code;
the worker registers the real functions under the same names. Only job ids travel through
the broker: the spec, corpus and model stay in Redis and the artifact store.
"""

from celery import Celery

QUEUE_TRAIN = "train"  # long, CPU-heavy: one task per worker process
QUEUE_GENERATE = "generate"  # short sampling jobs
TASK_TRAIN = "textgen.train"
TASK_GENERATE = "textgen.generate"

# With Redis, an unacknowledged message is handed out again after the visibility timeout;
# with late acks a training run longer than that would be started twice. 7 days is longer
# than any training budget we accept (shared/specs.py caps max_seconds at 7 days).
_VISIBILITY_TIMEOUT_S = 7 * 24 * 3600


def make_celery(settings):
    app = Celery("textgen", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,  # results live in our job records, not in Celery's backend
        task_ignore_result=True,
        task_routes={TASK_TRAIN: {"queue": QUEUE_TRAIN},
                     TASK_GENERATE: {"queue": QUEUE_GENERATE}},
        task_acks_late=True,  # a task lost with its worker is delivered again
        worker_prefetch_multiplier=1,  # never hold a second training job behind a long one
        broker_transport_options={
            "visibility_timeout": _VISIBILITY_TIMEOUT_S,
            # Queues carry our key prefix too, so two deployments (or a test run) sharing
            # one Redis database never take each other's messages.
            "global_keyprefix": settings.redis_prefix,
        },
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


def enqueue(celery, task_name, job_id):
    celery.send_task(task_name, args=[job_id])
