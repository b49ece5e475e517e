"""Training throughput the workers of each queue measured on recent jobs: what the sizing
rule (shared/sizing/model_sizing.py) budgets with, so a slow host does not get a model it cannot
train in the budget.

Workers record a figure at every epoch end of a job the rule could have sized (the
`default` preset's embedding LSTM at character level, windows and batches of 64, products
at the preset's precision): the
epoch's target characters per second, as the default 2x128 model's (a 2x256 one's times
WIDE_COST), and times TRAIN_SHARE, since the rule's budget also pays for validation passes
and tracing. The API reads the median of the last RECENT figures of the queue a job goes
to; with fewer than MIN_FIGURES it keeps the rule's constant, and keeps what it read for
READ_EVERY_S (a median of the last few jobs' epochs moves slowly; a burst of training
submissions then costs one read, not one each). Plain Redis, no TensorFlow.
"""

import statistics
import time

from shared.sizing.model_sizing import WIDE_COST, WIDE_UNITS
from shared.contracts.specs import PRESETS, TrainSpec

RECENT = 20  # figures kept per queue: the epochs of the last few jobs
MIN_FIGURES = 3  # below this, one slow first epoch (tracing) would decide
# The steps' share of a budgeted run's wall time; the rest is validation passes and
# tracing (bench.quality_per_minute's `share`, 2026-12-01, 20 to 80 s: 0.72 to 0.96,
# median 0.85; a busy machine's figures).
TRAIN_SHARE = 0.85
# What the figures are comparable for: the shape the sizing rule was measured on.
_REFERENCE = {"architecture": "embedding_lstm", "layers": 2, "embedding_dim": 64}
_REFERENCE_TRAINING = {"batch_size": 64, "seq_length": 64,
                       "matmul_precision": PRESETS["default"]["training"]["matmul_precision"]}
_UNITS_COST = {128: 1.0, WIDE_UNITS: WIDE_COST}  # time per character against 2x128
# How long a process keeps a queue's median, in seconds: an epoch of the default preset
# ends every few seconds at the soonest, and its figure moves a median of RECENT little.
READ_EVERY_S = 5.0


def reference_chars_per_s(spec: TrainSpec, targets_per_s):
    """The default 2x128 model's budgeted characters per second that an epoch of `spec`
    at `targets_per_s` stands for, or None when `spec` is not a shape the rule sizes."""
    model, training = spec.model, spec.training
    if (spec.preprocessing.level != "char" or not targets_per_s
            or model.units not in _UNITS_COST
            or any(getattr(model, k) != v for k, v in _REFERENCE.items())
            or any(getattr(training, k) != v for k, v in _REFERENCE_TRAINING.items())):
        return None
    return targets_per_s * _UNITS_COST[model.units] * TRAIN_SHARE


class Throughput:
    def __init__(self, redis_client, keys):
        self.redis = redis_client
        self.keys = keys
        self._read = {}  # queue -> (time.monotonic() when read, its median or None)

    def record(self, queue, chars_per_s):
        pipe = self.redis.pipeline()
        pipe.lpush(self.keys.throughput(queue), repr(float(chars_per_s)))
        pipe.ltrim(self.keys.throughput(queue), 0, RECENT - 1)
        pipe.execute()

    def chars_per_s(self, queue):
        """The median of the queue's recent figures, or None with fewer than MIN_FIGURES;
        as this process read it up to READ_EVERY_S ago."""
        now = time.monotonic()
        read_at, median = self._read.get(queue, (None, None))
        if read_at is None or now - read_at > READ_EVERY_S:
            figures = [float(v) for v in self.redis.lrange(self.keys.throughput(queue), 0, -1)]
            median = statistics.median(figures) if len(figures) >= MIN_FIGURES else None
            self._read[queue] = (now, median)  # threads may both read: the same answer
        return median
