"""GET /metrics: Prometheus' text format, for operators, behind its own bearer token.

Answered only with `Authorization: Bearer <TEXTGEN_METRICS_TOKEN>`; without that setting
the path does not exist (404). The figures come from Redis (shared/runtime/metrics.py), so they
count every worker on every host, whichever API process Prometheus reaches.
"""

import hashlib
import hmac

from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from werkzeug.exceptions import NotFound

from api.context import services
from shared.contracts.errors import UnauthorizedError

bp = Blueprint("metrics", __name__)


class _RedisCollector:
    """A prometheus_client collector over shared.runtime.metrics.Metrics."""

    def __init__(self, metrics):
        self.metrics = metrics

    def collect(self):
        yield from self.metrics.collect()


@bp.get("/metrics")
def metrics():
    svc = services()
    expected = svc.settings.metrics_token_digest
    if expected is None:
        raise NotFound()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    presented = hashlib.sha256(token.strip().encode("utf-8", "surrogatepass")).hexdigest()
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented, expected):
        raise UnauthorizedError("/metrics needs 'Authorization: Bearer "
                                "<TEXTGEN_METRICS_TOKEN>'")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_RedisCollector(svc.metrics))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
