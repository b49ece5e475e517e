"""Goal 1: validation loss of the `default` preset on tinyshakespeare against wall time.

Each point is its own run with `training.max_seconds` set to the budget (training is
seeded, so shorter runs are prefixes of longer ones); the validation loss is on the whole
held-out tail (the last 10% by position), in nats per character like nanoGPT's.

    .venv/bin/python -m bench.quality_per_minute [--budgets 10,20,40,80] [--set model.units=128 ...]
"""

import argparse
import json

from bench.common import corpus, spec_from, timed_train

NANOGPT = {"val_loss": 1.89, "seconds": 79}  # nanoGPT's CPU recipe on this machine class


def parse_overrides(pairs):
    """["model.units=128", ...] -> {"model": {"units": 128}} (values parsed as JSON)."""
    sections = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        section, field = key.split(".", 1)
        sections.setdefault(section, {})[field] = json.loads(value)
    return sections


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budgets", default="10,20,40,80")
    parser.add_argument("--set", nargs="*", default=[], metavar="SECTION.FIELD=VALUE")
    args = parser.parse_args()
    text = corpus("tinyshakespeare.txt")
    overrides = parse_overrides(args.set)
    print(f"default preset on tinyshakespeare ({len(text):,} chars), overrides {overrides}")
    print(f"{'budget s':>9} {'wall s':>7} {'steps':>6} {'chars/s':>8} {'val loss':>9}")
    for budget in [float(b) for b in args.budgets.split(",")]:
        training = {**overrides.get("training", {}), "max_seconds": budget, "epochs": 1000,
                    "patience": None}
        spec = spec_from("default", **{**overrides, "training": training})
        run = timed_train(spec, text)
        print(f"{budget:>9.0f} {run.wall_s:>7.1f} {run.steps:>6} {run.chars_per_s:>8,.0f} "
              f"{run.val_loss:>9.3f}", flush=True)
    print(f"nanoGPT (CPU recipe): val loss {NANOGPT['val_loss']} after {NANOGPT['seconds']} s")


if __name__ == "__main__":
    main()
