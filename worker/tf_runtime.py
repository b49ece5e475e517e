"""Process-wide TensorFlow settings, applied once before the first model is built."""

import logging

import tensorflow as tf

log = logging.getLogger(__name__)

# Two threads inside an op, two ops side by side: with the input projection hoisted out
# of the LSTM's time loop (worker.hoisted_lstm), its one large product and the loop's
# h @ U each use both cores (bench.train_speed, 2026-12-01: 1.3x-1.7x the step rate of
# Keras' loop at 1/2, the setting before). The `seed` preset's tutorial model ran ~15%
# slower at 2/2 than at 1/2 (2026-11-28); the `default` preset is what is tuned for.
INTRA_OP_THREADS = 2
INTER_OP_THREADS = 2

_configured = False


def has_gpu():
    """True when TF sees a GPU (then Keras' LSTM runs its fused cuDNN kernel)."""
    return bool(tf.config.list_physical_devices("GPU"))


def configure_tensorflow():
    """Set TF's thread pools; a no-op after the first call or once TF's runtime has started.

    TF refuses to change its thread pools after the runtime is initialized (it raises
    RuntimeError), which happens at the first op; a worker that already ran one keeps the
    pools it has, so that case is logged, not raised.
    """
    global _configured
    if _configured:
        return
    _configured = True
    try:
        tf.config.threading.set_intra_op_parallelism_threads(INTRA_OP_THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(INTER_OP_THREADS)
    except RuntimeError:
        log.info("TensorFlow already initialized; keeping its thread pools")
