"""The HTTP API: a Flask app factory and one blueprint per resource.

Never imports TensorFlow or worker code: it validates, stores, enqueues by task name and
answers at once.
"""

import logging

from flask import Flask

from api.bodies import BodyJSON
from api.event_hub import EventHub
from shared.services import Services
from shared.settings import Settings, redacted
from shared.stream_slots import StreamSlots


def create_app(settings=None, celery=None):
    """The app; `celery` replaces the Celery app built from settings (the broker it
    publishes to), which tests use to make that broker unreachable."""
    settings = settings or Settings.from_env()
    # No /static route: the dashboard (api/dashboard.py) and /docs (api/openapi.py) serve
    # their files under their own paths and headers, and nothing else is static.
    app = Flask(__name__, static_folder=None)
    # Werkzeug refuses larger bodies with 413 before we read them.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    # A corpus may come as a multipart field without a file name: the same limit as a file.
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_upload_bytes
    app.json = BodyJSON(app)
    svc = app.extensions["textgen"] = Services.from_settings(settings, celery=celery)
    app.extensions["textgen.event_hub"] = EventHub(svc.redis, svc.keys)
    app.extensions["textgen.stream_slots"] = StreamSlots(svc.redis, svc.keys)

    from api import (
        auth,
        corpora,
        errors,
        evaluations,
        jobs,
        metrics,
        models,
        openapi,
        results,
        security_headers,
        sweeps,
        system,
    )

    errors.register(app)
    security_headers.register(app)
    app.before_request(auth.require_token)
    for module in (corpora, jobs, evaluations, results, models, sweeps, system, openapi,
                   metrics):
        app.register_blueprint(module.bp)
    from api.dashboard import bp as dashboard_bp  # the web page at /, beside the API
    app.register_blueprint(dashboard_bp)
    logging.getLogger(__name__).debug("textgen API created for %s",
                                      redacted(settings.redis_url))
    return app
