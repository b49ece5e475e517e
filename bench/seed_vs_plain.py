"""Goal 3: seconds per step of our `seed` preset against the tutorial's plain Keras script.

Both train on frankenstein-2.txt after the tutorial's preprocessing: the plain script
(bench/plain_tutorial.py) with its own windows and model.fit, `seed` through
worker.training.train. Each side runs in its own process, since TensorFlow's thread pools
are per process and the two set them differently, alternating plain, seed, plain, seed...
so that load from elsewhere on the machine falls on both. A side's figure is the median
step time after its first `WARMUP_STEPS` (tracing) over all its rounds.

    .venv/bin/python -m bench.seed_vs_plain [--rounds 3] [--steps 12]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import corpus, spec_from

WARMUP_STEPS = 2  # the first steps trace the graph: not the steady speed
SIDES = ("plain", "seed")


def seed_step_end_times(text, steps):
    """Train the `seed` preset on `text` (raw: train() prepares it) for `steps` steps."""
    from worker.training import TrainHooks, train

    ends = []
    hooks = TrainHooks(on_progress=lambda progress, metrics: ends.append(time.monotonic()),
                       should_stop=lambda: len(ends) >= steps, progress_interval_s=0.0)
    spec = spec_from("seed", training={"epochs": 1})
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        train(spec, text, Path(scratch), hooks)
    return [started, *ends[:steps]]


def run_side(side, steps):
    """In this process: one side's step end times, as JSON on stdout."""
    text = corpus("frankenstein-2.txt")
    if side == "plain":
        from bench import plain_tutorial
        from shared.text.textprep import prepare_text

        ends = plain_tutorial.step_end_times(prepare_text(text, "tutorial"), steps)
    else:
        ends = seed_step_end_times(text, steps)
    print(json.dumps(ends))


def step_seconds(side, steps):
    out = subprocess.run([sys.executable, "-m", "bench.seed_vs_plain", "--side", side,
                          "--steps", str(steps)], capture_output=True, text=True, check=True)
    ends = json.loads(out.stdout.strip().splitlines()[-1])
    return [b - a for a, b in zip(ends, ends[1:])][WARMUP_STEPS:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12, help="steps per side and round")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        return run_side(args.side, args.steps)
    print(f"frankenstein-2.txt, tutorial preprocessing; {args.rounds} rounds of "
          f"{args.steps} steps per side, the first {WARMUP_STEPS} not counted")
    times = {side: [] for side in SIDES}
    for round_ in range(1, args.rounds + 1):
        for side in SIDES:
            seconds = step_seconds(side, args.steps)
            times[side] += seconds
            print(f"round {round_} {side:<5} median {statistics.median(seconds):.3f} s/step, "
                  f"fastest {min(seconds):.3f}", flush=True)
    plain, seed = (statistics.median(times[side]) for side in SIDES)
    print(f"median: plain tutorial script {plain:.3f} s/step, seed preset {seed:.3f} s/step "
          f"({seed / plain:.2f}x the plain script's time)")
    # The fastest step is the one least slowed by other work on the machine.
    plain, seed = (min(times[side]) for side in SIDES)
    print(f"fastest: plain tutorial script {plain:.3f} s/step, seed preset {seed:.3f} s/step "
          f"({seed / plain:.2f}x)")


if __name__ == "__main__":
    main()
