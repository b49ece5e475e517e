"""A worker's CPU priority (TEXTGEN_WORKER_NICE): training and sampling are batch work, so
on a host they share with the API and Redis they take the CPU those leave idle. Set once,
by the entry point (worker/main.py), before Celery and TensorFlow start their threads.
"""

import contextlib
import os


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
