"""Goal 2: the `seed` recipe (the tutorial) against `default`, same text, same budget.

On frankenstein-2.txt, once after the tutorial's preprocessing and once raw: each recipe
trains for the same wall-clock budget and is scored on the same held-out tail (the last
10% of the prepared text by position), in bits per character. Also reports target
characters per second (characters the loss is computed on: one per window for the
tutorial's model, one per position for ours).

    .venv/bin/python -m bench.vs_tutorial [--budget 300]
"""

import argparse

from bench.common import corpus, spec_from, timed_train

VALIDATION_FRACTION = 0.1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=300.0, help="seconds per run")
    args = parser.parse_args()
    text = corpus("frankenstein-2.txt")
    print(f"frankenstein-2.txt, {args.budget:.0f} s per run, validation = last "
          f"{VALIDATION_FRACTION:.0%} of the prepared text")
    print(f"{'text':<9} {'recipe':<8} {'steps':>6} {'chars/s':>9} {'val bits/char':>14}")
    for mode in ("tutorial", "raw"):
        results = {}
        for recipe in ("seed", "default"):
            spec = spec_from(recipe, preprocessing={"mode": mode},
                             training={"max_seconds": args.budget, "epochs": 10_000,
                                       "patience": None,
                                       "validation_fraction": VALIDATION_FRACTION})
            run = timed_train(spec, text)
            results[recipe] = run
            print(f"{mode:<9} {recipe:<8} {run.steps:>6} {run.chars_per_s:>9,.0f} "
                  f"{run.trained.metrics['bits_per_char']:>14.3f}", flush=True)
        ratio = results["default"].chars_per_s / results["seed"].chars_per_s
        print(f"{mode:<9} default/seed target chars per second: {ratio:,.0f}x", flush=True)


if __name__ == "__main__":
    main()
