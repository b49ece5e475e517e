"""System: the health endpoint (Redis reachable, workers answering on each queue)."""

import logging

import redis
from flask import Blueprint

from api.context import services
from api.openapi import operation
from api.responses import respond
from shared.queue import QUEUE_GENERATE, QUEUE_TRAIN
from shared.schemas import Health

log = logging.getLogger(__name__)

bp = Blueprint("system", __name__, url_prefix="/v1")

# How long to wait for workers to answer the broadcast; a busy solo worker may not.
_INSPECT_TIMEOUT_S = 1.0


@bp.get("/health")
@operation("Redis reachable, and how many workers answer on each queue",
           {200: Health, 503: (Health, "Redis is unreachable")}, public=True)
def health():
    svc = services()
    workers = {QUEUE_TRAIN: 0, QUEUE_GENERATE: 0}
    try:
        svc.redis.ping()
    except redis.RedisError as e:
        log.warning("health: redis unreachable: %s", type(e).__name__)
        return respond(Health(status="unavailable", redis=False, workers=workers), 503)
    replies = svc.celery.control.inspect(timeout=_INSPECT_TIMEOUT_S).active_queues() or {}
    for queues in replies.values():
        for queue in queues:
            if queue["name"] in workers:
                workers[queue["name"]] += 1
    status = "ok" if all(workers.values()) else "degraded"
    return respond(Health(status=status, redis=True, workers=workers))
