"""Training: from a validated spec and a corpus to a trained model, its vocab and metrics.

train() is the whole pipeline: prepare the text, build the vocabulary, stream the windows,
build and compile the model (or load it from a checkpoint to resume), fit with the
callbacks of worker.callbacks and worker.checkpoints, and hand back the best epoch's
weights. It knows nothing of jobs or Redis: the caller passes `TrainHooks` to hear progress
and to ask for a stop.

A resumed run (resume=True) gives the result the uninterrupted run would have given, to
float rounding: it restores the weights and Adam's state (last.keras), the best epoch
(best.keras, state.json) and the history, and everything that varies by epoch is a function
of the epoch number: the data order (worker.datasets), the learning rate (LearningRateDecay),
the dropout masks (EpochSeeds) and early stopping (EarlyStop). Its time budget
(`max_seconds`) counts from its own start.
"""

import logging
import math
from dataclasses import dataclass, field
from typing import Callable

import keras

from worker.callbacks import (EarlyStop, EpochSeeds, LearningRateDecay, Progress, Stop,
                              StopReason, epoch_metrics, patience_spent)
from worker.checkpoints import Checkpoint, fingerprint, load_checkpoint
from worker.datasets import make_datasets
from worker.models import TUTORIAL, build_model
from worker.textprep import prepare_text
from worker.tf_runtime import configure_tensorflow
from worker.vocab import CHAR, Vocab

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
    history: list = field(default_factory=list)  # one metrics dict per epoch, resumed ones too
    stop_reason: StopReason = StopReason.COMPLETED


def train(spec, text, checkpoint_dir, hooks, *, resume=False):
    """Train the model `spec` describes on `text`; checkpoints go to `checkpoint_dir`.

    With `resume`, continue from the checkpoint in `checkpoint_dir` if there is one of this
    spec and text (its `epochs`, `max_seconds` and `patience` may differ), else start
    afresh. Returns the best epoch's weights (lowest val_loss, or loss without validation).
    Raises NltkDataMissingError or CorpusTooSmallError before any training starts.
    """
    training = spec["training"]
    preprocessing = spec["preprocessing"]
    architecture = spec["model"]["architecture"]
    seq_length = training["seq_length"]
    level = preprocessing.get("level", CHAR)  # specs from before word level have none

    identity = fingerprint(spec, text)
    text = prepare_text(text, preprocessing)
    vocab = Vocab.from_text(text, level, preprocessing.get("max_vocab"))
    ids = vocab.encode(text)
    unit = "characters" if level == CHAR else "tokens"

    configure_tensorflow()
    resumed = None
    if resume:
        resumed = load_checkpoint(checkpoint_dir, identity, lambda: _compiled(spec, vocab))
    initial_epoch = 0 if resumed is None else resumed.epoch
    train_data, val_data = make_datasets(
        ids, architecture, seq_length=seq_length, batch_size=training["batch_size"],
        vocab_size=vocab.size, validation_fraction=training["validation_fraction"],
        seed=training["seed"], first_epoch=initial_epoch, unit=unit)
    model = _compiled(spec, vocab) if resumed is None else resumed.model
    steps = train_data.batches_per_epoch
    log.info("training %s on %d %s, vocab %d, %d batches per epoch, from epoch %d",
             architecture, len(ids), unit, vocab.size, steps, initial_epoch + 1)

    monitor = "val_loss" if val_data is not None else "loss"
    stop = Stop(hooks.should_stop, training["max_seconds"])
    progress = Progress(hooks, training["epochs"], steps, level,
                        history=[] if resumed is None else resumed.history)
    checkpoint = Checkpoint(checkpoint_dir, monitor, steps, identity,
                            progress.history, resumed)
    callbacks = [stop, progress, checkpoint, EpochSeeds(training["seed"])]
    early = None
    if training["patience"] is not None:
        early = EarlyStop(checkpoint, training["patience"])
        callbacks.append(early)
    if training["lr_decay"] != 1.0:
        callbacks.append(LearningRateDecay(training["learning_rate"], training["lr_decay"]))

    # A resumed run may have nothing left to do: all epochs run, or patience already spent.
    stopped_early = patience_spent(initial_epoch, checkpoint.best_epoch, training["patience"])
    if initial_epoch < training["epochs"] and not stopped_early:
        # The training data is an endless stream of epochs (see worker.datasets), so Keras
        # is told where an epoch ends and must not reorder its batches.
        model.fit(train_data, validation_data=val_data, epochs=training["epochs"],
                  initial_epoch=initial_epoch, steps_per_epoch=steps, shuffle=False,
                  callbacks=callbacks, verbose=0)

    if stop.reason is not None:
        reason = stop.reason
    elif stopped_early or (early is not None and early.stopped):
        reason = StopReason.EARLY_STOPPING
    else:
        reason = StopReason.COMPLETED
    history = progress.history
    if checkpoint.best_weights is not None:
        model.set_weights(checkpoint.best_weights)
        chosen = history[checkpoint.best_epoch - 1]
    else:
        chosen = history[-1]  # no finite loss ever: the metrics say so
    metrics = {**epoch_metrics(chosen["loss"], chosen["val_loss"], level),
               "perplexity": _perplexity(chosen), "epoch": chosen["epoch"],
               "epochs_run": len(history)}
    log.info("training ended (%s) after %d epochs; best epoch %s, perplexity %.4g",
             reason.value, len(history), checkpoint.best_epoch, metrics["perplexity"])
    return TrainedModel(model=model, vocab=vocab, metrics=metrics, history=history,
                        stop_reason=reason)


def _compiled(spec, vocab):
    """The model `spec` describes, freshly initialized from the spec's seed and compiled.

    A resumed run builds the same and loads the checkpoint into it, so both compile here.
    """
    training = spec["training"]
    keras.utils.set_random_seed(training["seed"])
    model = build_model(spec["model"], vocab.size, training["seq_length"])
    if spec["model"]["architecture"] == TUTORIAL:
        loss = keras.losses.CategoricalCrossentropy()  # softmax output, one-hot targets
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=training["learning_rate"],
                                        clipnorm=training["clip_norm"]),
        loss=loss,
    )
    return model


def _perplexity(entry):
    loss = entry["val_loss"] if entry["val_loss"] is not None else entry["loss"]
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf
