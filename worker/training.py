"""Training: from a validated spec and a corpus to a trained model, its vocab and metrics.

train() is the whole pipeline: prepare the text, build the vocabulary, stream the windows,
build and compile the model, fit with the callbacks of worker.callbacks, and hand back the
best epoch's weights. It knows nothing of jobs or Redis: the caller passes `TrainHooks` to
hear progress and to ask for a stop.
"""

import logging
import math
from dataclasses import dataclass, field
from typing import Callable

import keras

from worker.callbacks import (Checkpoint, LearningRateDecay, Progress, Stop, StopReason,
                              epoch_metrics)
from worker.datasets import make_datasets
from worker.models import TUTORIAL, build_model
from worker.textprep import prepare_text
from worker.tf_runtime import configure_tensorflow
from worker.vocab import Vocab

log = logging.getLogger(__name__)

__all__ = ["StopReason", "TrainHooks", "TrainedModel", "train"]


def _ignore(*args):
    return None


@dataclass
class TrainHooks:
    """How the caller hears about and steers a run; the defaults do nothing."""

    on_progress: Callable[[dict, dict], None] = _ignore  # (progress, metrics)
    on_epoch_end: Callable[[int, dict], None] = _ignore  # (epoch 1-based, metrics)
    should_stop: Callable[[], bool] = lambda: False  # checked after every batch
    progress_interval_s: float = 2.0  # least time between two mid-epoch reports


@dataclass
class TrainedModel:
    model: keras.Model
    vocab: Vocab
    metrics: dict  # the returned weights' epoch: loss, val_loss, bits_per_char, perplexity..
    history: list = field(default_factory=list)  # one metrics dict per epoch run
    stop_reason: StopReason = StopReason.COMPLETED


def train(spec, text, checkpoint_dir, hooks):
    """Train the model `spec` describes on `text`; checkpoints go to `checkpoint_dir`.

    Returns the best epoch's weights (lowest val_loss, or loss without validation).
    Raises NltkDataMissingError or CorpusTooSmallError before any training starts.
    """
    training = spec["training"]
    architecture = spec["model"]["architecture"]
    seq_length = training["seq_length"]

    text = prepare_text(text, spec["preprocessing"])
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    train_data, val_data = make_datasets(
        ids, architecture, seq_length=seq_length, batch_size=training["batch_size"],
        vocab_size=vocab.size, validation_fraction=training["validation_fraction"],
        seed=training["seed"])
    log.info("training %s on %d characters, vocab %d, %d batches per epoch",
             architecture, len(ids), vocab.size, len(train_data))

    configure_tensorflow()
    keras.utils.set_random_seed(training["seed"])
    model = build_model(spec["model"], vocab.size, seq_length)
    if architecture == TUTORIAL:
        loss = keras.losses.CategoricalCrossentropy()  # softmax output, one-hot targets
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=training["learning_rate"],
                                        clipnorm=training["clip_norm"]),
        loss=loss,
    )

    monitor = "val_loss" if val_data is not None else "loss"
    stop = Stop(hooks.should_stop, training["max_seconds"])
    progress = Progress(hooks, training["epochs"], len(train_data))
    checkpoint = Checkpoint(checkpoint_dir, monitor)
    callbacks = [stop, progress, checkpoint]
    early = None
    if training["patience"] is not None:
        early = keras.callbacks.EarlyStopping(monitor=monitor, patience=training["patience"])
        callbacks.append(early)
    if training["lr_decay"] != 1.0:
        callbacks.append(LearningRateDecay(training["learning_rate"], training["lr_decay"]))

    model.fit(train_data, validation_data=val_data, epochs=training["epochs"],
              callbacks=callbacks, verbose=0)

    if stop.reason is not None:
        reason = stop.reason
    elif early is not None and early.stopped_epoch > 0:
        reason = StopReason.EARLY_STOPPING
    else:
        reason = StopReason.COMPLETED
    history = progress.history
    if checkpoint.best_weights is not None:
        model.set_weights(checkpoint.best_weights)
        chosen = history[checkpoint.best_epoch - 1]
    else:
        chosen = history[-1]  # no finite loss ever: the metrics say so
    metrics = {**epoch_metrics(chosen["loss"], chosen["val_loss"]),
               "perplexity": _perplexity(chosen), "epoch": chosen["epoch"],
               "epochs_run": len(history)}
    log.info("training ended (%s) after %d epochs; best epoch %s, bits/char %s",
             reason.value, len(history), checkpoint.best_epoch, metrics["bits_per_char"])
    return TrainedModel(model=model, vocab=vocab, metrics=metrics, history=history,
                        stop_reason=reason)


def _perplexity(entry):
    loss = entry["val_loss"] if entry["val_loss"] is not None else entry["loss"]
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf
