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
    nice = min(nice, 19)
    tids = os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["0"]
    for tid in map(int, tids):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            current = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, max(current, nice))
    lower_autogroup_priority(nice)


def lower_autogroup_priority(nice):
    """The same for this session's autogroup. Where the kernel groups tasks by session
    (sched_autogroup_enabled, the default of desktop and many server kernels) the CPU is
    shared between sessions first and nice values count only inside one: a worker started
    in a session of its own (make up, Compose) would take as much CPU as the API's session
    whatever its threads' nice. Only a session leader lowers it: a session shared with a
    shell and the API would lower them too."""
    if os.getsid(0) != os.getpid():
        return
    with contextlib.suppress(OSError, ValueError):  # no autogroups here
        current = int(open("/proc/self/autogroup").read().split()[-1])
        if nice > current:
            with open("/proc/self/autogroup", "w") as autogroup:
                autogroup.write(str(nice))


settings = Settings.from_env()
lower_cpu_priority(settings.worker_nice)
configure_logging(settings)
services = Services.from_settings(settings)
app = services.celery
register_tasks(app, services)
add_gpu_option(app, services)
