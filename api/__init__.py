"""The HTTP API: a Flask app factory and one blueprint per resource.

Never imports TensorFlow or worker code: it validates, stores, enqueues by task name and
answers at once.
"""

import logging

from flask import Flask

from shared.services import Services
from shared.settings import Settings


def create_app(settings=None):
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    # Werkzeug refuses larger bodies with 413 before we read them.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.json.sort_keys = False
    app.extensions["textgen"] = Services.from_settings(settings)

    from api import corpora, errors, jobs, models, system

    errors.register(app)
    for module in (corpora, jobs, models, system):
        app.register_blueprint(module.bp)
    logging.getLogger(__name__).debug("textgen API created for %s", settings.redis_url)
    return app
