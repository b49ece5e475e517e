"""worker.datasets, worker.training and worker.model_files on tiny models and texts."""

import json
import math
import time

import numpy as np
import pytest

from shared.contracts.errors import ArtifactMissingError, CorpusTooSmallError
from shared.contracts.specs import TrainSpec, resolve_train_spec
from worker.checkpoints import fingerprint
from worker.datasets import make_datasets
from worker.model_files import load_model, save_model
from shared.stores.jobs import StoppedReason
from worker.training import TrainHooks, train

pytestmark = pytest.mark.keras  # trains or samples Keras models in this process

# Repetitive, so two tiny epochs are enough to see the loss fall. 3,600 characters.
TEXT = "the quick brown fox jumps over the lazy dog.\nhow vexingly quick daft zebras jump!\n" * 44

PROGRESS_KEYS = {"epoch", "epochs", "step", "steps", "fraction", "eta_seconds",
                 "targets_per_s"}
METRIC_KEYS = {"loss", "val_loss", "bits_per_char"}


def tiny_spec(architecture, *, model=None, preprocessing=None, **training):
    """The default preset shrunk to a model that trains in a second or two, as a TrainSpec;
    `model` and `preprocessing` change fields of those sections, the keywords training's."""
    if architecture == "embedding_lstm":
        tiny = {"model": {"units": 16, "layers": 1, "embedding_dim": 8},
                "training": {"seq_length": 16, "batch_size": 8, "epochs": 2}}
    else:
        tiny = {"model": {"architecture": "tutorial", "units": 8, "layers": 2, "dropout": 0.2},
                "training": {"seq_length": 10, "batch_size": 64, "epochs": 2}}
    return resolve_train_spec("default", {"preprocessing": preprocessing or {},
                                          "model": {**tiny["model"], **(model or {})},
                                          "training": {**tiny["training"], **training}})


class Recorder:
    """TrainHooks that remember every call."""

    def __init__(self, stop_after_steps=None):
        self.progress = []
        self.epoch_ends = []
        self.stop_after_steps = stop_after_steps
        self.stop_checks = 0

    def hooks(self):
        return TrainHooks(on_progress=lambda p, m: self.progress.append((p, m)),
                          on_epoch_end=lambda e, m, sample: self.epoch_ends.append((e, m)),
                          should_stop=self.should_stop, progress_interval_s=0.0)

    def should_stop(self):
        self.stop_checks += 1
        return self.stop_after_steps is not None and self.stop_checks >= self.stop_after_steps


def assert_finite_metrics(metrics, with_validation=True):
    assert METRIC_KEYS <= set(metrics)
    assert math.isfinite(metrics["loss"]) and math.isfinite(metrics["bits_per_char"])
    if with_validation:
        assert math.isfinite(metrics["val_loss"])
        assert metrics["bits_per_char"] == pytest.approx(metrics["val_loss"] / math.log(2))
    else:
        assert metrics["val_loss"] is None


def test_embedding_lstm_trains_reports_checkpoints_and_saves(tmp_path):
    recorder = Recorder()
    spec = tiny_spec("embedding_lstm")
    trained = train(spec, TEXT, tmp_path / "ckpt", recorder.hooks())

    assert recorder.progress, "no progress reported"
    for progress, metrics in recorder.progress:
        assert set(progress) == PROGRESS_KEYS and set(metrics) == METRIC_KEYS
        assert progress["epochs"] == 2 and 1 <= progress["epoch"] <= 2
        assert 1 <= progress["step"] <= progress["steps"] and 0 < progress["fraction"] <= 1
    assert recorder.progress[-1][0]["fraction"] == 1.0
    # The speed, once steps after the first are timed (targets: the batch's tokens).
    assert recorder.progress[-1][0]["targets_per_s"] > 0
    assert [e for e, _ in recorder.epoch_ends] == [1, 2]
    for _, entry in recorder.epoch_ends:
        assert_finite_metrics(entry)
        assert entry["perplexity"] == pytest.approx(math.exp(entry["val_loss"]))
        assert entry["targets_per_s"] > 0 and entry["learning_rate"] > 0
    first, second = (m["loss"] for _, m in recorder.epoch_ends)
    assert second < first

    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    assert state["epoch"] == 2 and state["monitor"] == "val_loss"
    # Epoch-numbered files, pruned down to the ones state.json names.
    assert state["last_file"] == "epoch-0002-a1.keras"
    stored = {p.name for p in (tmp_path / "ckpt").iterdir()}
    assert stored == {"state.json", state["last_file"], state["best_file"]}
    assert trained.stop_reason is StoppedReason.EPOCHS_DONE
    assert trained.metrics["epochs_run"] == 2 and len(trained.history) == 2
    assert trained.metrics["perplexity"] == pytest.approx(math.exp(trained.metrics["val_loss"]))

    save_model(tmp_path / "models" / "m1", trained, spec, {"job_id": "j1"})
    loaded = load_model(tmp_path / "models" / "m1")
    assert loaded.vocab.tokens == trained.vocab.tokens
    assert isinstance(loaded.spec, TrainSpec) and loaded.spec == spec
    config = json.loads((tmp_path / "models" / "m1" / "config.json").read_text())
    assert config["architecture"] == "embedding_lstm"
    assert config["vocab_size"] == trained.vocab.size
    assert config["lineage"] == {"job_id": "j1"}
    assert config["training"] == spec.training.model_dump()
    ids = trained.vocab.encode(TEXT[:40])[None, :]
    np.testing.assert_allclose(loaded.model(ids, training=False),
                               trained.model(ids, training=False), atol=1e-6)
    metrics = json.loads((tmp_path / "models" / "m1" / "metrics.json").read_text())
    assert len(metrics["history"]) == 2 and metrics["stop_reason"] == "epochs_done"


def test_tutorial_trains_without_validation(tmp_path):
    recorder = Recorder()
    spec = tiny_spec("tutorial", validation_fraction=0.0, epochs=1)
    trained = train(spec, TEXT, tmp_path / "ckpt", recorder.hooks())
    assert [e for e, _ in recorder.epoch_ends] == [1]
    assert_finite_metrics(recorder.epoch_ends[0][1], with_validation=False)
    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    assert state["best_file"] == state["last_file"] == "epoch-0001-a1.keras"
    assert (tmp_path / "ckpt" / state["best_file"]).is_file()
    # Tutorial windows: stride 1, so one per character after the first seq_length.
    assert recorder.progress[-1][0]["steps"] == math.ceil((len(TEXT) - 10) / 64)
    # The model takes ids and gives a distribution over the next character.
    probs = trained.model(trained.vocab.encode(TEXT[:10])[None, :], training=False)
    assert probs.shape == (1, trained.vocab.size)
    assert float(np.sum(probs)) == pytest.approx(1.0, abs=1e-5)

    save_model(tmp_path / "m", trained, spec, {})
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["output"].startswith("softmax")
    # A model saved before word level existed: no level, no max_vocab; a character model.
    del config["preprocessing"]["level"], config["preprocessing"]["max_vocab"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    assert load_model(tmp_path / "m").spec == spec


def test_train_takes_the_validated_spec_not_a_dict(tmp_path):
    # A stored spec is validated once, where it is read: train() never sees the dict.
    with pytest.raises(TypeError, match="TrainSpec"):
        train(tiny_spec("embedding_lstm").model_dump(), TEXT, tmp_path, TrainHooks())


def test_should_stop_ends_training_within_the_first_epoch(tmp_path):
    recorder = Recorder(stop_after_steps=3)
    trained = train(tiny_spec("embedding_lstm"), TEXT, tmp_path, recorder.hooks())
    last_progress = recorder.progress[-1][0]
    assert last_progress["epoch"] == 1
    assert last_progress["step"] == 3 < last_progress["steps"]
    assert trained.stop_reason is StoppedReason.CANCELLED
    assert len(trained.history) == 1
    # A cut-short epoch is not checkpointed: a resumed run redoes it from its start.
    assert not (tmp_path / "state.json").exists()


def test_same_seed_same_loss(tmp_path):
    spec = tiny_spec("embedding_lstm", epochs=1)
    first = train(spec, TEXT, tmp_path / "a", TrainHooks())
    # resume=True without a checkpoint is a fresh start.
    second = train(spec, TEXT, tmp_path / "b", TrainHooks(), resume=True)
    assert first.metrics["loss"] == second.metrics["loss"]
    assert first.metrics["val_loss"] == second.metrics["val_loss"]


def test_resumed_run_matches_the_uninterrupted_one(tmp_path):
    # The old schedule (lr_decay) and patience on, so the schedule and the early-stopping
    # state must resume too; dropout on, so must the dropout masks. (Without dropout it
    # passes as well, but adds 15 s and covers nothing this run does not: weights, Adam's
    # state and data order are checked here too.)
    spec = tiny_spec("embedding_lstm", model={"dropout": 0.3}, epochs=4, lr_decay=0.7,
                     patience=3, lr_schedule="epoch_decay")
    whole = train(spec, TEXT, tmp_path / "a", TrainHooks())

    # Two epochs, then the same checkpoint resumed to four (epochs may change on resume).
    train(spec.with_training(epochs=2), TEXT, tmp_path / "b", TrainHooks())
    recorder = Recorder()
    resumed = train(spec, TEXT, tmp_path / "b", recorder.hooks(), resume=True)

    assert [e for e, _ in recorder.epoch_ends] == [3, 4]
    assert {p["epoch"] for p, _ in recorder.progress} == {3, 4}
    assert recorder.progress[0][0]["fraction"] > 0.5 and recorder.progress[-1][0]["fraction"] == 1
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    for key in ("loss", "val_loss", "learning_rate"):
        assert [h[key] for h in resumed.history] == \
            pytest.approx([h[key] for h in whole.history], rel=1e-5)
    assert resumed.metrics["epoch"] == whole.metrics["epoch"]
    assert resumed.metrics["epochs_run"] == 4
    for mine, theirs in zip(resumed.model.get_weights(), whole.model.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    state = json.loads((tmp_path / "b" / "state.json").read_text())
    assert state["epoch"] == 4 and len(state["history"]) == 4


def test_only_when_to_stop_may_change_on_resume():
    spec = tiny_spec("embedding_lstm")
    longer = tiny_spec("embedding_lstm", epochs=9, max_seconds=60.0, patience=1)
    assert fingerprint(longer, TEXT) == fingerprint(spec, TEXT)
    assert fingerprint(tiny_spec("embedding_lstm", seed=2), TEXT) != fingerprint(spec, TEXT)
    assert fingerprint(tiny_spec("embedding_lstm", lr_decay=0.5), TEXT) != \
        fingerprint(spec, TEXT)
    assert fingerprint(spec, TEXT + "!") != fingerprint(spec, TEXT)


@pytest.mark.parametrize("architecture", ["embedding_lstm", "tutorial"])
def test_corpus_too_small(tmp_path, architecture):
    with pytest.raises(CorpusTooSmallError, match="5 characters"):
        train(tiny_spec(architecture), "abcde", tmp_path, TrainHooks())


def test_validation_split_too_small_for_one_window():
    ids = np.arange(100, dtype=np.int32) % 7
    with pytest.raises(CorpusTooSmallError, match="validation"):
        make_datasets(ids, "embedding_lstm", seq_length=16, batch_size=4, vocab_size=7,
                      validation_fraction=0.1, seed=1)


def test_datasets_windows_and_shuffle():
    ids = np.arange(1000, dtype=np.int32) % 50
    train_data, val_data = make_datasets(ids, "embedding_lstm", seq_length=10, batch_size=8,
                                         vocab_size=50, validation_fraction=0.2, seed=3)
    # 800 training ids: (800 - 1) // 10 = 79 windows, the last batch partial (7 of 8).
    assert train_data.batches_per_epoch == 10 and len(train_data[9][0]) == 7
    assert train_data.num_batches is None  # endless: epoch after epoch
    x, y = train_data[0]
    assert x.shape == y.shape == (8, 10) and x.dtype == np.int32
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
    assert np.all(train_data.starts % 10 == 0)
    # Validation starts where training ends, is not shuffled, and is one pass.
    np.testing.assert_array_equal(val_data[0][0][0], ids[800:810])
    assert val_data.num_batches == val_data.batches_per_epoch == 3

    tutorial, _ = make_datasets(ids, "tutorial", seq_length=10, batch_size=8, vocab_size=50,
                                validation_fraction=0.0, seed=3)
    assert len(tutorial.starts) == 990
    x, y = tutorial[0]
    assert x.shape == (8, 10) and y.shape == (8, 50)
    np.testing.assert_array_equal(y.argmax(axis=1), ids[tutorial.order(0)[:8] + 10])

    # Batch k belongs to epoch k // 10; each epoch is a permutation of the windows, a
    # different one each epoch, the same for the same seed.
    def epoch_firsts(data, epoch, first_epoch=0):
        k = (epoch - first_epoch) * data.batches_per_epoch
        return np.concatenate([data[k + i][0][:, 0] for i in range(data.batches_per_epoch)])

    epochs = [epoch_firsts(train_data, e) for e in range(2)]
    for firsts in epochs:
        np.testing.assert_array_equal(np.sort(firsts), np.sort(np.arange(79) * 10 % 50))
    assert not np.array_equal(*epochs)
    again, _ = make_datasets(ids, "embedding_lstm", seq_length=10, batch_size=8,
                             vocab_size=50, validation_fraction=0.2, seed=3)
    np.testing.assert_array_equal(epoch_firsts(again, 1), epochs[1])
    # A stream that starts at epoch 1 (a resumed run) starts with epoch 1's batches.
    resumed, _ = make_datasets(ids, "embedding_lstm", seq_length=10, batch_size=8,
                               vocab_size=50, validation_fraction=0.2, seed=3, first_epoch=1)
    np.testing.assert_array_equal(epoch_firsts(resumed, 1, first_epoch=1), epochs[1])


def test_load_missing_model_dir(tmp_path):
    with pytest.raises(ArtifactMissingError):
        load_model(tmp_path / "nope")


@pytest.mark.parametrize("architecture", ["embedding_lstm", "tutorial"])
def test_each_epoch_end_carries_a_sample_of_the_model_then(tmp_path, architecture):
    samples = []
    hooks = TrainHooks(on_epoch_end=lambda epoch, metrics, sample: samples.append(sample),
                       sample_length=30)
    train(tiny_spec(architecture), TEXT, tmp_path / "ckpt", hooks)
    assert len(samples) == 2
    for sample in samples:
        assert len(sample) == 30 and set(sample) <= set(TEXT)


def test_early_stopping_keeps_the_best_epoch(tmp_path):
    # Training text the model learns; a validation tail it gets worse at as it does.
    text = "ab" * 2000 + "qzxjkvwqzxjkvwmpqzxjkvwqzx" * 17
    spec = tiny_spec("embedding_lstm", epochs=20, patience=2, lr_decay=1.0)
    trained = train(spec, text, tmp_path, TrainHooks())
    assert trained.stop_reason is StoppedReason.EARLY_STOPPING
    epochs_run = trained.metrics["epochs_run"]
    assert epochs_run < 20 and trained.metrics["epoch"] == epochs_run - 2
    best = min(h["val_loss"] for h in trained.history)
    assert trained.metrics["val_loss"] == best


def test_the_time_limit_stops_training(tmp_path):
    spec = tiny_spec("embedding_lstm", epochs=10_000, max_seconds=1.0)
    started = time.monotonic()
    trained = train(spec, TEXT, tmp_path, TrainHooks())
    assert trained.stop_reason is StoppedReason.TIME_LIMIT
    assert time.monotonic() - started < 30


def test_the_eta_is_blank_until_timed_and_never_past_the_time_budget(tmp_path):
    reports = []  # (seconds since start, eta_seconds)
    hooks = TrainHooks(on_progress=lambda p, m: reports.append(
        (time.monotonic() - started, p["eta_seconds"])), progress_interval_s=0.0)
    # 10,000 epochs at this speed would take hours; the budget (which includes the
    # first step's seconds of tracing) ends it in 6 s.
    budget_s = 6.0
    spec = tiny_spec("embedding_lstm", epochs=10_000, max_seconds=budget_s)
    started = time.monotonic()
    train(spec, TEXT, tmp_path, hooks)
    assert reports[0][1] is None  # the first step: nothing timed yet, so no guess
    timed = [(at_s, eta_s) for at_s, eta_s in reports if eta_s is not None]
    assert len(timed) > 10, reports
    # At most the budget's rest. Its clock started before the first report (after the
    # model was built), so the rest is at most the budget less the time since that report.
    first_s = reports[0][0]
    assert all(eta_s <= budget_s - (at_s - first_s) + 0.1 for at_s, eta_s in timed), \
        timed[:5]


def test_an_all_stopword_text_is_too_small_not_an_internal_error(tmp_path):
    spec = tiny_spec("tutorial", preprocessing={"mode": "tutorial"})
    with pytest.raises(CorpusTooSmallError, match="empty once prepared"):
        train(spec, "The and of a to in is it. " * 50, tmp_path, TrainHooks())


def test_the_default_model_can_use_the_fused_cudnn_kernel_on_a_gpu():
    """Keras runs an LSTM layer with cuDNN only with these settings (keras.layers.LSTM's
    documentation); a GPU worker trains the saved model's own layers."""
    from worker.models import build_model

    spec = resolve_train_spec("default", {})
    model = build_model(spec, vocab_size=65)
    lstms = [layer for layer in model.layers if layer.name.startswith("lstm_")]
    assert len(lstms) == spec.model.layers
    for layer in lstms:
        config = layer.get_config()
        assert (config["activation"], config["recurrent_activation"]) == ("tanh", "sigmoid")
        assert config["recurrent_dropout"] == 0 and config["use_bias"] is True
        assert config["unroll"] is False
