"""Goal 3: characters per second of the sampler against the tutorial's way of generating.

The tutorial calls `model.predict` on the whole window for every character. Ours carries
the LSTM state from character to character (`default` models) or slides the windows of
all streams through one traced call (`seed` models, which keep their exact meaning: each
character from the previous 100, from a zero state). Models are trained briefly first:
speed does not depend on how well a model writes. The sampler is timed for 1, 8, 32 and 64
streams.

    .venv/bin/python -m bench.generation_speed
"""

import statistics
import time

import numpy as np

from bench.common import corpus, spec_from, timed_train
from worker.model_files import LoadedModel
from worker.sampling import generate

TUTORIAL_WINDOW = 100  # the tutorial's seq_length


def tutorial_method(model, ids, window, chars, takes_last_position):
    """The tutorial's loop: predict on the full window, take the argmax, slide; chars/s."""
    window_ids = list(ids[-window:])
    started = time.monotonic()
    for _ in range(chars):
        probs = model.predict(np.array([window_ids[-window:]], dtype=np.int32), verbose=0)
        scores = probs[0, -1] if takes_last_position else probs[0]
        window_ids.append(int(scores.argmax()))
    return chars / (time.monotonic() - started)


def sampler(loaded, prompt, length, streams):
    """Characters per second of generate() for `streams` samples of `length`."""
    generate(loaded, prompt=prompt, length=5, num_samples=streams, seed=1)  # weights cached
    started = time.monotonic()
    generate(loaded, prompt=prompt, length=length, temperature=1.0, num_samples=streams,
             seed=1)
    return length * streams / (time.monotonic() - started)


ROUNDS = 3  # each figure is the median of this many runs


def report(name, loaded, prompt, takes_last_position, chars_per_stream):
    """chars_per_stream: {streams: length of each sample}, sized for a few seconds a run."""
    ids = loaded.vocab.encode(prompt)
    base = tutorial_method(loaded.model, ids, TUTORIAL_WINDOW, 60, takes_last_position)
    print(f"{name}: tutorial method {base:,.1f} chars/s", flush=True)
    print(f"{'streams':>8} {'chars/s':>10} {'vs 1 stream':>12}")
    one = None
    for streams, length in chars_per_stream.items():
        speed = statistics.median(sampler(loaded, prompt, length, streams)
                                  for _ in range(ROUNDS))
        one = one or speed
        print(f"{streams:>8} {speed:>10,.0f} {speed / one:>11.1f}x", flush=True)


def main():
    print(f"median of {ROUNDS} runs per figure")
    shakespeare = corpus("tinyshakespeare.txt")
    spec = spec_from("default", training={"max_seconds": 15})
    run = timed_train(spec, shakespeare)
    report("default preset (embedding LSTM 2x128)",
           LoadedModel(run.trained.model, run.trained.vocab, spec), shakespeare[:300], True,
           {1: 3000, 8: 1000, 32: 500, 64: 300})

    frankenstein = corpus("frankenstein-2.txt")
    spec = spec_from("seed", training={"max_seconds": 15, "epochs": 1})
    run = timed_train(spec, frankenstein)
    report("seed preset (tutorial LSTM 256-256-128)",
           LoadedModel(run.trained.model, run.trained.vocab, spec),
           "it was on a dreary night of november that i beheld the accomplishment of my "
           "toils with an anxiety that almost amounted to agony", False,
           {1: 60, 8: 20, 32: 8, 64: 5})


if __name__ == "__main__":
    main()
