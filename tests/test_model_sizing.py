"""shared.sizing.model_sizing: the default preset sized to corpus and budget, without TensorFlow."""

import subprocess
import sys

import pytest

from shared.sizing.model_sizing import sized_default, with_sized_model
from shared.contracts.specs import PRESETS, resolve_train_spec

MB = 1_000_000


def test_short_budgets_keep_the_preset_model():
    for corpus_chars, max_seconds in ((MB, 30), (10 * MB, 30), (10 * MB, 120)):
        sized = sized_default(corpus_chars, max_seconds)
        assert sized["model"] == {"units": 128, "layers": 2}
        assert sized["training"] == {"seq_length": 64}


@pytest.mark.parametrize("corpus_chars, max_seconds", [(10 * MB, 600), (10 * MB, 150),
                                                      (MB, 600), (MB, 3600)])
def test_a_long_budget_on_a_large_corpus_gets_a_wider_model(corpus_chars, max_seconds):
    sized = sized_default(corpus_chars, max_seconds)
    assert sized["model"]["units"] > PRESETS["default"]["model"]["units"]
    assert sized["training"]["learning_rate"] < PRESETS["default"]["training"]["learning_rate"]


def test_a_long_budget_on_a_small_corpus_gets_dropout_not_width():
    sized = sized_default(100_000, 600)
    assert sized["model"]["units"] == 128 and sized["model"]["dropout"] > 0


@pytest.mark.parametrize("corpus_chars", [1, 100_000, MB, 10 * MB, 10**9])
@pytest.mark.parametrize("max_seconds", [1, 30, 120, 600, 7 * 86400])
def test_only_valid_spec_fields_within_their_ranges(corpus_chars, max_seconds):
    sized = sized_default(corpus_chars, max_seconds)
    assert set(sized) <= {"model", "training"}
    # The request models' own check: known fields, right types, within their ranges.
    resolve_train_spec("default", sized)
    # The saved model's layout the sampler reads: embedding -> LSTMs -> head.
    assert "architecture" not in sized["model"]


@pytest.mark.parametrize("corpus_chars, max_seconds", [(0, 30), (MB, 0), (-1, -1)])
def test_nonpositive_inputs_are_refused(corpus_chars, max_seconds):
    with pytest.raises(ValueError):
        sized_default(corpus_chars, max_seconds)


@pytest.mark.subprocess  # a fresh interpreter
def test_imports_no_tensorflow():
    code = ("import sys, shared.sizing.model_sizing; "
            "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_a_budget_without_model_fields_is_sized_under_the_requests_own_fields():
    overrides = {"training": {"max_seconds": 600, "seq_length": 32}}
    sized = with_sized_model("default", overrides, 100_000)
    assert sized["model"] == sized_default(100_000, 600)["model"]
    assert sized["training"] == {"seq_length": 32, "max_seconds": 600}  # the request's win


@pytest.mark.parametrize("preset, overrides", [
    ("default", {"training": {"epochs": 3}}),  # no budget
    ("default", {"training": {"max_seconds": 600}, "model": {"units": 64}}),  # model chosen
    ("default", {"training": {"max_seconds": 600}, "preprocessing": {"level": "word"}}),
    ("default", {"training": {"max_seconds": None}}),
    ("seed", {"training": {"max_seconds": 600}}),
])
def test_requests_the_rule_does_not_cover_are_left_as_they_are(preset, overrides):
    assert with_sized_model(preset, overrides, 100_000) is overrides
