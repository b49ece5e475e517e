"""The job's budget and what follows it: the learning-rate schedule and averaged weights.

A job's `max_seconds` is its total across attempts: `Budget` starts from the seconds a
resumed checkpoint had spent, so a resumed attempt gets only what is left, and the
schedule continues where it stopped.

`BudgetSchedule` (spec `lr_schedule: budget`) is warmup-stable-decay: a short linear
warm-up, the spec's rate held, then a linear cool-down to zero over the last
`cooldown_fraction` of the budget (Hägele et al. 2024; MiniCPM). Progress through the
budget is elapsed time over `max_seconds` or steps over `epochs` x steps per epoch,
whichever is further, so the rate reaches zero where training ends. By steps it is a
function of the step number alone, so a resumed run repeats it exactly; by time it follows
the clock. The old rule (x `lr_decay` each epoch) stays as callbacks.LearningRateDecay.

`AveragedWeights` validates, samples and keeps the exponential moving average of the
weights that Keras' optimizer keeps when compiled with `use_ema` (spec `ema_decay`).
"""

import time

import keras


class Budget:
    """Seconds of training spent by this job, this attempt's and its predecessors'."""

    def __init__(self, max_seconds, spent_before=0.0):
        self.max_seconds = max_seconds  # None: no time budget
        self.spent_before = spent_before  # by earlier attempts, from the checkpoint
        self.started = None

    def start(self):
        self.started = time.monotonic()

    def spent(self):
        running = 0.0 if self.started is None else time.monotonic() - self.started
        return self.spent_before + running

    def fraction(self):
        """Share of the time budget spent (0 without one)."""
        return 0.0 if self.max_seconds is None else self.spent() / self.max_seconds

    def spent_out(self):
        return self.max_seconds is not None and self.spent() >= self.max_seconds


class BudgetSchedule(keras.callbacks.Callback):
    """Set the rate before every step: warm-up, hold, cool-down to zero (module docstring).

    `total_steps`: epochs x steps per epoch; `first_step`: the optimizer steps taken before
    this fit (a resumed run's), so the warm-up and the step-based progress carry on.
    """

    def __init__(self, rate, budget, *, total_steps, first_step, warmup_steps,
                 cooldown_fraction):
        super().__init__()
        self.rate = rate
        self.budget = budget
        self.total_steps = total_steps
        self.step = first_step
        self.warmup_steps = warmup_steps
        self.cooldown_fraction = cooldown_fraction
        self.current = None

    def rate_at(self, step, progress):
        """The rate for optimizer step `step` (0-based) at `progress` (0 to 1) through the
        budget."""
        factor = 1.0
        if step < self.warmup_steps:
            factor = (step + 1) / self.warmup_steps
        if self.cooldown_fraction > 0:
            factor = min(factor, max(0.0, (1.0 - progress) / self.cooldown_fraction))
        elif progress >= 1.0:
            factor = 0.0
        return self.rate * factor

    def on_train_batch_begin(self, batch, logs=None):
        progress = max(self.budget.fraction(), self.step / self.total_steps)
        rate = self.rate_at(self.step, progress)
        if rate != self.current:  # held most of the run: skip the variable write
            self.model.optimizer.learning_rate = rate
            self.current = rate

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1


class AveragedWeights(keras.callbacks.Callback):
    """Put the optimizer's moving average of the weights into the model for validation and
    for everything after it at an epoch's end: the epoch sample, the best weights, the
    checkpoint file; swap the trained weights back before the next epoch trains.

    The checkpoint file so holds the average as the model's weights and the trained ones
    in the optimizer's average slots: a resumed run (`swapped=True`) swaps them back at
    its first epoch's start, as the uninterrupted run did. Swaps go through a NumPy copy,
    not Keras' add-subtract trick (SwapEMAWeights), which rounds: a resumed run must
    continue from the very same numbers.
    """

    def __init__(self, swapped=False):
        super().__init__()
        self.swapped = swapped

    def _swap(self):
        optimizer = self.model.optimizer
        for weights, average in zip(optimizer._trainable_variables,
                                    optimizer._model_variables_moving_average):
            trained = keras.ops.convert_to_numpy(weights)
            weights.assign(average)
            average.assign(trained)
        self.swapped = not self.swapped

    def on_epoch_begin(self, epoch, logs=None):
        if self.swapped:
            self._swap()

    def on_test_begin(self, logs=None):
        if not self.swapped:
            self._swap()

    def on_epoch_end(self, epoch, logs=None):
        if not self.swapped:  # no validation ran this epoch
            self._swap()
