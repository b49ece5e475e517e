"""What the benchmarks share: the handout corpora, specs from presets, a timed training run.

Benchmarks print figures; they are not tests. Run them on a quiet machine, one at a time
(2 cores: anything else running skews every number), e.g.
`.venv/bin/python -m bench.quality_per_minute`.
"""

import os
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import HANDOUTS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ info lines
# NLTK reads NLTK_DATA when first imported (below, through the worker): set it before.
if "NLTK_DATA" not in os.environ and (HANDOUTS / "nltk_data").is_dir():
    os.environ["NLTK_DATA"] = str(HANDOUTS / "nltk_data")

from shared.text.corpus_text import decode_corpus  # noqa: E402
from shared.contracts.specs import resolve_train_spec  # noqa: E402
from worker.training import TrainHooks, targets_per_step, train  # noqa: E402


def corpus(name):
    """A handout corpus decoded the way an upload is (encoding detection, LF endings)."""
    path = HANDOUTS / "corpora" / name
    if not path.exists():
        raise SystemExit(f"{path} not found: the benchmarks need ../shared beside the checkout")
    return decode_corpus(path.read_bytes())[0]


def spec_from(preset, **sections):
    """A TrainSpec: `preset` with each section's dict of overrides applied."""
    return resolve_train_spec(preset, sections)


@dataclass
class Run:
    trained: object  # worker.training.TrainedModel
    wall_s: float  # the whole train() call: preparation, tracing, training, validation
    steps: int  # optimizer steps taken
    target_chars: int  # characters the loss was computed on (steps x targets per step)

    @property
    def chars_per_s(self):
        return self.target_chars / self.wall_s

    @property
    def val_loss(self):
        return self.trained.metrics["val_loss"]


def timed_train(spec, text):
    """Train `spec` on `text` in a scratch directory; count the steps and target characters."""
    last = {}
    hooks = TrainHooks(on_progress=lambda progress, metrics: last.update(progress),
                       progress_interval_s=0.25)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        trained = train(spec, text, Path(scratch), hooks)
    wall_s = time.monotonic() - started
    steps = (last["epoch"] - 1) * last["steps"] + last["step"]
    return Run(trained, wall_s, steps, steps * targets_per_step(spec))


def peak_rss_mb():
    """This process' peak resident memory so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
