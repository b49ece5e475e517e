"""The training path of keras.layers.LSTM on a CPU: a compiled TensorFlow op
(worker/native/fused_lstm.cc, built by `make`) for a layer's whole window and its gradient,
or Keras' own loop where that op is not built.

Why: Keras' loop runs every time step as small separate TF ops and reached half PyTorch's
training throughput at the `default` preset's shape (bench/README.md, issue 16 goal 0);
the op runs the recurrence on both cores with no per-step overhead (its header says how).

Only each LSTM layer's inner loop is replaced, on the instance, for this process: the model
keeps Keras' built-in layers and variables, so what is saved (checkpoints, model.keras) is
the same any-length Keras file as before and loads without custom code. The op computes
what keras.layers.LSTMCell computes (gates i, f, c, o; sigmoid and tanh) with the same
weights; tests/test_fused_lstm.py checks outputs and gradients against Keras' loop.

The spec's `training.matmul_precision: "bfloat16"` asks the op for bfloat16 products summed
in float32 (worker/native/bf16_gemm.h) in training steps: twice the multiply-adds an
instruction where the CPU has AVX512_BF16, at bfloat16's rounding of the products' operands
(weights, states and gradients stay float32, as in Keras' mixed_bfloat16). Calls outside
training (validation, epoch samples) compute in float32 like the saved file, so the model
in the worker and the one loaded from its file give the same outputs. Where the op does
not have them, or Keras' loop trains, the products are float32 and the log says so.
"""

import functools
import logging
import os

import tensorflow as tf
from keras import activations, layers

log = logging.getLogger(__name__)

# Where `make` puts the op (the Makefile's FUSED_LSTM target): beside its source.
LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "native", "fused_lstm.so")

_ops = None  # the loaded library's op wrappers, once loaded
_load_error = None  # why a built library did not load, once tried
_bf16 = None  # bf16_supported(), once asked
_reported = set()  # the log lines below already written: each once a process


def fused_ops():
    """The op library, loaded once (its gradient registered with it); None when not built
    or when it does not load."""
    global _ops, _load_error
    if _ops is None and _load_error is None and os.path.exists(LIBRARY):
        try:
            _ops = tf.load_op_library(LIBRARY)
        except (tf.errors.NotFoundError, OSError) as e:
            # Built against another TensorFlow (upgraded outside `make`), or for another
            # CPU: training still works through Keras' loop, and the log says how to fix it.
            _load_error = f"{LIBRARY} does not load ({e}): run make to rebuild it"
            return None
        tf.RegisterGradient("FusedLstm")(_fused_lstm_grad)
    return _ops


def bf16_supported():
    """Whether the op runs bfloat16 products here (built with them, on a CPU with
    AVX512_BF16); False where the op is not loaded."""
    global _bf16
    if _bf16 is None and fused_ops() is not None:
        _bf16 = bool(_ops.fused_lstm_bf16_supported())
    return bool(_bf16)


def use_fused_lstm(model, precision="float32"):
    """Give every LSTM layer of `model` that the op computes exactly the op as its inner
    loop (CPU only: on a GPU Keras' cuDNN kernel is the faster one), the products of
    training steps at `precision` ("float32", or "bfloat16" where the op has them); logs
    once a process which path and precision train. Returns `model`."""
    why_not = _why_not()
    if why_not is None:
        runs = "float32" if precision == "bfloat16" and not bf16_supported() else precision
        for layer in model.layers:
            if isinstance(layer, layers.LSTM) and _computes(layer):
                layer.inner_loop = functools.partial(_fused_inner_loop, layer, precision=runs)
        path = f"the fused op {LIBRARY}, {runs} products"
        if runs != precision:
            path += f" ({precision} asked for: this build or CPU has no AVX512_BF16)"
    else:
        path = f"Keras' loop ({why_not})"
        if precision != "float32":
            path += f", float32 products ({precision} asked for: only the fused op has it)"
    if path not in _reported:
        _reported.add(path)
        log.info("LSTM training path: %s", path)
    return model


def _why_not():
    if tf.config.list_logical_devices("GPU"):
        return "a GPU is visible: Keras' cuDNN kernel"
    if fused_ops() is None:
        return _load_error or f"{LIBRARY} is not built: run make"
    return None


def _computes(layer):
    """Whether the op computes this layer: the LSTMCell arithmetic it hard-codes."""
    cell = layer.cell
    return (cell.use_bias and not cell.dropout and not cell.recurrent_dropout
            and not layer.go_backwards and not layer.unroll and not layer.stateful
            and cell.activation is activations.tanh
            and cell.recurrent_activation is activations.sigmoid)


def _fused_inner_loop(layer, sequences, initial_state, mask, training=False,
                      precision="float32"):
    """keras.layers.LSTM.inner_loop's contract: (last output, outputs, final states)."""
    if mask is not None or sequences.dtype != tf.float32:  # the op is float32, unmasked
        return layers.LSTM.inner_loop(layer, sequences, initial_state, mask, training)
    cell = layer.cell
    h, c, _ = _ops.fused_lstm(sequences, initial_state[0], initial_state[1], cell.kernel,
                              cell.recurrent_kernel, cell.bias,
                              precision=precision if training else "float32")
    last = h[:, -1]
    return last, h, [last, c[:, -1]]


def _fused_lstm_grad(op, dh, dc, _dgates):
    """FusedLstm's gradient: FusedLstmGrad, given the forward pass's saved gates."""
    x, h0, c0, kernel, recurrent_kernel, _bias = op.inputs
    h, c, gates = op.outputs
    dh = tf.zeros_like(h) if dh is None else dh
    dc = tf.zeros_like(c) if dc is None else dc
    return _ops.fused_lstm_grad(x, h0, c0, kernel, recurrent_kernel, h, c, gates, dh, dc,
                                precision=op.get_attr("precision"))
