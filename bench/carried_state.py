"""Issue 16, goal 2: the LSTM state carried from batch to batch (truncated backpropagation
through contiguous streams, as char-rnn and Zaremba et al. train) against the product's
windows from a zero state, at the same budget in one run.

The carried run cuts the training text into `batch` contiguous streams; batch k holds the
k-th window of every stream, and the state after batch k starts batch k + 1. Each epoch
starts the windows at a new random offset (0 to window - 1) from a zero state. It uses the
preset's recipe otherwise (the budget schedule's cool-down, by time). Both models are then
scored two ways on the held-out tenth: from a zero state in windows of 64 (how the
product validates, and how a user samples from a prompt), and with the state carried
through the whole held-out text.

    .venv/bin/python -m bench.carried_state [--budgets 80]
"""

import argparse
import time

import keras
import numpy as np

from bench.common import corpus, spec_from, timed_train
from worker.datasets import make_datasets
from worker.models import build_model
from worker.schedule import BudgetSchedule
from worker.tf_runtime import configure_tensorflow
from worker.vocab import Vocab


def stateful_copy(model_spec, vocab_size, batch):
    """The preset's layers with a fixed batch and `stateful=True` (state kept across calls)."""
    ids = keras.Input(batch_shape=(batch, None), dtype="int32")
    x = keras.layers.Embedding(vocab_size, model_spec.embedding_dim, name="embedding")(ids)
    for i in range(1, model_spec.layers + 1):
        x = keras.layers.LSTM(model_spec.units, return_sequences=True, stateful=True,
                              name=f"lstm_{i}")(x)
    return keras.Model(ids, keras.layers.Dense(vocab_size, name="head")(x))


def reset(model):
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


def train_carried(spec, ids, vocab_size, budget_s):
    """Train with the state carried; returns (the trained weights, steps)."""
    training = spec.training
    batch, window = training.batch_size, training.seq_length
    keras.utils.set_random_seed(training.seed)
    model = stateful_copy(spec.model, vocab_size, batch)
    model.compile(optimizer=keras.optimizers.Adam(training.learning_rate,
                                                  clipnorm=training.clip_norm),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    stream = len(ids) // batch
    streams = ids[:stream * batch].reshape(batch, stream)
    rng = np.random.default_rng(training.seed)
    schedule = BudgetSchedule(training.learning_rate, None, total_steps=10**9,
                              first_step=0, warmup_steps=training.warmup_steps,
                              cooldown_fraction=training.cooldown_fraction)
    started, step = time.monotonic(), 0
    while time.monotonic() - started < budget_s:
        reset(model)
        offset = int(rng.integers(window))
        for start in range(offset, stream - window - 1, window):
            progress = (time.monotonic() - started) / budget_s
            if progress >= 1:
                break
            model.optimizer.learning_rate = schedule.rate_at(step, progress)
            model.train_on_batch(streams[:, start:start + window],
                                 streams[:, start + 1:start + window + 1])
            step += 1
    return model.get_weights(), step


def zero_state_loss(spec, weights, ids, vocab_size):
    """The product's validation loss: windows of the held-out tenth, each from zero."""
    training = spec.training
    model = build_model(spec, vocab_size)
    model.set_weights(weights)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    _, validation = make_datasets(ids, "embedding_lstm", seq_length=training.seq_length,
                                  batch_size=training.batch_size, vocab_size=vocab_size,
                                  validation_fraction=training.validation_fraction,
                                  seed=training.seed)
    return model.evaluate(validation, verbose=0)


def carried_loss(spec, weights, val_ids, vocab_size, chunk=256):
    """Mean loss over the held-out text read once, start to end, the state carried."""
    model = stateful_copy(spec.model, vocab_size, batch=1)
    model.set_weights(weights)
    total, count = 0.0, 0
    for start in range(0, len(val_ids) - 1, chunk):
        x = val_ids[start:start + chunk + 1]
        logits = model.predict_on_batch(x[None, :-1])[0]  # traced: an eager loop is slow
        losses = keras.losses.sparse_categorical_crossentropy(x[1:], logits, from_logits=True)
        total, count = total + float(np.sum(losses)), count + len(x) - 1
    return total / count


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budgets", default="80")
    args = parser.parse_args()
    configure_tensorflow()
    text = corpus("tinyshakespeare.txt")
    spec = spec_from("default")
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    n_val = int(len(ids) * spec.training.validation_fraction)
    train_ids, val_ids = ids[:len(ids) - n_val], ids[len(ids) - n_val:]
    print(f"{'recipe':<16} {'budget s':>8} {'steps':>6} {'zero-state val':>15} "
          f"{'carried val':>12}")
    for budget in [float(b) for b in args.budgets.split(",")]:
        product = timed_train(spec_from("default", training={
            "max_seconds": budget, "epochs": 1000, "patience": None}), text)
        weights = product.trained.model.get_weights()
        print(f"{'windows (preset)':<16} {budget:>8.0f} {product.steps:>6} "
              f"{product.val_loss:>15.3f} "
              f"{carried_loss(spec, weights, val_ids, vocab.size):>12.3f}", flush=True)
        weights, steps = train_carried(spec, train_ids, vocab.size, budget)
        print(f"{'state carried':<16} {budget:>8.0f} {steps:>6} "
              f"{zero_state_loss(spec, weights, ids, vocab.size):>15.3f} "
              f"{carried_loss(spec, weights, val_ids, vocab.size):>12.3f}", flush=True)


if __name__ == "__main__":
    main()
