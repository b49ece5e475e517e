"""worker.schedule through worker.training.train on tiny models: the budget schedule's
shape by steps and by time, the time budget as the job's total across a resume, and the
averaged weights validated and saved."""

import json
import math

import keras
import numpy as np
import pytest

from tests.test_training import TEXT, Recorder, tiny_spec
from worker.datasets import make_datasets
from worker.model_files import load_model, save_model
from shared.stores.jobs import StoppedReason
from worker.training import TrainHooks, train

pytestmark = pytest.mark.keras  # trains or samples Keras models in this process

RATE = 1e-2  # the default preset's, which tiny_spec keeps
# tiny_spec's corpus: 3,240 training characters in windows of 16 = 202, batches of 8.
STEPS = 26


def budget_spec(**training):
    return tiny_spec("embedding_lstm", lr_schedule="budget", **training)


def test_by_steps_the_rate_warms_up_holds_and_cools_to_zero_at_the_last_epoch(tmp_path):
    spec = budget_spec(epochs=4, warmup_steps=5, cooldown_fraction=0.5, patience=None)
    trained = train(spec, TEXT, tmp_path, TrainHooks())
    rates = [h["learning_rate"] for h in trained.history]  # the last step's rate each epoch
    assert rates[0] == pytest.approx(RATE) and rates[1] == pytest.approx(RATE)  # held
    # Epoch 3's last step (0-based 77 of 104) is 26 steps before the end of a cool-down of
    # 52: half the rate; epoch 4's last one rate x 1/52.
    assert rates[2] == pytest.approx(RATE * (1 - 77 / 104) / 0.5)
    assert rates[3] == pytest.approx(RATE * (1 - 103 / 104) / 0.5)


def test_a_resumed_run_continues_the_step_schedule_and_averages_exactly(tmp_path):
    spec = budget_spec(epochs=4, warmup_steps=30, cooldown_fraction=0.5, ema_decay=0.9)
    whole = train(spec, TEXT, tmp_path / "a", TrainHooks())
    # The first attempt dies two steps into epoch 3: epoch 2's checkpoint is what is left.
    # (should_stop is asked after every step and once before each commit.)
    train(spec, TEXT, tmp_path / "b", Recorder(stop_after_steps=2 * (STEPS + 1) + 2).hooks())
    resumed = train(spec, TEXT, tmp_path / "b", TrainHooks(), resume=True)
    for key in ("loss", "val_loss", "learning_rate"):
        assert [h[key] for h in resumed.history] == \
            pytest.approx([h[key] for h in whole.history], rel=1e-5)
    for mine, theirs in zip(resumed.model.get_weights(), whole.model.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


def test_the_time_budget_is_the_jobs_total_across_a_resume(tmp_path):
    spec = budget_spec(epochs=2, max_seconds=30.0, warmup_steps=0, cooldown_fraction=1.0,
                       patience=None)
    train(spec, TEXT, tmp_path, TrainHooks())
    state = json.loads((tmp_path / "state.json").read_text())
    assert 0 < state["seconds_spent"] < 30.0
    # As if that attempt had trained for 28 of the job's 30 s before its worker died (a
    # tiny model cannot spend them here in a test's time): 2 s are left.
    state["seconds_spent"] = 28.0
    (tmp_path / "state.json").write_text(json.dumps(state))

    longer = spec.with_training(epochs=10_000)  # resumed for longer: only the budget stops it
    resumed = train(longer, TEXT, tmp_path, TrainHooks(), resume=True)
    assert resumed.stop_reason is StoppedReason.TIME_LIMIT
    # The attempt trains for what is left of the job's budget, not all of it again...
    train_s = sum(h["train_seconds"] for h in resumed.history[2:])
    assert train_s < 2.0 + 3.0  # its first step traces the graph: up to 2-3 s under load
    # ...and the schedule (linear by time) goes on from the time spent, not from the top,
    # down to zero where the budget ends.
    rates = [h["learning_rate"] for h in resumed.history[2:]]
    assert rates[0] <= RATE * (1 - 28.0 / 30.0) and rates == sorted(rates, reverse=True)
    assert rates[-1] < 0.2 * RATE


def test_averaged_weights_are_what_is_validated_and_saved(tmp_path):
    spec = tiny_spec("embedding_lstm", epochs=2)
    plain = train(spec, TEXT, tmp_path / "plain", TrainHooks())
    # An average that barely moves from the first step's weights: the model validated
    # and saved is then close to untrained, far worse than the weights as trained.
    spec = spec.with_training(ema_decay=0.99999)
    averaged = train(spec, TEXT, tmp_path / "averaged", TrainHooks())
    assert averaged.metrics["val_loss"] > plain.metrics["val_loss"] + 0.5
    assert averaged.metrics["val_loss"] == pytest.approx(math.log(averaged.vocab.size),
                                                         abs=0.3)
    # The saved file holds those weights: its loss on the validation windows is the metric.
    save_model(tmp_path / "model", averaged, spec, {})
    loaded = load_model(tmp_path / "model")
    training = spec.training
    _, validation = make_datasets(
        averaged.vocab.encode(TEXT), "embedding_lstm", seq_length=training.seq_length,
        batch_size=training.batch_size, vocab_size=averaged.vocab.size,
        validation_fraction=training.validation_fraction, seed=training.seed)
    losses = [keras.losses.sparse_categorical_crossentropy(y, loaded.model(x), from_logits=True)
              for x, y in (validation[i] for i in range(validation.num_batches))]
    loss = float(np.mean(np.concatenate([np.ravel(batch) for batch in losses])))
    assert loss == pytest.approx(averaged.metrics["val_loss"], rel=1e-4)
