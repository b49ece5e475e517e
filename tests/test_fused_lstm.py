"""worker.fused_lstm: the compiled LSTM op against keras.layers.LSTM's own loop, and a model
trained with it saved and loaded as the plain Keras file. Tiny shapes: an odd batch (the op
splits it in two halves) and widths that are no multiple of its 64-column panels. The
bfloat16 products against the float32 ones, where the CPU has them."""

import json
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.test_training import TEXT, tiny_spec
from worker.fused_lstm import bf16_supported, fused_ops, use_fused_lstm
from worker.model_files import load_model, save_model
from worker.sampling import generate
from worker.training import TrainHooks, train

pytestmark = pytest.mark.keras  # builds and trains Keras models in this process

BATCH, WINDOW, FEATURES, UNITS = 3, 7, 5, 6


def _lstm_model(return_sequences, features=FEATURES, units=UNITS, **options):
    inputs = keras.Input((None, features))
    h0, c0 = keras.Input((units,)), keras.Input((units,))
    lstm = keras.layers.LSTM(units, return_sequences=return_sequences, **options)
    return keras.Model([inputs, h0, c0], lstm(inputs, initial_state=[h0, c0]))


def _runs_the_op(model, *inputs):
    return bool(_op_precisions(model, *inputs))


def _op_precisions(model, *inputs, training=False):
    """The `precision` of each FusedLstm op the model's graph runs."""
    graph = tf.function(lambda *x: model(*x, training=training)).get_concrete_function(
        *inputs).graph
    return [op.get_attr("precision").decode() for op in graph.get_operations()
            if op.type == "FusedLstm"]


def _outputs_and_gradients(model, inputs, training=False):
    units = inputs[1].shape[1]
    weights = np.random.default_rng(1).normal(size=(BATCH, WINDOW, units)).astype("float32")
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        y = model(inputs, training=training)
        loss = tf.reduce_sum(y * (weights if y.shape.rank == 3 else weights[:, 0]))
    return [y, *tape.gradient(loss, [*inputs, *model.trainable_weights])]


def test_the_op_is_built():
    assert fused_ops() is not None, "make builds worker/native/fused_lstm.so"


@pytest.mark.parametrize("return_sequences", [True, False])
def test_the_op_gives_keras_outputs_and_gradients(return_sequences):
    rng = np.random.default_rng(0)
    inputs = [tf.constant(rng.normal(size=shape).astype("float32"))
              for shape in [(BATCH, WINDOW, FEATURES), (BATCH, UNITS), (BATCH, UNITS)]]
    keras_loop = _lstm_model(return_sequences)
    # Weights away from the initializers' (a zero bias, orthogonal recurrent kernel).
    keras_loop.set_weights([w + rng.normal(size=w.shape).astype("float32") * 0.5
                            for w in keras_loop.get_weights()])
    fused = _lstm_model(return_sequences)
    fused.set_weights(keras_loop.get_weights())
    use_fused_lstm(fused)
    assert _runs_the_op(fused, inputs) and not _runs_the_op(keras_loop, inputs)

    expected = _outputs_and_gradients(keras_loop, inputs)
    # y; d x, h0, c0; d kernel, recurrent kernel, bias
    for got, want in zip(_outputs_and_gradients(fused, inputs), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


needs_bf16 = pytest.mark.skipif(
    not bf16_supported(), reason="this CPU or the op's build has no AVX512_BF16: precision "
    "'bfloat16' runs the float32 products there")

# bfloat16 keeps 8 significant bits (one rounding: within 0.4%). Products of rounded
# operands, summed in float32, over these widths and 7 steps: each tensor within 3% of its
# largest magnitude of the float32 op's (measured 2026-12-08: 0.2% to 0.8% at widths 5 and
# 6, 0.7% to 1.7% at 70 and 33).
BF16_TOLERANCE = 0.03


@needs_bf16
@pytest.mark.parametrize("features, units", [(FEATURES, UNITS), (70, 33)])
def test_bfloat16_products_give_float32_outputs_and_gradients_to_bfloat16_rounding(
        features, units):
    # (70, 33): operands of more than one 64-column panel and 32-float conversion block.
    rng = np.random.default_rng(0)
    inputs = [tf.constant(rng.normal(size=shape).astype("float32"))
              for shape in [(BATCH, WINDOW, features), (BATCH, units), (BATCH, units)]]
    float32, bfloat16 = (use_fused_lstm(_lstm_model(True, features, units), precision)
                         for precision in ("float32", "bfloat16"))
    float32.set_weights([w + rng.normal(size=w.shape).astype("float32") * 0.5
                         for w in float32.get_weights()])
    bfloat16.set_weights(float32.get_weights())
    # bfloat16 in training steps; a call outside training computes as the saved file does.
    assert _op_precisions(bfloat16, inputs, training=True) == ["bfloat16"]
    assert _op_precisions(bfloat16, inputs) == ["float32"]

    expected = _outputs_and_gradients(float32, inputs, training=True)
    for got, want in zip(_outputs_and_gradients(bfloat16, inputs, training=True), expected,
                         strict=True):
        scale = float(np.abs(want).max())
        np.testing.assert_allclose(got, want, rtol=0, atol=BF16_TOLERANCE * scale)
        assert not np.array_equal(got, want)  # the products really are bfloat16 ones
        assert got.dtype == tf.float32


def _bf16(a):
    """float32 values rounded to bfloat16 (to nearest even), as float64."""
    bits = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


@needs_bf16
@pytest.mark.parametrize("features, units, window", [(FEATURES, UNITS, WINDOW), (70, 33, 45)])
def test_bfloat16_products_are_those_of_rounded_operands_summed_in_float32(
        features, units, window):
    """The op against numpy in float64, each product's operands rounded to bfloat16: the
    mode changes the products' inputs only (the gradient given the op's forward values).
    A window of 45: batch slices of 45 positions, whose x and h the op transposes in blocks
    of 32 and single rows around them."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(BATCH, window, features)).astype("float32")
    h0, c0 = rng.normal(size=(2, BATCH, units)).astype("float32")
    kernel = rng.normal(size=(features, 4 * units)).astype("float32") * 0.5
    recurrent = rng.normal(size=(units, 4 * units)).astype("float32") * 0.5
    bias = rng.normal(size=4 * units).astype("float32")
    dh_seq = rng.normal(size=(BATCH, window, units)).astype("float32")
    dc_seq = np.zeros_like(dh_seq)
    dc_seq[:, -1] = 1
    ops = fused_ops()
    h, c, gates = (t.numpy() for t in ops.fused_lstm(x, h0, c0, kernel, recurrent, bias,
                                                      precision="bfloat16"))
    got = ops.fused_lstm_grad(x, h0, c0, kernel, recurrent, h, c, gates, dh_seq, dc_seq,
                              precision="bfloat16")

    h_prev, c_prev, want_h = h0, c0, []
    for t in range(window):
        z = _bf16(x[:, t]) @ _bf16(kernel) + _bf16(h_prev) @ _bf16(recurrent) + bias
        i, f, g, o = np.split(z, 4, axis=1)
        c_prev = _sigmoid(f) * c_prev + _sigmoid(i) * np.tanh(g)
        h_prev = _sigmoid(o) * np.tanh(c_prev)
        want_h.append(h_prev)
    np.testing.assert_allclose(h, np.stack(want_h, 1), rtol=0, atol=1e-5)

    dz, dh_next, dc_next = np.zeros_like(gates, np.float64), 0, 0
    for t in reversed(range(window)):
        i, f, g, o = np.split(gates[:, t].astype(np.float64), 4, axis=1)
        tanh_c = np.tanh(c[:, t])
        dh = dh_seq[:, t] + dh_next
        dc = dc_seq[:, t] + dc_next + dh * o * (1 - tanh_c**2)
        c_before = c0 if t == 0 else c[:, t - 1]
        dz[:, t] = np.concatenate([dc * g * i * (1 - i), dc * c_before * f * (1 - f),
                                   dc * i * (1 - g**2), dh * tanh_c * o * (1 - o)], axis=1)
        dc_next, dh_next = dc * f, _bf16(dz[:, t]) @ _bf16(recurrent).T
    positions = BATCH * window
    dz_rows = _bf16(dz.reshape(positions, -1))
    h_before = np.concatenate([h0[:, None], h[:, :-1]], axis=1).reshape(positions, units)
    want = [(dz_rows @ _bf16(kernel).T).reshape(x.shape), dh_next, dc_next,
            _bf16(x.reshape(positions, -1)).T @ dz_rows, _bf16(h_before).T @ dz_rows,
            dz.sum(axis=(0, 1))]
    for got_one, want_one in zip(got, want, strict=True):  # dx, dh0, dc0, dW, dR, db
        np.testing.assert_allclose(got_one, want_one, rtol=0,
                                   atol=1e-5 * np.abs(want_one).max())


def test_a_layer_the_op_does_not_compute_keeps_keras_loop():
    inputs = [tf.zeros((BATCH, WINDOW, FEATURES)), tf.zeros((BATCH, UNITS)),
              tf.zeros((BATCH, UNITS))]
    model = use_fused_lstm(_lstm_model(True, recurrent_activation="hard_sigmoid"))
    assert not _runs_the_op(model, inputs)


def test_a_model_trained_with_the_op_is_the_plain_keras_file_at_any_length(tmp_path):
    spec = tiny_spec("embedding_lstm", model={"layers": 2}, epochs=1)
    trained = train(spec, TEXT, tmp_path / "ckpt", TrainHooks())
    ids = trained.vocab.encode(TEXT[:40])[None, :]
    assert _runs_the_op(trained.model, tf.constant(ids))

    save_model(tmp_path / "m", trained, spec, {"job_id": "j1"})
    with zipfile.ZipFile(tmp_path / "m" / "model.keras") as saved:
        config = json.loads(saved.read("config.json"))
    lstms = [layer for layer in config["config"]["layers"] if layer["class_name"] == "LSTM"]
    assert len(lstms) == 2 and all(layer["module"] == "keras.layers" for layer in lstms)
    loaded = load_model(tmp_path / "m")  # Keras' safe mode, no custom objects
    assert not _runs_the_op(loaded.model, tf.constant(ids))
    for length in (1, 40):  # the saved model takes any window
        np.testing.assert_allclose(loaded.model(ids[:, :length], training=False),
                                   trained.model(ids[:, :length], training=False),
                                   atol=1e-5)
    [text] = generate(loaded, prompt="the ", length=50, seed=0)
    assert len(text) == 50


def test_a_model_trained_with_bfloat16_products_is_the_float32_keras_file(tmp_path):
    spec = tiny_spec("embedding_lstm", epochs=1, matmul_precision="bfloat16")
    trained = train(spec, TEXT, tmp_path / "ckpt", TrainHooks())
    ids = tf.constant(trained.vocab.encode(TEXT[:40])[None, :])
    runs = "bfloat16" if bf16_supported() else "float32"  # the log says which
    assert _op_precisions(trained.model, ids, training=True) == [runs]

    save_model(tmp_path / "m", trained, spec, {"job_id": "j1"})
    with zipfile.ZipFile(tmp_path / "m" / "model.keras") as saved:
        config = json.loads(saved.read("config.json"))
    [lstm] = [layer for layer in config["config"]["layers"] if layer["class_name"] == "LSTM"]
    assert lstm["config"]["dtype"]["config"]["name"] == "float32"
    loaded = load_model(tmp_path / "m")
    assert all(w.dtype == "float32" for w in loaded.model.weights)
    assert loaded.spec.training.matmul_precision == "bfloat16"  # saved with the model
    # Validation and samples in the worker: float32, the outputs of the saved file.
    np.testing.assert_allclose(loaded.model(ids, training=False),
                               trained.model(ids, training=False), atol=1e-5)


@pytest.mark.subprocess
def test_a_library_that_does_not_load_leaves_keras_loop_training(tmp_path):
    # A fresh interpreter: this one has loaded the real library already.
    broken = tmp_path / "fused_lstm.so"
    broken.write_bytes(b"built for another TensorFlow")
    script = f"""
import keras, tensorflow as tf
from worker import fused_lstm
fused_lstm.LIBRARY = {str(broken)!r}
model = keras.Sequential([keras.Input((None, 3)), keras.layers.LSTM(4)])
fused_lstm.use_fused_lstm(model)
model.compile(optimizer="adam", loss="mse")
assert fused_lstm.fused_ops() is None
print("why:", fused_lstm._why_not())
print("trains:", float(model.train_on_batch(tf.zeros((2, 5, 3)), tf.zeros((2, 4)))))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "does not load" in run.stdout and "run make" in run.stdout
    assert "trains:" in run.stdout
