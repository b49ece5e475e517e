"""Training callbacks: progress reports, stopping, checkpoints.

Each is small and knows only the hooks or paths it is given. Keras calls them in list
order, so train() puts Stop before Progress (a cancelled step is reported as stopped) and
Progress before Checkpoint (the history entry exists when the checkpoint is written).
"""

import enum
import json
import math
import os
import tempfile
import time

import keras

from shared.artifacts import atomic_write_text

LN2 = math.log(2)


class StopReason(str, enum.Enum):
    """Why training ended."""

    COMPLETED = "completed"  # all epochs ran
    CANCELLED = "cancelled"  # hooks.should_stop() said so
    TIME_BUDGET = "time_budget"  # training.max_seconds was spent
    EARLY_STOPPING = "early_stopping"  # val_loss stopped improving for `patience` epochs


def epoch_metrics(loss, val_loss):
    """Metrics as reported: bits per character from val_loss when there is one, else loss.

    Losses are mean cross-entropy per predicted character in nats, so / ln 2 gives bits.
    """
    loss = None if loss is None else float(loss)
    val_loss = None if val_loss is None else float(val_loss)
    reference = val_loss if val_loss is not None else loss
    return {"loss": loss, "val_loss": val_loss,
            "bits_per_char": None if reference is None else reference / LN2}


class Stop(keras.callbacks.Callback):
    """Stop at the next step once `should_stop()` is true or `max_seconds` is spent.

    Keras checks `model.stop_training` after every batch and leaves the epoch loop; it
    still runs validation (if any) and the epoch-end callbacks for the partial epoch.
    """

    def __init__(self, should_stop, max_seconds):
        super().__init__()
        self.should_stop = should_stop
        self.max_seconds = max_seconds
        self.reason = None

    def on_train_begin(self, logs=None):
        self.started = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if self.should_stop():
            self.reason = StopReason.CANCELLED
        elif (self.max_seconds is not None
              and time.monotonic() - self.started >= self.max_seconds):
            self.reason = StopReason.TIME_BUDGET
        if self.reason is not None:
            self.model.stop_training = True


class Progress(keras.callbacks.Callback):
    """Report progress at most every `interval_s` during an epoch and at each epoch end.

    Keeps `history`: one metrics dict per epoch (a stopped epoch included).
    """

    def __init__(self, hooks, epochs, steps):
        super().__init__()
        self.hooks = hooks
        self.epochs = epochs
        self.steps = steps  # batches per epoch
        self.history = []

    def on_train_begin(self, logs=None):
        self.started = time.monotonic()
        self.last_report = self.started
        self.epoch = 1
        self.step = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1
        self.step = 0

    def on_train_batch_end(self, batch, logs=None):
        self.step = batch + 1
        now = time.monotonic()
        if now - self.last_report >= self.hooks.progress_interval_s:
            self.last_report = now
            previous_val = self.history[-1]["val_loss"] if self.history else None
            # logs["loss"] is the running mean over this epoch's batches so far.
            self.hooks.on_progress(self._progress(now), epoch_metrics(logs["loss"],
                                                                      previous_val))

    def on_epoch_end(self, epoch, logs=None):
        metrics = epoch_metrics(logs["loss"], logs.get("val_loss"))
        self.history.append({"epoch": epoch + 1, **metrics,
                             "learning_rate": float(self.model.optimizer.learning_rate)})
        self.last_report = time.monotonic()
        self.hooks.on_progress(self._progress(self.last_report), metrics)
        self.hooks.on_epoch_end(epoch + 1, metrics)

    def _progress(self, now):
        total = self.epochs * self.steps
        done = (self.epoch - 1) * self.steps + self.step
        fraction = done / total
        elapsed_s = now - self.started
        eta_s = elapsed_s * (1 - fraction) / fraction if done else None
        return {"epoch": self.epoch, "epochs": self.epochs, "step": self.step,
                "steps": self.steps, "fraction": fraction, "eta_seconds": eta_s}


class LearningRateDecay(keras.callbacks.Callback):
    """Epoch e (0-based) runs at `initial_rate * factor**e`: multiplied after each epoch.

    Set from the epoch number, not from the current rate, so a resumed run lands on the
    same rate. (Keras' LearningRateScheduler does the same but warns under NumPy 2.)
    """

    def __init__(self, initial_rate, factor):
        super().__init__()
        self.initial_rate = initial_rate
        self.factor = factor

    def on_epoch_begin(self, epoch, logs=None):
        self.model.optimizer.learning_rate = self.initial_rate * self.factor**epoch


class Checkpoint(keras.callbacks.Callback):
    """After each epoch: last.keras, best.keras when `monitor` improved, and state.json.

    Each file is written under a temporary name in the same directory, then renamed, so a
    reader (or a resumed job) never sees half a model. The best weights are also kept in
    memory (`best_weights`) so train() can return the best model without reading it back.
    """

    def __init__(self, checkpoint_dir, monitor):
        super().__init__()
        self.dir = checkpoint_dir
        self.monitor = monitor
        self.best = math.inf
        self.best_epoch = None
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.dir.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        value = float(logs[self.monitor])
        self._save("last.keras")
        # A NaN loss never counts as an improvement.
        if math.isfinite(value) and value < self.best:
            self.best, self.best_epoch = value, epoch + 1
            self.best_weights = self.model.get_weights()
            self._save("best.keras")
        state = {"epoch": epoch + 1, "monitor": self.monitor,
                 "best_metric": None if self.best_epoch is None else self.best,
                 "best_epoch": self.best_epoch}
        atomic_write_text(self.dir / "state.json", json.dumps(state, indent=2) + "\n")

    def _save(self, name):
        # Keras insists on the .keras suffix, so the temporary name keeps it.
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{name}.", suffix=".tmp.keras")
        os.close(fd)
        try:
            self.model.save(tmp)
            os.replace(tmp, self.dir / name)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
