"""The WSGI entry point for gunicorn: `gunicorn api.wsgi:app`."""

from api import create_app
from shared.logs import configure_logging
from shared.settings import Settings

_settings = Settings.from_env()
configure_logging(_settings)
app = create_app(_settings)
