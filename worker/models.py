"""The Keras model of a spec, built by walking its description (shared/sizing/architecture.py).

Every model takes token ids (batch, time) as input, so a saved model.keras is used with the
ids of its vocab.json and nothing else, and loads under Keras safe mode without custom
objects: Keras built-in layers only, named as the description names them.
"""

import keras
from keras import layers

from shared.sizing.architecture import (
    EMBEDDING_LSTM,
    INPUT_DESCRIPTION,
    OUTPUT_DESCRIPTION,
    LSTM,
    TUTORIAL,
    Dropout,
    Embedding,
    Head,
    ScaledIds,
    describe,
    lstm_name,
)

# The family names and layer names, for the worker's modules that import them from here.
__all__ = ["EMBEDDING_LSTM", "INPUT_DESCRIPTION", "OUTPUT_DESCRIPTION", "TUTORIAL",
           "build_model", "lstm_name"]


def build_model(spec, vocab_size):
    """The uncompiled model of `spec` (a shared.contracts.specs.TrainSpec) over `vocab_size`
    tokens."""
    architecture = describe(spec, vocab_size)
    ids = keras.Input(shape=(architecture.window,), dtype="int32", name="ids")
    x = ids
    for layer in architecture.layers:
        x = _applied(layer, x)
    return keras.Model(ids, x, name=architecture.family)


def _applied(layer, x):
    """The Keras layer(s) `layer` describes, applied to `x`."""
    match layer:
        case ScaledIds():
            x = layers.Rescaling(1.0 / layer.vocab_size, name="scale")(x)  # (batch, window)
            return layers.Reshape((layer.window, 1), name="features")(x)  # (batch, window, 1)
        case Embedding():
            return layers.Embedding(layer.vocab_size, layer.width, name=layer.name)(x)
        case LSTM():
            return layers.LSTM(layer.width, return_sequences=layer.every_step,
                               name=layer.name)(x)
        case Dropout():
            return layers.Dropout(layer.rate, name=layer.name)(x)
        case Head():
            return layers.Dense(layer.vocab_size, activation="softmax" if layer.softmax
                                else None, name=layer.name)(x)
    raise TypeError(f"no Keras layer for {layer!r}")
