"""System: the health endpoint (Redis reachable, workers alive on each queue), the presets
offered, and who is calling with what they may use.

Health answers from the heartbeats workers already write to Redis
(shared/runtime/metrics.py), in one read: no broadcast to the workers and no wait for
their replies, which took a second per call and grew with every worker.
"""

import logging

import redis
from flask import Blueprint

from api.auth import current_owner
from api.context import download_slots, services, stream_slots
from api.openapi import operation
from api.responses import respond
from shared.service.account import Whoami, whoami
from shared.runtime.queue import QUEUE_GENERATE, QUEUE_TRAIN
from shared.contracts.schemas import Health, Preset, Presets, WorkerHeartbeat
from shared.contracts.specs import PRESET_DESCRIPTIONS, resolve_train_spec

log = logging.getLogger(__name__)

bp = Blueprint("system", __name__, url_prefix="/v1")


@bp.get("/health")
@operation("Redis reachable, and the workers alive on each queue (from their heartbeats)",
           {200: Health, 503: (Health, "Redis is unreachable")}, public=True)
def health():
    svc = services()
    workers = {QUEUE_TRAIN: 0, QUEUE_GENERATE: 0}
    try:
        seen = svc.metrics.workers_seen()
    except redis.RedisError as e:
        log.warning("health: redis unreachable: %s", type(e).__name__)
        return respond(Health(status="unavailable", redis=False, workers=workers), 503)
    for _, queues, _ in seen:
        for queue in queues:
            if queue in workers:
                workers[queue] += 1
    status = "ok" if all(workers.values()) else "degraded"
    heartbeats = [WorkerHeartbeat(name=name, queues=queues, age_s=round(age_s, 1))
                  for name, queues, age_s in seen]
    return respond(Health(status=status, redis=True, workers=workers, heartbeats=heartbeats))


@bp.get("/presets")
@operation("The training presets: what each is for, and its full spec", {200: Presets})
def presets():
    return respond(Presets(data=[
        Preset(name=name, description=description, spec=resolve_train_spec(name, {}))
        for name, description in PRESET_DESCRIPTIONS.items()]))


@bp.get("/whoami")
@operation("Who you are: the quotas that apply to you and what you use of them now",
           {200: Whoami})
def get_whoami():
    return respond(whoami(services(), stream_slots(), download_slots().slots,
                          current_owner()))
