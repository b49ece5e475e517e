"""Checkpoints through the artifact store, on both backends: state.json as the commit point,
pruning, and a resume on another host from the store alone."""

import dataclasses

import numpy as np
import pytest

from shared.stores.artifacts import open_artifact_store
from tests.test_training import TEXT, Recorder, tiny_spec
from worker.training import TrainHooks, train

pytestmark = pytest.mark.keras  # trains or samples Keras models in this process


def other_host(store_settings, tmp_path, name):
    """The same store seen from a host with a scratch cache of its own."""
    return open_artifact_store(dataclasses.replace(store_settings, cache_dir=tmp_path / name))


def test_resume_on_another_host_matches_the_uninterrupted_run(store_settings, tmp_path):
    spec = tiny_spec("embedding_lstm", epochs=4, lr_decay=0.7, patience=3,
                     lr_schedule="epoch_decay")
    whole = train(spec, TEXT, tmp_path / "whole", TrainHooks())

    first = other_host(store_settings, tmp_path, "host-a")
    train(spec.with_training(epochs=2), TEXT, first.checkpoints("job_1", 1), TrainHooks())
    second = other_host(store_settings, tmp_path, "host-b")
    recorder = Recorder()
    resumed = train(spec, TEXT, second.checkpoints("job_1", 2), recorder.hooks(), resume=True)

    assert [e for e, _ in recorder.epoch_ends] == [3, 4]
    assert [h["loss"] for h in resumed.history] == \
        pytest.approx([h["loss"] for h in whole.history], rel=1e-5)
    for mine, theirs in zip(resumed.model.get_weights(), whole.model.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    checkpoints = second.checkpoints("job_1", 2)
    state = checkpoints.read_state()
    assert state["epoch"] == 4 and state["attempt"] == 2
    assert state["last_file"] == "epoch-0004-a2.keras"
    # Pruned: only what the committed state names is left.
    assert set(checkpoints.names()) == {state["last_file"], state["best_file"]}


def test_a_crash_before_the_commit_loses_only_the_epoch_in_progress(store):
    spec = tiny_spec("embedding_lstm", epochs=2)
    train(spec, TEXT, store.checkpoints("job_2", 1), TrainHooks())
    before = store.checkpoints("job_2", 1).read_state()
    # Attempt 1 dies after writing epoch 3's file, before committing state.json.
    crashed = store.checkpoints("job_2", 1)
    crashed.save_file("epoch-0003-a1.keras", lambda path: path.write_bytes(b"half an epoch"))
    # A later attempt's file (a successor still running) is never an older one's to prune.
    store.checkpoints("job_2", 5).save_file("epoch-0001-a5.keras",
                                            lambda path: path.write_bytes(b"theirs"))
    assert store.checkpoints("job_2", 2).read_state() == before

    recorder = Recorder()
    longer = tiny_spec("embedding_lstm", epochs=3)
    train(longer, TEXT, store.checkpoints("job_2", 2), recorder.hooks(), resume=True)
    assert [e for e, _ in recorder.epoch_ends] == [3]
    state = store.checkpoints("job_2", 2).read_state()
    assert state["epoch"] == 3 and state["last_file"] == "epoch-0003-a2.keras"
    assert set(store.checkpoints("job_2", 2).names()) == \
        {state["last_file"], state["best_file"], "epoch-0001-a5.keras"}


def test_a_state_naming_a_missing_file_starts_afresh(store):
    spec = tiny_spec("embedding_lstm", epochs=2)
    train(spec, TEXT, store.checkpoints("job_3", 1), TrainHooks())
    checkpoints = store.checkpoints("job_3", 2)
    checkpoints.delete(checkpoints.read_state()["last_file"])
    recorder = Recorder()
    train(spec, TEXT, checkpoints, recorder.hooks(), resume=True)
    assert [e for e, _ in recorder.epoch_ends] == [1, 2]
