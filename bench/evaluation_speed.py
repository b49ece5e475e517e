"""Issue 18: how long an evaluation of a `default` model takes on a whole book.

Trains the preset (2 x 128 units) for TRAIN_S on frankenstein-2.txt, then times the scorer
an evaluation job runs (worker/evaluation.py) on the whole book, and on the held-out tail
beside what training measured there.

    .venv/bin/python -m bench.evaluation_speed
"""

import statistics
import time

from bench.common import corpus, spec_from, timed_train
from shared.contracts.evaluations import tail_start
from worker.evaluation import score_text
from worker.model_files import LoadedModel

TRAIN_S = 60  # a short training: scoring speed does not depend on how well it learned
ROUNDS = 3  # the figure is the median of this many runs


def main():
    text = corpus("frankenstein-2.txt")
    spec = spec_from("default", training={"max_seconds": TRAIN_S})
    run = timed_train(spec, text)
    loaded = LoadedModel(run.trained.model, run.trained.vocab, spec)
    times = []
    for _ in range(ROUNDS):
        started = time.monotonic()
        row = score_text(loaded, text)
        times.append(time.monotonic() - started)
    wall_s = statistics.median(times)
    fraction = spec.training.validation_fraction
    tail = score_text(loaded, text[tail_start(len(text), fraction):])
    print(f"whole book: {len(text):,} chars ({row['chars_scored']:,} scored, "
          f"{row['oov_count']} out of vocabulary) in {wall_s:.2f} s "
          f"(median of {ROUNDS}: {', '.join(f'{t:.2f}' for t in times)}), "
          f"{row['chars_scored'] / wall_s:,.0f} chars/s, {row['bits_per_char']:.3f} bits/char; "
          f"held-out tail {tail['bits_per_char']:.3f} bits/char, training's validation "
          f"{run.trained.metrics['bits_per_char']:.3f}")


if __name__ == "__main__":
    main()
