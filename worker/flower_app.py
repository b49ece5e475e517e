"""Flower's entry point: `celery -A worker.flower_app flower`. The Celery app without the
tasks: Flower follows the workers through the broker and needs none of their code, so it
starts in a second and never loads TensorFlow. Like worker/main.py, it reads the
environment at import, as Celery's command line needs a module-level app."""

from shared.runtime.logs import configure_logging
from shared.runtime.queue import make_celery
from shared.runtime.settings import Settings

settings = Settings.from_env()
configure_logging(settings)
app = make_celery(settings)
