"""System: the health endpoint (Redis reachable, workers answering on each queue)."""

import logging

import redis
from flask import Blueprint

from api.context import services
from shared.queue import QUEUE_GENERATE, QUEUE_TRAIN

log = logging.getLogger(__name__)

bp = Blueprint("system", __name__, url_prefix="/v1")

# How long to wait for workers to answer the broadcast; a busy solo worker may not.
_INSPECT_TIMEOUT_S = 1.0


@bp.get("/health")
def health():
    svc = services()
    try:
        svc.redis.ping()
    except redis.RedisError as e:
        log.warning("health: redis unreachable: %s", e)
        return {"status": "unavailable", "redis": False,
                "workers": {QUEUE_TRAIN: 0, QUEUE_GENERATE: 0}}, 503
    workers = {QUEUE_TRAIN: 0, QUEUE_GENERATE: 0}
    replies = svc.celery.control.inspect(timeout=_INSPECT_TIMEOUT_S).active_queues() or {}
    for queues in replies.values():
        for queue in queues:
            if queue["name"] in workers:
                workers[queue["name"]] += 1
    status = "ok" if all(workers.values()) else "degraded"
    return {"status": status, "redis": True, "workers": workers}
