"""A worker's CPU priority, by the queues it reads: training is batch work, so on a host it
shares with the API and Redis it takes the CPU those leave idle (TEXTGEN_WORKER_NICE);
generation is interactive and keeps its own (TEXTGEN_GENERATE_WORKER_NICE, 0). Set once
Celery has applied `--queues`, before its pool and consumer start their threads.
"""

import contextlib
import os

from celery import signals

from shared.runtime.queue import QUEUE_GENERATE


def lower_cpu_priority_by_queue(settings):
    """Lower this worker's priority once its queues are known: a worker that reads the
    generate queue runs at the generation value, however many others it reads."""

    @signals.celeryd_after_setup.connect(weak=False)
    def lower(instance, **_):
        queues = instance.app.amqp.queues.consume_from
        lower_cpu_priority(settings.generate_worker_nice if QUEUE_GENERATE in queues
                           else settings.worker_nice)


def lower_cpu_priority(nice):
    """Run every thread of this process at `nice` at least. Linux keeps a nice value per
    thread, and a thread starts with its creator's: the threads that exist now (those the
    imports started) are lowered one by one, those started later (Celery's, TensorFlow's
    pools) inherit it. Without /proc (not Linux) the value is the process's."""
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
