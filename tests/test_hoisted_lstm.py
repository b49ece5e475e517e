"""worker.hoisted_lstm: the LSTM trained with its input projection hoisted computes what
Keras' own LSTM computes, forward and backward, and saves as the built-in file."""

import functools

import keras
import numpy as np
import tensorflow as tf

from shared.specs import PRESETS
from worker.hoisted_lstm import hoist_input_projections
from worker.models import build_model


def pair():
    model_spec = {**PRESETS["default"]["model"], "units": 16, "embedding_dim": 8}
    keras.utils.set_random_seed(3)
    plain = build_model(model_spec, vocab_size=20, seq_length=12)
    hoisted = build_model(model_spec, vocab_size=20, seq_length=12)
    hoisted.set_weights(plain.get_weights())
    return plain, hoist_input_projections(hoisted)


def gradients(model, x):
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
            x, model(x, training=True), from_logits=True))
    return tape.gradient(loss, model.trainable_variables)


def test_the_hoisted_loop_gives_the_same_outputs_and_gradients():
    plain, hoisted = pair()
    lstms = [l for l in hoisted.layers if isinstance(l, keras.layers.LSTM)]
    assert len(lstms) == 2 and all(isinstance(l.inner_loop, functools.partial) for l in lstms)
    x = np.random.default_rng(0).integers(0, 20, (4, 12)).astype(np.int32)
    np.testing.assert_allclose(hoisted(x), plain(x), atol=1e-6)
    np.testing.assert_allclose(hoisted(x[:, :5]), plain(x[:, :5]), atol=1e-6)  # any length
    for mine, theirs in zip(gradients(hoisted, x), gradients(plain, x)):
        # (the embedding's gradient comes as IndexedSlices)
        np.testing.assert_allclose(tf.convert_to_tensor(mine), tf.convert_to_tensor(theirs),
                                   rtol=1e-4, atol=1e-6)


def test_a_hoisted_model_saves_as_keras_built_in_layers(tmp_path):
    plain, hoisted = pair()
    hoisted.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    lstms = [l for l in loaded.layers if isinstance(l, keras.layers.LSTM)]
    assert lstms and not any(isinstance(l.inner_loop, functools.partial) for l in lstms)
    x = np.arange(12, dtype=np.int32)[None, :] % 20
    np.testing.assert_allclose(loaded(x), plain(x), atol=1e-6)
