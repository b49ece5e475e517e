"""The HTTP API: a Flask app factory and one blueprint per resource.

A module that holds a blueprint's views is named `<resource>_routes.py`, so that no name
here is also a module of worker/ or shared/ (api/model_routes.py beside worker/models.py).

Never imports TensorFlow or worker code: it validates, stores, enqueues by task name and
answers at once.
"""

import logging

from flask import Flask

from api.bodies import BodyJSON
from api.after_body import run_after_body
from api.download_slots import DownloadSlots
from api.event_hub import EventHub
from shared.runtime.services import Services
from shared.runtime.settings import Settings, redacted
from shared.stores.owner_slots import OwnerSlots


def create_app(settings=None, celery=None):
    """The app; `celery` replaces the Celery app built from settings (the broker it
    publishes to), which tests use to make that broker unreachable."""
    settings = settings or Settings.from_env()
    # No /static route: the dashboard (api/dashboard_routes.py) and /docs (api/openapi.py)
    # serve their files under their own paths and headers, and nothing else is static.
    app = Flask(__name__, static_folder=None)
    # Werkzeug refuses larger bodies with 413 before we read them.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    # A corpus may come as a multipart field without a file name: the same limit as a file.
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_upload_bytes
    app.json = BodyJSON(app)
    svc = app.extensions["textgen"] = Services.from_settings(settings, celery=celery)
    app.extensions["textgen.event_hub"] = EventHub(svc.redis, svc.keys)
    app.extensions["textgen.stream_slots"] = OwnerSlots(svc.redis, svc.keys.stream_slots)
    app.extensions["textgen.download_slots"] = DownloadSlots(
        OwnerSlots(svc.redis, svc.keys.download_slots))
    app.wsgi_app = run_after_body(app.wsgi_app)

    from api import (
        auth,
        corpus_routes,
        errors,
        evaluation_routes,
        job_routes,
        metrics_routes,
        model_routes,
        openapi,
        result_routes,
        security_headers,
        sweep_routes,
        system_routes,
    )

    errors.register(app)
    security_headers.register(app)
    app.before_request(auth.require_token)
    for module in (corpus_routes, job_routes, evaluation_routes, result_routes, model_routes,
                   sweep_routes, system_routes, openapi, metrics_routes):
        app.register_blueprint(module.bp)
    from api.dashboard_routes import bp as dashboard_bp  # the web page at /, beside the API
    app.register_blueprint(dashboard_bp)
    logging.getLogger(__name__).debug("textgen API created for %s",
                                      redacted(settings.redis_url))
    return app
