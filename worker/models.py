"""Model builders: one function per architecture, Keras built-in layers only.

Both models take token ids (batch, time) as input, so a saved model.keras is used with the
ids of its vocab.json and nothing else, and loads under Keras safe mode without custom
objects. Layers have fixed names (`embedding`, `lstm_1`..`lstm_n`, `dropout_i`, `head`) so
the sampler can find them and copy their weights into its step model.
"""

import keras
from keras import layers

TUTORIAL = "tutorial"
EMBEDDING_LSTM = "embedding_lstm"

# What the model's output means, per architecture; written to config.json so a reader of a
# saved model knows whether it holds probabilities or logits.
INPUT_DESCRIPTION = "token ids (batch, time)"
OUTPUT_DESCRIPTION = {
    TUTORIAL: "softmax over the next token after the window",
    EMBEDDING_LSTM: "logits for the next token at every position",
}


def lstm_name(i):
    """Name of the i-th LSTM layer, 1-based."""
    return f"lstm_{i}"


def build_model(model_spec, vocab_size, seq_length):
    """Return the uncompiled model `model_spec["architecture"]` names."""
    architecture = model_spec["architecture"]
    if architecture == TUTORIAL:
        return _tutorial(model_spec, vocab_size, seq_length)
    if architecture == EMBEDDING_LSTM:
        return _embedding_lstm(model_spec, vocab_size)
    raise ValueError(f"unknown architecture {architecture!r}")


def _tutorial(spec, vocab_size, seq_length):
    """The tutorial's model: ids / vocab_size as one feature per step, stacked LSTM, softmax.

    The tutorial scales ids before the model; doing it inside (Rescaling, then Reshape to
    (seq_length, 1)) feeds the LSTM the same values while the saved model takes plain ids.
    Its last LSTM has half the units (256, 256, 128 in the `seed` preset) and only it
    returns the last step alone.
    """
    ids = keras.Input(shape=(seq_length,), dtype="int32", name="ids")
    x = layers.Rescaling(1.0 / vocab_size, name="scale")(ids)  # (batch, seq_length)
    x = layers.Reshape((seq_length, 1), name="features")(x)  # (batch, seq_length, 1)
    n = spec["layers"]
    for i in range(1, n + 1):
        last = i == n
        units = max(1, spec["units"] // 2) if last else spec["units"]
        x = layers.LSTM(units, return_sequences=not last, name=lstm_name(i))(x)
        x = layers.Dropout(spec["dropout"], name=f"dropout_{i}")(x)
    probs = layers.Dense(vocab_size, activation="softmax", name="head")(x)  # (batch, vocab)
    return keras.Model(ids, probs, name="tutorial")


def _embedding_lstm(spec, vocab_size):
    """Embedding, stacked LSTM returning every step, Dense logits at every step.

    The time axis is None: trained on windows of seq_length, the model runs on any length.
    """
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    x = layers.Embedding(vocab_size, spec["embedding_dim"], name="embedding")(ids)
    for i in range(1, spec["layers"] + 1):
        x = layers.LSTM(spec["units"], return_sequences=True, name=lstm_name(i))(x)
        if spec["dropout"] > 0:
            x = layers.Dropout(spec["dropout"], name=f"dropout_{i}")(x)
    logits = layers.Dense(vocab_size, name="head")(x)  # (batch, time, vocab)
    return keras.Model(ids, logits, name="embedding_lstm")
