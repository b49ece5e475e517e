"""Training callbacks: progress reports, stopping, the learning-rate schedule, seeds.

Each is small and knows only the hooks or values it is given. Keras calls them in list
order, so train() puts Stop before Progress (a cancelled step is reported as stopped),
Progress before worker.checkpoints.Checkpoint (the history entry exists when the
checkpoint is written), and Checkpoint before EarlyStop (which reads its best epoch).

Everything that changes from epoch to epoch is a function of the epoch number (the
per-epoch learning rate, dropout seeds; the data order in worker.datasets), so a run
resumed at epoch e continues exactly as the uninterrupted run would. The budget schedule
(worker.schedule) follows the step number, or the clock when the budget is in seconds.
"""

import math
import time

import keras
import numpy as np

from shared.stores.jobs import StoppedReason
from worker.vocab import CHAR

LN2 = math.log(2)


def epoch_metrics(loss, val_loss, level=CHAR, tokens_per_char=None):
    """Metrics as reported: bits per token from val_loss when there is one, else loss.

    Losses are mean cross-entropy per predicted token in nats, so / ln 2 gives bits. The
    key is `bits_per_char` at char level; at word level it is `bits_per_token`, and
    `bits_per_char` is the same loss spread over the characters of the text it was
    computed on, so word and character models of one corpus compare: `tokens_per_char`
    gives (training, validation) text's tokens per character (None: not known).
    """
    loss = None if loss is None else float(loss)
    val_loss = None if val_loss is None else float(val_loss)
    reference = val_loss if val_loss is not None else loss
    bits = None if reference is None else reference / LN2
    if level == CHAR:
        return {"loss": loss, "val_loss": val_loss, "bits_per_char": bits}
    per_char = None
    if bits is not None and tokens_per_char is not None:
        per_char = bits * tokens_per_char[1 if val_loss is not None else 0]
    return {"loss": loss, "val_loss": val_loss, "bits_per_char": per_char,
            "bits_per_token": bits}


def perplexity(loss, val_loss):
    """exp of the validation loss (the training loss without validation); inf on overflow."""
    reference = val_loss if val_loss is not None else loss
    if reference is None:
        return None
    try:
        return math.exp(reference)
    except OverflowError:
        return math.inf


class Stop(keras.callbacks.Callback):
    """Stop at the next step once `should_stop()` is true or the time budget is spent.

    `budget` (worker.schedule.Budget) is the job's total across attempts: a resumed run
    gets only what its predecessors left, and the clock starts with this fit.

    Keras checks `model.stop_training` after every batch and leaves the epoch loop; it
    still runs validation (if any) and the epoch-end callbacks for the partial epoch.
    """

    def __init__(self, should_stop, budget):
        super().__init__()
        self.should_stop = should_stop
        self.budget = budget
        self.reason = None

    def on_train_begin(self, logs=None):
        self.budget.start()

    def seconds_left(self):
        """What is left of the job's budget (None: no budget); read by Progress for its
        ETA."""
        if self.budget.max_seconds is None:
            return None
        return max(0.0, self.budget.max_seconds - self.budget.spent())

    def on_train_batch_end(self, batch, logs=None):
        if self.should_stop():
            self.reason = StoppedReason.CANCELLED
        elif self.budget.spent_out():
            self.reason = StoppedReason.TIME_LIMIT
        if self.reason is not None:
            self.model.stop_training = True


class Progress(keras.callbacks.Callback):
    """Report progress at most every `interval_s` during an epoch and at each epoch end.

    Keeps `history`: one metrics dict per epoch (a stopped epoch included), continuing
    `history` (a resumed run's epochs so far; fit starts at epoch len(history) + 1). An
    entry adds to the reported metrics the learning rate, the perplexity and
    `targets_per_s`: target characters (or tokens) per second of training, validation
    excluded.
    """

    def __init__(self, hooks, epochs, steps, level=CHAR, history=(), sample=None,
                 targets_per_step=None, seconds_left=None, tokens_per_char=None):
        super().__init__()
        self.seconds_left = seconds_left  # () -> the time budget's rest (s) or None
        self.hooks = hooks
        self.sample = sample  # model -> text at the epoch's end, or None
        self.epochs = epochs
        self.steps = steps  # batches per epoch
        self.targets_per_step = targets_per_step  # tokens the loss is computed on, a batch
        self.level = level
        self.tokens_per_char = tokens_per_char  # word level: see epoch_metrics
        self.history = list(history)
        self.initial_epoch = len(self.history)  # epochs done before this fit

    def on_train_begin(self, logs=None):
        self.started = time.monotonic()
        self.last_report = self.started
        self.epoch = self.initial_epoch + 1
        self.step = 0
        # (time, steps done) at the end of this fit's first step: the ETA's rate is timed
        # from there, since the first step carries TensorFlow's tracing (seconds).
        self.timed_from = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1
        self.step = 0
        self.epoch_started = self.last_batch_end = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        self.step = batch + 1
        now = self.last_batch_end = time.monotonic()
        if self.timed_from is None:
            self.timed_from = (now, self._done())
        if now - self.last_report >= self.hooks.progress_interval_s:
            self.last_report = now
            previous_val = self.history[-1]["val_loss"] if self.history else None
            # logs["loss"] is the running mean over this epoch's batches so far.
            self.hooks.on_progress(self._progress(now), epoch_metrics(
                logs["loss"], previous_val, self.level, self.tokens_per_char))

    def on_epoch_end(self, epoch, logs=None):
        metrics = epoch_metrics(logs["loss"], logs.get("val_loss"), self.level,
                                self.tokens_per_char)
        train_s = self.last_batch_end - self.epoch_started
        entry = {"epoch": epoch + 1, **metrics,
                 "perplexity": perplexity(metrics["loss"], metrics["val_loss"]),
                 "targets_per_s": (self.step * self.targets_per_step / train_s
                                   if self.targets_per_step and train_s > 0 else None),
                 "train_seconds": train_s,  # the steps' time, validation and sample excluded
                 "learning_rate": float(self.model.optimizer.learning_rate)}
        self.history.append(entry)
        self.last_report = time.monotonic()
        self.hooks.on_progress(self._progress(self.last_report), metrics)
        self.hooks.on_epoch_end(epoch + 1, entry,
                                self.sample(self.model) if self.sample else None)

    def _done(self):
        return (self.epoch - 1) * self.steps + self.step

    def _progress(self, now):
        """The speed and the ETA: none before timed steps; then the rate timed so far
        (validation included), the ETA never past what is left of the time budget
        (training stops there)."""
        total = self.epochs * self.steps
        done = self._done()
        eta_s = targets_per_s = None
        if self.timed_from is not None and done > self.timed_from[1]:
            elapsed_s, timed = now - self.timed_from[0], done - self.timed_from[1]
            eta_s = elapsed_s * (total - done) / timed
            left_s = self.seconds_left() if self.seconds_left else None
            if left_s is not None:
                eta_s = min(eta_s, left_s)
            if self.targets_per_step and elapsed_s > 0:
                targets_per_s = timed * self.targets_per_step / elapsed_s
        return {"epoch": self.epoch, "epochs": self.epochs, "step": self.step,
                "steps": self.steps, "fraction": done / total, "eta_seconds": eta_s,
                "targets_per_s": targets_per_s}


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


def patience_spent(epoch, best_epoch, patience):
    """True when `patience` epochs have passed since the best one (epoch numbers 1-based;
    best_epoch None: no finite loss yet). Keras' EarlyStopping rule, with min_delta 0."""
    return patience is not None and epoch - (best_epoch or 0) >= patience


class EarlyStop(keras.callbacks.Callback):
    """Stop once `patience` epochs passed without a better monitored loss.

    Keras' EarlyStopping counts its wait in memory from the start of each fit, so a
    resumed run would wait anew; this one reads the best epoch from the Checkpoint, which a
    resumed run restores, and so stops where the uninterrupted run would.
    """

    def __init__(self, checkpoint, patience):
        super().__init__()
        self.checkpoint = checkpoint
        self.patience = patience
        self.stopped = False

    def on_epoch_end(self, epoch, logs=None):
        if patience_spent(epoch + 1, self.checkpoint.best_epoch, self.patience):
            self.stopped = True
            self.model.stop_training = True


class EpochSeeds(keras.callbacks.Callback):
    """At each epoch's start, set every random-seed state in the model from (seed, epoch).

    Dropout draws its masks from its layer's keras.random.SeedGenerator, whose state (a
    variable [seed, counter]) is created when the model is built and advanced once per
    step. `model.save` does not store it, and keras.utils.set_random_seed() only seeds the
    global generators, not the ones layers already hold; so a resumed run would draw other
    masks. Setting each state at epoch begin to [f(seed, epoch, i), 0] makes epoch e's
    masks depend on e alone, in a fresh, a resumed and a repeated run alike.
    """

    def __init__(self, seed):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        states = [v for v in self.model.variables if v.name == "seed_generator_state"]
        for i, state in enumerate(states):
            # SeedSequence mixes the three numbers well; >> 1 keeps the value below 2**31,
            # within every dtype Keras uses for seed states.
            value = int(np.random.SeedSequence([self.seed, epoch, i]).generate_state(1)[0])
            state.assign(np.array([value >> 1, 0], dtype=state.dtype))
