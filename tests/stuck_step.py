"""A training step that never ends: the stall test's fault, loaded into a real worker with
TEXTGEN_TRAIN_CALLBACKS=tests.stuck_step:StuckStep (the worker runs from the checkout)."""

import threading

import keras

STUCK_AT = (2, 10)  # (epoch, step), 1-based: after epoch 1's checkpoint, in every attempt


class StuckStep(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch + 1) == STUCK_AT:
            threading.Event().wait()  # forever, as a deadlocked op would: no GIL held
