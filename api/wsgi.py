"""The WSGI entry point for gunicorn: `gunicorn api.wsgi:app`."""

import logging

from api import create_app
from shared.settings import Settings

_settings = Settings.from_env()
logging.basicConfig(level=_settings.log_level,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app(_settings)
