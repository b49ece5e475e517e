"""Goal 4: peak resident memory of `default` training against corpus size (1, 10, 100 MB).

Each size runs in a fresh process (peak RSS only grows): tinyshakespeare repeated to the
size, trained for a short budget with a 1% validation tail (a whole 10% tail of 100 MB
would take minutes to evaluate and measures the same streaming), peak RSS read at the end.

    .venv/bin/python -m bench.memory_scale [--sizes 1,10,100]
"""

import argparse
import subprocess
import sys

CHILD_BUDGET_S = 10


def child(size_mb):
    from bench.common import corpus, peak_rss_mb, spec_from, timed_train

    base = corpus("tinyshakespeare.txt")
    text = (base * (size_mb * 1024 * 1024 // len(base) + 1))[:size_mb * 1024 * 1024]
    del base
    before = peak_rss_mb()
    spec = spec_from("default", training={"max_seconds": CHILD_BUDGET_S, "epochs": 1,
                                          "validation_fraction": 0.01})
    run = timed_train(spec, text)
    print(f"{size_mb:>8} {before:>15,.0f} {peak_rss_mb():>14,.0f} {run.steps:>6}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,10,100")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    print(f"{'size MB':>8} {'RSS before MB':>15} {'peak RSS MB':>14} {'steps':>6}", flush=True)
    for size in args.sizes.split(","):
        subprocess.run([sys.executable, "-m", "bench.memory_scale", "--child", size],
                       check=True)


if __name__ == "__main__":
    main()
