"""The `default` preset's model sized to the corpus and the time budget: a pure-Python rule.

Used by POST /v1/train (`with_sized_model`) when a request for the `default` preset at
character level sets `training.max_seconds` and no `model` field. The rule estimates
how many characters training will see (budget x measured throughput) and how many passes
over the corpus that is, then:

- enough characters for a wider LSTM on a corpus of 1 MB or more (a long budget on a
  large corpus): the wider model learns more per character once throughput no longer
  limits it, and early stopping ends it before it memorises the text;
- many passes (a long budget on a small corpus): the default width with dropout, since
  the model would otherwise memorise the text;
- otherwise the preset as it is (short budgets: throughput limits, and 2x128 is the
  measured best there).

Status (2026-12-01): thresholds fitted on the bench/sized_models.py runs in bench/README.md,
goal 4, on tinyshakespeare and a real 10 MB corpus (the Python 3.11 documentation).
"""

import copy

from shared.contracts.specs import PRESETS

# Target characters per second of the default preset's 2x128 LSTM on the 2-core worker
# (bench/quality_per_minute.py, 2026-11-28: 87k-98k; the lower figure, for busy machines):
# the fallback until the workers of a queue have measured their own (shared/sizing/throughput.py).
DEFAULT_CHARS_PER_S = 87_000
# A 2x256 LSTM takes 2.4x the time per character of 2x128 through train() (2026-12-01:
# 42.5k against 102k chars/s, the `seen` columns of bench.sized_models).
WIDE_UNITS = 256
WIDE_COST = 2.4
# Characters the wide model must see before it overtakes 2x128, measured on 1 MB and 10 MB:
# at 2.6M it lost (by 0.081 nats), from 5.1M on it won (by 0.023 to 0.124).
WIDE_MIN_CHARS = 5_000_000
# The smallest corpus it won on. Early stopping keeps it from overfitting a 1 MB corpus at
# any budget, but on 100 KB 2x256 lost to 2x128 with dropout (1.618 against 1.561).
WIDE_MIN_CORPUS_CHARS = 1_000_000
# Passes over the training text above which the default width gets dropout: past ~20
# epochs the 2x128 model's validation loss turns up on a 1 MB corpus.
MANY_PASSES = 20
DROPOUT = 0.2  # the tutorial's rate
# The wide branch's fields. Adam's rate for 256 units: 3e-3 beat 1e-2 in the tuning runs
# (bench/README.md).
WIDE = {"model": {"units": WIDE_UNITS, "layers": 2},
        "training": {"seq_length": 64, "learning_rate": 3e-3}}


def sized_default(corpus_chars, max_seconds, chars_per_s=None):
    """{"model": {...}, "training": {...}}: only the fields this rule sets for the default
    preset given a corpus of `corpus_chars` characters and a budget of `max_seconds`.
    `chars_per_s`: the 2x128 model's throughput where the job will run, as workers
    measured it (shared/sizing/throughput.py); None: DEFAULT_CHARS_PER_S."""
    if corpus_chars <= 0 or max_seconds <= 0:
        raise ValueError("corpus_chars and max_seconds must be positive")
    seen_chars = (chars_per_s or DEFAULT_CHARS_PER_S) * max_seconds
    passes = seen_chars / corpus_chars
    if corpus_chars >= WIDE_MIN_CORPUS_CHARS and seen_chars / WIDE_COST >= WIDE_MIN_CHARS:
        return copy.deepcopy(WIDE)
    if passes > MANY_PASSES:
        return {"model": {"units": 128, "layers": 2, "dropout": DROPOUT},
                "training": {"seq_length": 64}}
    return {"model": {"units": 128, "layers": 2}, "training": {"seq_length": 64}}


def with_sized_model(preset, overrides, corpus_chars, chars_per_s=None):
    """A validated train request's `overrides` ({section: {field: value}}; TrainRequest
    has checked the budget's type and range) with the sized fields beneath the request's
    own, when the rule applies: the `default` preset at character level (what the rule
    was measured on), a budget, and no `model` field (a user who names any model field
    chose the model). Otherwise `overrides` unchanged."""
    training = overrides.get("training") or {}
    budget = training.get("max_seconds")
    level = (overrides.get("preprocessing") or {}).get(
        "level", PRESETS["default"]["preprocessing"]["level"])
    if preset != "default" or overrides.get("model") or level != "char" or budget is None:
        return overrides
    sized = sized_default(corpus_chars, budget, chars_per_s)
    return {**overrides, "model": sized["model"],
            "training": {**sized["training"], **training}}
