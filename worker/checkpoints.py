"""Training checkpoints: what a run commits after each complete epoch, and how a resumed run
picks it up, through the job's checkpoint store (shared/stores/checkpoint_store.py).

    epoch-0003-a2.keras  the model after epoch 3, optimizer state included (model.save
                         stores a compiled model's optimizer variables), written by
                         attempt 2: a name is written once, so two attempts never write
                         the same object and no file is ever overwritten
    state.json           the commit point, written last: the files of the last and of the
                         best complete epoch, the epoch, the best metric, the history so
                         far, the training seconds spent (the time budget is the job's
                         total), and the fingerprint of what is being trained (spec, text)

A crash before state.json is replaced leaves the previous state and the files it names
intact, so a resume loses at most the epoch in progress. Files no longer named are pruned
after the commit. A resume reads state.json and fetches exactly the files it names, from
whichever host wrote them.

Only complete epochs are written: an epoch cut short by a stop request or the time budget
is still reported, and may be returned as the best model, but a resumed run redoes it from
its start, as the uninterrupted run did, so that resuming changes nothing in the result.
"""

import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import keras

from shared.stores.checkpoint_store import CheckpointStore
from shared.contracts.errors import ArtifactMissingError
from shared.contracts.specs import TrainSpec

log = logging.getLogger(__name__)

STATE_FORMAT = 2  # bump when state.json's keys or meaning change (2: epoch files)
# Training fields a resumed run may change: they decide when to stop, not what each epoch
# does (train to 4 epochs, then resume the same checkpoint to 10).
RESUMABLE_CHANGES = {"epochs", "max_seconds", "patience"}

_EPOCH_FILE = re.compile(r"^epoch-(\d{4,})-a(\d+)\.keras$")


def epoch_file(epoch, attempt):
    """The name of the model after `epoch` (1-based) as `attempt` wrote it."""
    return f"epoch-{epoch:04d}-a{attempt}.keras"


def as_checkpoint_store(target):
    """A CheckpointStore, or a local directory (tests, benchmarks) made into one."""
    if isinstance(target, CheckpointStore):
        return target
    return CheckpointStore.in_directory(Path(target))


def fingerprint(spec: TrainSpec, text):
    """What must not change between a checkpoint and the run that resumes it."""
    digest = hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()
    identity = {**spec.model_dump(include={"preprocessing", "model"}),
                "training": spec.training.model_dump(exclude=RESUMABLE_CHANGES),
                "text_sha256": digest}
    return json.loads(json.dumps(identity))  # as it reads back from state.json


@dataclass
class Resumed:
    """A checkpoint loaded back: the model and where the run it came from stood."""

    model: keras.Model  # the last epoch's file: weights and optimizer state, compiled
    epoch: int  # complete epochs so far; fit continues with initial_epoch=epoch
    history: list  # one metrics dict per epoch so far
    best_metric: float | None
    best_epoch: int | None  # 1-based; None when no epoch had a finite loss
    best_file: str | None  # the best epoch's file, still named by the next state.json
    best_weights: list | None  # its weights
    seconds_spent: float  # training time of the job so far, toward its max_seconds


def load_checkpoint(store, identity, build):
    """Resume from the CheckpointStore `store`, or None when there is nothing (consistent)
    to resume.

    `identity` is fingerprint() of this run: another run's checkpoint is not resumed.
    `build()` returns a new model built and compiled as the checkpointed run's was; the
    files' weights and optimizer variables are loaded into it.
    """
    state = store.read_state()
    if state is None:
        return None
    if state.get("format") != STATE_FORMAT or state.get("fingerprint") != identity:
        log.warning("checkpoint state is another run's (format, spec or text differ); "
                    "starting afresh")
        return None
    model = build()
    # Keras creates optimizer variables at the first step; loading needs them to exist.
    model.optimizer.build(model.trainable_variables)
    best_weights = None
    if state["best_epoch"] is not None:
        if not _load(model, store, state["best_file"], state["best_iterations"]):
            return None
        best_weights = model.get_weights()
    if not _load(model, store, state["last_file"], state["iterations"]):
        return None
    return Resumed(model=model, epoch=state["epoch"], history=state["history"][:state["epoch"]],
                   best_metric=state["best_metric"], best_epoch=state["best_epoch"],
                   best_file=state["best_file"], best_weights=best_weights,
                   # States written before the budget counted across attempts have none.
                   seconds_spent=state.get("seconds_spent") or 0.0)


def _load(model, store, name, iterations):
    """Load weights and optimizer state from the stored file `name`; False if it is not
    there or not the one state.json expects."""
    try:
        with store.fetched(name) as path:
            model.load_weights(path)
    except ArtifactMissingError:
        log.warning("checkpoint file %s named by state.json is missing; starting afresh", name)
        return False
    if int(model.optimizer.iterations) != iterations:
        log.warning("checkpoint file %s does not match state.json; starting afresh", name)
        return False
    return True


class Checkpoint(keras.callbacks.Callback):
    """After each complete epoch: the epoch's file, then state.json, then pruning.

    The best weights are also kept in memory (`best_weights`), a cut-short epoch's included,
    so train() can return the best model without reading it back. `history` is the list
    Progress appends to (Progress runs first, so it holds this epoch's entry); `steps` is
    the number of batches in a complete epoch.
    """

    def __init__(self, store, monitor, steps, identity, history, resumed=None, fence=None,
                 seconds_spent=None):
        super().__init__()
        self.store = store  # shared.stores.checkpoint_store.CheckpointStore
        # Asked right before each commit: true (or raising) when this run may no longer
        # write (its job was cancelled or handed to another attempt).
        self.fence = fence
        self.seconds_spent = seconds_spent  # () -> the job's training seconds so far
        self.monitor = monitor
        self.steps = steps
        self.identity = identity
        self.history = history
        self.best = math.inf
        self.best_epoch = None
        self.best_weights = None
        self.best_file = None  # the stored file of the best complete epoch
        self.best_iterations = None  # the optimizer's step count in that file
        if resumed is not None and resumed.best_epoch is not None:
            self.best, self.best_epoch = resumed.best_metric, resumed.best_epoch
            self.best_weights = resumed.best_weights
            self.best_file = resumed.best_file
            self.best_iterations = resumed.best_epoch * steps  # one optimizer step a batch

    def on_epoch_begin(self, epoch, logs=None):
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches = batch + 1

    def on_epoch_end(self, epoch, logs=None):
        value = float(logs[self.monitor])
        # A NaN loss never counts as an improvement.
        improved = math.isfinite(value) and value < self.best
        if improved:
            self.best, self.best_epoch = value, epoch + 1
            self.best_weights = self.model.get_weights()
        if self.batches < self.steps:
            return  # cut short: a resumed run redoes this epoch (see the module docstring)
        if not math.isfinite(float(logs["loss"])):
            return  # diverged: the last good epoch stays the one to resume from
        if self.fence is not None and self.fence():
            return
        iterations = int(self.model.optimizer.iterations)
        name = epoch_file(epoch + 1, self.store.attempt)
        self.store.save_file(name, self.model.save)
        if self.fence is not None and self.fence():
            return  # lost while saving (seconds for a big model): the last moment to ask
        if improved:
            self.best_file, self.best_iterations = name, iterations
        state = {"format": STATE_FORMAT, "epoch": epoch + 1, "iterations": iterations,
                 "last_file": name, "monitor": self.monitor,
                 "best_metric": None if self.best_epoch is None else self.best,
                 "best_epoch": self.best_epoch, "best_file": self.best_file,
                 "best_iterations": self.best_iterations,
                 "history": self.history, "fingerprint": self.identity,
                 "attempt": self.store.attempt,
                 "seconds_spent": self.seconds_spent() if self.seconds_spent else None}
        self.store.write_state(state)  # the commit point
        self._prune(keep={name, self.best_file})

    def _prune(self, keep):
        """Delete the files the committed state no longer names, except a later attempt's:
        an attempt that lost its job (a stale one) must not delete its successor's files."""
        for name in self.store.names():
            match = _EPOCH_FILE.match(name)
            if name not in keep and (match is None or int(match[2]) <= self.store.attempt):
                self.store.delete(name)
