"""The worker entry point: `celery -A worker.main worker -Q train` (or `-Q generate`).

Celery's command line needs a module-level app, so this module is the one place on the
worker side that reads the environment at import.
"""

import logging

from shared.services import Services
from shared.settings import Settings
from worker.tasks import register_tasks

settings = Settings.from_env()
logging.basicConfig(level=settings.log_level,
                    format="%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s")
services = Services.from_settings(settings)
app = services.celery
register_tasks(app, services)
