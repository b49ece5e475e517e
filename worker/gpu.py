"""`--gpu`: a worker on a host with a GPU also takes the training jobs that asked for one.

Such jobs wait on their own queue (train-gpu), so a CPU worker never takes one; a worker
started with --gpu adds that queue to the ones it reads and registers itself, and the API
refuses GPU jobs while no GPU worker has ever registered (it would wait forever).
A GPU worker trains the same models: the `default` model's LSTM layers keep the settings
Keras needs for its fused cuDNN kernel (tests/test_training.py checks them).
"""

import click
from celery import bootsteps

from shared.runtime.queue import QUEUE_TRAIN_GPU


def add_gpu_option(celery, svc):
    celery.user_options["worker"].add(click.Option(
        ["--gpu"], is_flag=True, default=False,
        help="This host has a GPU: also take training jobs that ask for one (train-gpu)."))

    class GpuQueue(bootsteps.Step):
        """Reads the train-gpu queue and registers the worker, when --gpu is given."""

        def __init__(self, worker, gpu=False, **options):
            super().__init__(worker, **options)
            if gpu:
                worker.app.amqp.queues.select_add(QUEUE_TRAIN_GPU)
                svc.redis.sadd(svc.keys.gpu_workers(), worker.hostname)

    celery.steps["worker"].add(GpuQueue)
