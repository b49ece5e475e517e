"""Issue 18: does a sweep of `--total-seconds` on tinyshakespeare find a model at least
0.03 nats/char better than the `default` preset trained for the same time?

Starts the local stack (embedded Redis, gunicorn, `--workers` training workers, one
generation worker) in a scratch directory and uploads the corpus. Then, one after the
other on the same stack and cores:

1. a sweep (POST /v1/sweeps) over units, layers, learning rate (a log range), window and
   dropout, `--trials` trials of `--trial-seconds`, `--workers` at once, budget
   `--total-seconds`, of which `--final-fraction` is kept for its final phase (the best
   trial continued alone on the training workers, from its weights: docs/sweeps.md);
2. the `default` preset with `training.max_seconds` = `--total-seconds`, as a user would
   submit it (the service sizes its model to the corpus and budget: shared/sizing/model_sizing.py).

Both run with epochs uncapped, so the time budget is what ends them (or early stopping,
the preset's patience). Both best models are then scored by one POST /v1/evaluations on
the corpus's held-out tail (the last 10%, the split both trained without), in nats per
character (bits per character x ln 2).

    .venv/bin/python -m bench.sweep_vs_default [--total-seconds 1200] [--trial-seconds 300]
        [--trials 24] [--workers 2] [--final-fraction 0.5]
"""

import argparse
import math
import os
import secrets
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench import HANDOUTS  # noqa: E402
from client.api_client import Client  # noqa: E402
from shared.stack.runner import LocalStack, free_port  # noqa: E402

CORPUS = HANDOUTS / "corpora" / "tinyshakespeare.txt"
GOAL_NATS = 0.03  # issue 18: the sweep's model must beat the default by this much
HOLDOUT = 0.1  # the default preset's validation split: neither model trained on it
# What the sweep searches: the model's size, Adam's rate, the window and dropout, around the
# `default` preset (2x128, 1e-2, 64) and the 2x256 at 3e-3 the service sizes it to at 20
# minutes (shared/sizing/model_sizing.py), which overfits there (bench/README.md, issue 18):
# dropout lets a larger model pay off, hence 384 units. No 3 layers: every 3-layer trial of
# the first two runs was pruned at its first epoch, and 2x256 is what the sizing rule already
# finds the budget worth.
SPACE = {
    "model.units": [192, 256, 384],
    "model.layers": [1, 2],
    "model.dropout": [0.0, 0.1, 0.2, 0.3],
    "training.learning_rate": {"low": 2e-3, "high": 2e-2, "log": True},
    "training.seq_length": [64, 128],
}
# Epochs uncapped (the preset's 10 would end a long budget early): time ends each run.
TRAINING = {"epochs": 1000}
TOKEN = "sweep-bench-" + secrets.token_hex(12)


def nats(bits_per_char):
    return bits_per_char * math.log(2)


def wait_sweep(api, sweep_id, timeout_s):
    deadline = time.monotonic() + timeout_s
    while True:
        sweep = api.sweep_status(sweep_id)
        if sweep["status"] != "running":
            return sweep
        if time.monotonic() > deadline:
            api.cancel_sweep(sweep_id)
            raise SystemExit(f"sweep {sweep_id} still running after {timeout_s:.0f} s")
        time.sleep(2)


def run_sweep(api, corpus_id, args):
    started = time.monotonic()
    sweep = api.sweep(corpus_id, SPACE, preset="default", training=TRAINING,
                      trial_seconds=args.trial_seconds, trials=args.trials,
                      budget_seconds=args.total_seconds, final_fraction=args.final_fraction,
                      parallel=args.workers)
    sweep = wait_sweep(api, sweep["id"], args.total_seconds + args.trial_seconds + 600)
    return sweep, time.monotonic() - started


def run_default(api, corpus_id, args):
    started = time.monotonic()
    job = api.train(corpus_id, "default",
                    training={**TRAINING, "max_seconds": args.total_seconds})
    job = api.wait(job["id"], poll_s=2, max_poll_s=5, timeout_s=args.total_seconds + 900)
    if job["status"] != "succeeded":
        raise SystemExit(f"default job {job['id']} {job['status']}: {job.get('error')}")
    return job, time.monotonic() - started


def held_out_nats(api, corpus_id, model_ids):
    """{model id: nats/char} on the corpus's held-out tail, one evaluation for all."""
    job = api.wait(api.evaluate(model_ids, corpus_id=corpus_id,
                                holdout_fraction=HOLDOUT)["id"], poll_s=2, timeout_s=1800)
    if job["status"] != "succeeded":
        raise SystemExit(f"evaluation {job['id']} {job['status']}: {job.get('error')}")
    return {row["model_id"]: nats(row["bits_per_char"]) for row in job["result"]["models"]}, \
        job["result"]["chars"]


def settings(params):
    return ", ".join(f"{field.split('.')[-1]}={value:.4g}" if isinstance(value, float)
                     else f"{field.split('.')[-1]}={value}" for field, value in params.items())


def report(args, sweep, sweep_s, default, default_s, scores, chars, loads):
    best = sweep["best"]
    print(f"\ntinyshakespeare, total {args.total_seconds:.0f} s each; sweep: {args.trials} "
          f"trials of {args.trial_seconds:.0f} s, {args.workers} at once on {args.workers} "
          f"training workers, final phase {args.final_fraction:g} of the budget; default: "
          f"1 job on 1 worker")
    print(f"load average (1 min) at start {loads[0]:.2f}, after the sweep {loads[1]:.2f}, "
          f"at the end {loads[2]:.2f}")
    print(f"\nsweep {sweep['id']}: {sweep['status']}, {sweep['trials_made']} trials made")
    print(f"{'#':>3} {'status':<10} {'rung':>4} {'val loss':>9}  settings")
    for trial in sweep["trials"]:
        loss = trial["best_val_loss"]
        mark = " <- best" if best and trial["number"] == best["number"] else ""
        print(f"{trial['number']:>3} {trial['status']:<10} {trial['rung']:>4} "
              f"{'-' if loss is None else f'{loss:.4f}':>9}  {settings(trial['params'])}"
              f"{mark}")
    final = sweep.get("final")
    if final:
        loss = "-" if final["val_loss"] is None else f"{final['val_loss']:.4f}"
        mark = " <- best" if best and best.get("final") else ""
        print(f"final phase: trial {final['number']} continued for {final['max_seconds']:.0f} s "
              f"(job {final['job_id']}): {final['status']}, val loss {loss}{mark}")
    spec = default["spec"]
    # The default job's settings of the swept fields, as the service resolved them.
    chosen = {field: spec[field.split(".")[0]][field.split(".")[1]] for field in SPACE}
    print(f"\n{'run':<9} {'wall s':>7} {'job val':>8} {'held-out nats/char':>19}  settings")
    sweep_nats = scores[best["model_id"]]
    default_nats = scores[default["result"]["model_id"]]
    which = f"trial {best['number']}" + (" continued" if best.get("final") else "")
    print(f"{'sweep':<9} {sweep_s:>7.0f} {best['val_loss']:>8.4f} {sweep_nats:>19.4f}  "
          f"{which}: {settings(best['params'])}")
    print(f"{'default':<9} {default_s:>7.0f} {default['metrics']['val_loss']:>8.4f} "
          f"{default_nats:>19.4f}  {settings(chosen)} "
          f"({default['stopped_reason']}, best epoch {default['result']['best_epoch']})")
    gain = default_nats - sweep_nats
    print(f"\nheld-out tail: {chars:,} characters. sweep better by {gain:+.4f} nats/char: "
          f"goal ({GOAL_NATS}) {'met' if gain >= GOAL_NATS else 'NOT met'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--total-seconds", type=float, default=1200.0)
    parser.add_argument("--trial-seconds", type=float, default=300.0)
    # 12 ran out at 735 s of 1200 (most pruned at their first epoch): enough that the
    # budget ends the sweep, not its trial count (bench/README.md, issue 18).
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2, help="training workers (and the "
                        "sweep's parallel trials)")
    parser.add_argument("--final-fraction", type=float, default=0.5, help="the budget's "
                        "share kept for the sweep's final phase (the service's default)")
    args = parser.parse_args()
    if not CORPUS.exists():  # as bench.common.corpus says it, without importing TensorFlow
        raise SystemExit(f"{CORPUS} not found: the benchmarks need ../shared beside the "
                         "checkout")
    loads = [os.getloadavg()[0]]
    # Evaluating 2 models on the 110k-character tail may be estimated over the default
    # 300 s ceiling of a generation-queue job.
    env = {"TEXTGEN_API_TOKENS": f"bench:{TOKEN}", "TEXTGEN_GENERATION_MAX_S": "3600"}
    with tempfile.TemporaryDirectory() as scratch, \
            LocalStack(Path(scratch) / "data", port=free_port(), env=env,
                       workers={"train": args.workers, "generate": 1}) as stack:
        api = Client(stack.url, token=TOKEN, timeout_s=60)
        corpus_id = api.upload_corpus(CORPUS)["id"]
        print(f"stack up, corpus {corpus_id}; sweep of {args.total_seconds:.0f} s", flush=True)
        sweep, sweep_s = run_sweep(api, corpus_id, args)
        loads.append(os.getloadavg()[0])
        if not sweep["best"]:
            raise SystemExit(f"sweep {sweep['id']} ended with no complete trial: "
                             f"{sweep['trials']}")
        print(f"sweep done in {sweep_s:.0f} s; default for {args.total_seconds:.0f} s",
              flush=True)
        default, default_s = run_default(api, corpus_id, args)
        scores, chars = held_out_nats(api, corpus_id, [sweep["best"]["model_id"],
                                                       default["result"]["model_id"]])
        loads.append(os.getloadavg()[0])
        report(args, sweep, sweep_s, default, default_s, scores, chars, loads)


if __name__ == "__main__":
    main()
