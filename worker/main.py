"""The worker entry point: `celery -A worker.main worker -Q train` (or `-Q generate`;
add `--gpu` on a host with a GPU, see worker/gpu.py).

Celery's command line needs a module-level app, so this module is the one place on the
worker side that reads the environment at import.
"""

import contextlib
import os

from shared.runtime.logs import configure_logging
from shared.runtime.services import Services
from shared.runtime.settings import Settings
from worker.gpu import add_gpu_option
from worker.tasks import register_tasks


def lower_cpu_priority(nice):
    """Run every thread of this process at `nice` at least (TEXTGEN_WORKER_NICE). Linux
    keeps a nice value per thread, and a thread starts with its creator's: the threads that
    exist now are lowered one by one, those started later (Celery's, TensorFlow's pools)
    inherit it. Without /proc (not Linux) the value is the process's."""
    tids = os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["0"]
    for tid in map(int, tids):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            current = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, max(current, min(nice, 19)))


settings = Settings.from_env()
lower_cpu_priority(settings.worker_nice)
configure_logging(settings)
services = Services.from_settings(settings)
app = services.celery
register_tasks(app, services)
add_gpu_option(app, services)
