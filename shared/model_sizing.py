"""The `default` preset's model sized to the corpus and the time budget: a pure-Python rule.

Used by POST /v1/train (`with_sized_model`) when a request for the `default` preset at
character level sets `training.max_seconds` and no `model` field. The rule estimates
how many characters training will see (budget x measured throughput) and how many passes
over the corpus that is, then:

- few passes and many characters (a long budget on a large corpus): a wider LSTM, which
  learns more per character once throughput no longer limits it;
- many passes (a long budget on a small corpus): the default width with dropout, since
  the model would otherwise memorise the text;
- otherwise the preset as it is (short budgets: throughput limits, and 2x128 is the
  measured best there).

Status (2026-11-30): thresholds from earlier tuning runs, checked (not fitted) against the
bench/sized_models.py table in bench/README.md, goal 4: on 100 KB and 1 MB each branch
wins or ties the fixed preset.
"""

import copy

from shared.specs import PRESETS

# Target characters per second of the default preset's 2x128 LSTM on the 2-core worker
# (bench/quality_per_minute.py, 2026-11-28: 87k-98k; the lower figure, for busy machines).
DEFAULT_CHARS_PER_S = 87_000
# A 2x256 LSTM costs ~3.5x the FLOPs per character of 2x128 (weights 4u(in + u)).
WIDE_UNITS = 256
WIDE_COST = 3.5
# Training characters the wide model needs before it overtakes 2x128: 2x256 lost to 2x128
# at ~2.6M characters (80 s on the slower machine of bench/README.md); about four times
# that. Checked at one point: with ~15M characters (1 MB, 600 s) 2x256 won by 0.068 nats;
# where between 2.6M and 15M it starts to win is not measured.
WIDE_MIN_CHARS = 10_000_000
# Passes over the training text above which the default width gets dropout: past ~20
# epochs the 2x128 model's validation loss turns up on a 1 MB corpus.
MANY_PASSES = 20
DROPOUT = 0.2  # the tutorial's rate
# The wide branch's fields. Adam's rate for 256 units: 3e-3 beat 1e-2 in the tuning runs
# (bench/README.md).
WIDE = {"model": {"units": WIDE_UNITS, "layers": 2},
        "training": {"seq_length": 64, "learning_rate": 3e-3}}


def sized_default(corpus_chars, max_seconds):
    """{"model": {...}, "training": {...}}: only the fields this rule sets for the default
    preset given a corpus of `corpus_chars` characters and a budget of `max_seconds`."""
    if corpus_chars <= 0 or max_seconds <= 0:
        raise ValueError("corpus_chars and max_seconds must be positive")
    seen_chars = DEFAULT_CHARS_PER_S * max_seconds
    passes = seen_chars / corpus_chars
    wide_seen_chars = seen_chars / WIDE_COST
    if wide_seen_chars >= WIDE_MIN_CHARS and wide_seen_chars / corpus_chars <= MANY_PASSES:
        return copy.deepcopy(WIDE)
    if passes > MANY_PASSES:
        return {"model": {"units": 128, "layers": 2, "dropout": DROPOUT},
                "training": {"seq_length": 64}}
    return {"model": {"units": 128, "layers": 2}, "training": {"seq_length": 64}}


def with_sized_model(preset, overrides, corpus_chars):
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
    sized = sized_default(corpus_chars, budget)
    return {**overrides, "model": sized["model"],
            "training": {**sized["training"], **training}}
