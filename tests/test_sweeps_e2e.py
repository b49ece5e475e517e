"""A tiny sweep on the real stack (gunicorn, a Celery training worker, Redis, Optuna),
started and followed with the command line, read through the API."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from client.api_client import Client
from tests.conftest import TOKENS
from tests.test_end_to_end import TEXT

REPO = Path(__file__).resolve().parents[1]
# TINY_DEFAULT (tests/test_end_to_end.py): 2 epochs, so the first rung (epoch 1) is the cut.
BASE = ["--base", "model.units=16", "--base", "model.layers=1",
        "--base", "model.embedding_dim=16", "--base", "training.seq_length=32",
        "--base", "training.batch_size=16", "--base", "training.epochs=2",
        "--base", "training.seed=3"]


def textgen(stack, *args):
    env = {**os.environ, "TEXTGEN_URL": stack.url, "TEXTGEN_TOKEN": TOKENS["alice"]}
    return subprocess.run([sys.executable, "-m", "client", *map(str, args)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=180)


@pytest.mark.slow  # three training jobs one after another on the one training worker
def test_a_tiny_sweep_runs_its_trials_prunes_a_poor_one_and_names_the_best(stack, tmp_path):
    book = tmp_path / "night.txt"
    book.write_text(TEXT)
    # A rate that learns, one that learns less, one that barely moves: the grid's order
    # is seeded, so which trial meets which at the first rung is the same every run.
    done = textgen(stack, "sweep", book, *BASE, "--set",
                   "training.learning_rate=0.03,0.003,0.00001", "--trials", 3,
                   "--trial-seconds", 20, "--parallel", 2, "--final-fraction", 0, "--follow")
    assert done.returncode == 0, done.stderr + done.stdout
    sweep_id = re.search(r"sweep (swp_\w+)", done.stderr)[1]
    last_table = done.stdout.strip().split("\n\n")[-1].splitlines()
    assert last_table[0] == f"sweep {sweep_id} succeeded: 3 of 3 trials made"
    assert last_table[1].split() == ["#", "status", "rung", "best", "val_loss", "job",
                                     "settings"]
    assert last_table[-1].startswith("best: trial ")

    api = Client(stack.url, token=TOKENS["alice"])
    sweep = api.sweep_status(sweep_id)
    assert sweep["status"] == "succeeded" and sweep["sampler"] == "grid"
    rates = sorted(t["params"]["training.learning_rate"] for t in sweep["trials"])
    assert rates == [0.00001, 0.003, 0.03]
    for trial in sweep["trials"]:
        job = api.job(trial["job_id"])
        assert job["sweep_id"] == sweep_id and job["status"] == "succeeded", job["error"]
        assert trial["rung"] == job["progress"]["epoch"] >= 1
        assert trial["best_val_loss"] == min(e["data"]["val_loss"]
                                             for e in api.all_events(job["id"])
                                             if e["type"] == "epoch_end")
        if trial["status"] == "pruned":  # stopped at the first rung, its model kept
            assert job["stopped_reason"] == "pruned" and trial["rung"] == 1
        else:
            assert job["stopped_reason"] == "epochs_done" and trial["rung"] == 2
    statuses = [t["status"] for t in sweep["trials"]]
    assert "pruned" in statuses, statuses
    best = sweep["best"]
    finished = [t for t in sweep["trials"] if t["status"] == "succeeded"]
    assert best["val_loss"] == min(t["best_val_loss"] for t in finished)
    assert best["params"]["training.learning_rate"] != 0.00001
    assert api.model(best["model_id"])["sweep_id"] == sweep_id  # in its lineage
    events, _ = api.sweep_events(sweep_id)
    pruned = [e["data"] for e in events if e["type"] == "trial_pruned"]
    assert [(p["number"], p["rung"]) for p in pruned] == [
        (t["number"], 1) for t in sweep["trials"] if t["status"] == "pruned"]
    assert [e["type"] for e in events].count("trial_ended") == 3
    for trial in sweep["trials"]:  # each epoch it reported: a point of its loss curve
        reported = [e["data"] for e in events if e["type"] == "trial_reported"
                    and e["data"]["number"] == trial["number"]]
        assert [r["rung"] for r in reported] == list(range(1, trial["rung"] + 1))
        assert min(r["val_loss"] for r in reported) == trial["best_val_loss"]
    # --follow redrew the table as the events came: trials queued, running, reporting.
    tables = done.stdout.strip().split("\n\n")
    assert len(tables) >= 4 and "running" in done.stdout
    assert events[-1]["type"] == "status" and events[-1]["data"]["status"] == "succeeded"

    shown = textgen(stack, "sweep", "status", sweep_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == last_table
    assert sweep_id not in [s["id"] for s in Client(
        stack.url, token=TOKENS["bob"]).sweeps()]


@pytest.mark.slow  # two training jobs one after another on the one training worker
def test_a_sweeps_final_phase_continues_its_best_trial_from_its_model(stack, tmp_path):
    book = tmp_path / "night.txt"
    book.write_text(TEXT)
    # One trial of 2 epochs, then the final phase: the same settings from its model, for
    # what is left of the 120 s (the search had 120 x (1 - 0.5) = 60 s of it). Both end
    # after their 2 epochs, a few seconds each: the budget is room for a busy machine.
    done = textgen(stack, "sweep", book, *BASE, "--set", "training.learning_rate=0.03",
                   "--trials", 1, "--trial-seconds", 20, "--budget-seconds", 120,
                   "--final-fraction", 0.5, "--follow")
    assert done.returncode == 0, done.stderr + done.stdout
    sweep_id = re.search(r"sweep (swp_\w+)", done.stderr)[1]
    api = Client(stack.url, token=TOKENS["alice"])
    sweep = api.sweep_status(sweep_id)
    assert sweep["status"] == "succeeded" and sweep["final_fraction"] == 0.5
    [trial] = sweep["trials"]
    final = sweep["final"]
    assert final["number"] == trial["number"] and final["status"] == "succeeded"
    assert 10 <= final["max_seconds"] < 120  # the budget left once the trial ended
    trial_job, final_job = api.job(trial["job_id"]), api.job(final["job_id"])
    assert final_job["sweep_id"] == sweep_id and final_job["sweep_final"] is True
    assert final_job["sweep_trial"] is None
    assert final_job["init_from_model"] == trial_job["result"]["model_id"]
    assert final_job["spec"] == {**trial_job["spec"], "training": {
        **trial_job["spec"]["training"], "max_seconds": final["max_seconds"]}}
    assert final_job["stopped_reason"] == "epochs_done"  # never pruned: no trial of the study
    assert final["val_loss"] == final_job["metrics"]["val_loss"]
    best = sweep["best"]
    if final["val_loss"] < trial["best_val_loss"]:  # the continued model, its lineage too
        assert best["final"] and best["job_id"] == final["job_id"]
        assert best["model_id"] == final_job["result"]["model_id"]
        model = api.model(best["model_id"])
        assert model["sweep_id"] == sweep_id
        assert model["init_from_model"] == trial_job["result"]["model_id"]
    else:
        assert not best["final"] and best["job_id"] == trial["job_id"]
    assert best["val_loss"] == min(final["val_loss"], trial["best_val_loss"])
    events, _ = api.sweep_events(sweep_id)
    assert [e["type"] for e in events if e["type"] in (
        "trial_ended", "final_started", "final_ended", "status")] == [
        "trial_ended", "final_started", "final_ended", "status"]
    ended = next(e["data"] for e in events if e["type"] == "final_ended")
    assert ended["state"] == "complete" and ended["val_loss"] == final["val_loss"]
    assert ended["improved"] is best["final"]
    # No epoch of the final job reported to the study as a trial's would.
    assert {e["data"]["job_id"] for e in events if e["type"] == "trial_reported"} == {
        trial["job_id"]}
    last_table = done.stdout.strip().split("\n\n")[-1].splitlines()
    assert last_table[-2].startswith("final: trial 0 continued for ")
    assert last_table[-1].startswith("best: trial 0")
