"""The WSGI entry point for gunicorn: `gunicorn api.wsgi:app`."""

from api import create_app
from shared.runtime.logs import configure_logging
from shared.runtime.settings import Settings

_settings = Settings.from_env()
configure_logging(_settings)
app = create_app(_settings)
