"""Issue 16, goal 6: a word-level and a character-level `default` model of frankenstein-2
at the same time budget, in bits per character (and per token for the word model).

Bits per character of a word model are its validation loss spread over the characters of
the held-out text (worker.callbacks.epoch_metrics), so the two compare. A word model
predicts `<unk>` for every word outside its vocabulary as one token, which makes its
figure a little optimistic; the vocabulary size is printed with it.

    .venv/bin/python -m bench.word_vs_char [--budget 60]
"""

import argparse

from bench.common import corpus, spec_from, timed_train


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=60.0)
    args = parser.parse_args()
    text = corpus("frankenstein-2.txt")
    print(f"default preset on frankenstein-2 ({len(text):,} chars), {args.budget:g} s each")
    print(f"{'level':<6} {'vocab':>6} {'steps':>6} {'val loss':>9} {'bits/token':>11} "
          f"{'bits/char':>10}")
    for level in ("char", "word"):
        spec = spec_from("default", preprocessing={"level": level}, training={
            "max_seconds": args.budget, "epochs": 1000, "patience": None})
        run = timed_train(spec, text)
        metrics = run.trained.metrics
        per_token = metrics.get("bits_per_token", metrics["bits_per_char"])
        print(f"{level:<6} {run.trained.vocab.size:>6} {run.steps:>6} {run.val_loss:>9.3f} "
              f"{per_token:>11.3f} {metrics['bits_per_char']:>10.3f}", flush=True)


if __name__ == "__main__":
    main()
