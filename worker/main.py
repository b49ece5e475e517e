"""The worker entry point: `celery -A worker.main worker -Q train` (or `-Q generate`;
add `--gpu` on a host with a GPU, see worker/gpu.py).

Celery's command line needs a module-level app, so this module is the one place on the
worker side that reads the environment at import.
"""

from shared.runtime.logs import configure_logging
from shared.runtime.services import Services
from shared.runtime.settings import Settings
from worker.cpu_priority import lower_cpu_priority_by_queue
from worker.gpu import add_gpu_option
from worker.tasks import register_tasks

settings = Settings.from_env()
lower_cpu_priority_by_queue(settings)
configure_logging(settings)
services = Services.from_settings(settings)
app = services.celery
register_tasks(app, services)
add_gpu_option(app, services)
