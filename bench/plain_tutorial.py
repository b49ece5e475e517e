"""The Stack Abuse tutorial's training script, in plain Keras: the reference `seed` races.

Faithful to the tutorial's code: every window of 100 characters materialized up front as
a NumPy array, X reshaped to (n, 100, 1) and divided by the vocabulary size (float64, as
NumPy gives it), y one-hot, a Sequential LSTM(256) -> Dropout -> LSTM(256) -> Dropout ->
LSTM(128) -> Dropout -> Dense softmax, categorical crossentropy, Adam, model.fit with
batch_size=256, TensorFlow's default thread pools. Only two things differ, for the
benchmark: the windows come from NumPy's sliding_window_view instead of a Python loop (the
same array, built in a second instead of minutes), and fit stops after `steps` steps.
"""

import time

import keras
import numpy as np
from keras import layers

SEQ_LENGTH = 100  # the tutorial's window
BATCH_SIZE = 256  # the tutorial's batch


def windows(text):
    """(X, y) as the tutorial builds them from its preprocessed text."""
    chars = sorted(set(text))
    char_to_num = {c: i for i, c in enumerate(chars)}
    ids = np.array([char_to_num[c] for c in text])
    x_data = np.lib.stride_tricks.sliding_window_view(ids[:-1], SEQ_LENGTH)
    y_data = ids[SEQ_LENGTH:]
    X = np.reshape(x_data, (len(x_data), SEQ_LENGTH, 1)) / float(len(chars))
    y = keras.utils.to_categorical(y_data)
    return X, y


def model_for(X, y):
    model = keras.Sequential([
        keras.Input(shape=(X.shape[1], X.shape[2])),
        layers.LSTM(256, return_sequences=True),
        layers.Dropout(0.2),
        layers.LSTM(256, return_sequences=True),
        layers.Dropout(0.2),
        layers.LSTM(128),
        layers.Dropout(0.2),
        layers.Dense(y.shape[1], activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    return model


class StepTimes(keras.callbacks.Callback):
    """The end time of every step; stops fit after `steps` of them."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.monotonic())
        if len(self.ends) >= self.steps:
            self.model.stop_training = True


def step_end_times(text, steps):
    """Train the tutorial's way on `text` (already preprocessed) for `steps` steps; return
    the monotonic time at the end of each step, the first one from fit's start."""
    X, y = windows(text)
    model = model_for(X, y)
    timer = StepTimes(steps)
    started = time.monotonic()
    model.fit(X, y, epochs=1, batch_size=BATCH_SIZE, callbacks=[timer], verbose=0)
    return [started, *timer.ends]
