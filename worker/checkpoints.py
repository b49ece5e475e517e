"""Training checkpoints: what a run leaves in its checkpoint directory, and how a resumed run
picks it up.

    last.keras   the model after the last complete epoch, optimizer state included
                 (model.save stores a compiled model's optimizer variables)
    best.keras   the model after the best complete epoch (lowest monitored loss)
    state.json   the epoch last.keras holds, the best metric and epoch, the history so far,
                 and the fingerprint of what is being trained (spec and text)

Only complete epochs are written: an epoch cut short by a stop request or the time budget
is still reported, and may be returned as the best model, but a resumed run redoes it from
its start, as the uninterrupted run did, so that resuming changes nothing in the result.

Each file is written under a temporary name, then renamed, and state.json last; a crash
between two renames leaves a .keras file newer than state.json, which the optimizer's step
count (recorded in state.json) gives away: such a checkpoint is not resumed.
"""

import hashlib
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass

import keras

from shared.artifacts import atomic_write_text

log = logging.getLogger(__name__)

STATE_FORMAT = 1  # bump when state.json's keys or meaning change
# Training fields a resumed run may change: they decide when to stop, not what each epoch
# does (train to 4 epochs, then resume the same checkpoint to 10).
RESUMABLE_CHANGES = ("epochs", "max_seconds", "patience")


def fingerprint(spec, text):
    """What must not change between a checkpoint and the run that resumes it."""
    training = {k: v for k, v in spec["training"].items() if k not in RESUMABLE_CHANGES}
    digest = hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()
    identity = {"preprocessing": spec["preprocessing"], "model": spec["model"],
                "training": training, "text_sha256": digest}
    return json.loads(json.dumps(identity))  # as it reads back from state.json


@dataclass
class Resumed:
    """A checkpoint loaded back: the model and where the run it came from stood."""

    model: keras.Model  # last.keras: weights and optimizer state, compiled
    epoch: int  # complete epochs so far; fit continues with initial_epoch=epoch
    history: list  # one metrics dict per epoch so far
    best_metric: float | None
    best_epoch: int | None  # 1-based; None when no epoch had a finite loss
    best_weights: list | None  # best.keras's weights


def load_checkpoint(checkpoint_dir, identity, build):
    """Resume from `checkpoint_dir`, or None when there is nothing (consistent) to resume.

    `identity` is fingerprint() of this run: another run's checkpoint is not resumed.
    `build()` returns a new model built and compiled as the checkpointed run's was; the
    files' weights and optimizer variables are loaded into it.
    """
    state_path = checkpoint_dir / "state.json"
    if not (state_path.is_file() and (checkpoint_dir / "last.keras").is_file()):
        return None
    state = json.loads(state_path.read_text(encoding="utf-8"))
    if state.get("format") != STATE_FORMAT or state.get("fingerprint") != identity:
        log.warning("checkpoint in %s is another run's (spec or text differ); starting afresh",
                    checkpoint_dir)
        return None
    model = build()
    # Keras creates optimizer variables at the first step; loading needs them to exist.
    model.optimizer.build(model.trainable_variables)
    best_weights = None
    if state["best_epoch"] is not None:
        if not _load(model, checkpoint_dir / "best.keras", state["best_iterations"]):
            return None
        best_weights = model.get_weights()
    if not _load(model, checkpoint_dir / "last.keras", state["iterations"]):
        return None
    return Resumed(model=model, epoch=state["epoch"], history=state["history"][:state["epoch"]],
                   best_metric=state["best_metric"], best_epoch=state["best_epoch"],
                   best_weights=best_weights)


def _load(model, path, iterations):
    """Load weights and optimizer state from `path`; False if it is not the one expected."""
    if not path.is_file():
        log.warning("checkpoint file %s is missing; starting afresh", path)
        return False
    model.load_weights(path)
    if int(model.optimizer.iterations) != iterations:
        log.warning("checkpoint file %s does not match state.json (a crash between two "
                    "writes?); starting afresh", path)
        return False
    return True


class Checkpoint(keras.callbacks.Callback):
    """After each complete epoch: last.keras, best.keras when `monitor` improved, state.json.

    The best weights are also kept in memory (`best_weights`), a cut-short epoch's included,
    so train() can return the best model without reading it back. `history` is the list
    Progress appends to (Progress runs first, so it holds this epoch's entry); `steps` is
    the number of batches in a complete epoch.
    """

    def __init__(self, checkpoint_dir, monitor, steps, identity, history, resumed=None):
        super().__init__()
        self.dir = checkpoint_dir
        self.monitor = monitor
        self.steps = steps
        self.identity = identity
        self.history = history
        self.best = math.inf
        self.best_epoch = None
        self.best_weights = None
        self.best_iterations = None  # the optimizer's step count when best.keras was saved
        if resumed is not None and resumed.best_epoch is not None:
            self.best, self.best_epoch = resumed.best_metric, resumed.best_epoch
            self.best_weights = resumed.best_weights
            self.best_iterations = resumed.best_epoch * steps  # one optimizer step a batch

    def on_train_begin(self, logs=None):
        self.dir.mkdir(parents=True, exist_ok=True)

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
        iterations = int(self.model.optimizer.iterations)
        self._save("last.keras")
        if improved:
            self._save("best.keras")
            self.best_iterations = iterations
        state = {"format": STATE_FORMAT, "epoch": epoch + 1, "iterations": iterations,
                 "monitor": self.monitor,
                 "best_metric": None if self.best_epoch is None else self.best,
                 "best_epoch": self.best_epoch, "best_iterations": self.best_iterations,
                 "history": self.history, "fingerprint": self.identity}
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
