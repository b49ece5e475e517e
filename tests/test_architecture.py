"""shared.sizing.architecture: the one description of each model family agrees with the Keras model
built from it, layer by layer, and is what the size, memory and time estimators count."""

import pytest

from shared.sizing.architecture import LSTM, describe
from shared.sizing.generation_cost import STEP_OVERHEAD_S, estimate_generation_s
from shared.sizing.model_storage import check_model_size
from shared.contracts.specs import resolve_train_spec
from shared.sizing.train_memory import vocab_size_of
from worker.models import build_model

# (preset, level, model fields, vocabulary): both families, char and word level, 1-3
# layers, narrow and wide, with and without dropout.
SHAPES = [
    ("default", "char", {"units": 128, "layers": 2, "embedding_dim": 64}, 65),
    ("default", "char", {"units": 7, "layers": 3, "embedding_dim": 5, "dropout": 0.2}, 30),
    ("default", "word", {"units": 32, "layers": 1, "embedding_dim": 16}, 500),
    ("seed", "char", {"units": 256, "layers": 3}, 40),
    ("seed", "char", {"units": 9, "layers": 1, "dropout": 0.0}, 27),
    ("seed", "word", {"units": 12, "layers": 2}, 300),
    ("seed", "char", {"units": 1, "layers": 2}, 3),  # the last layer's half rounds up to 1
]


def spec_and_corpus(preset, level, model, vocab_size):
    """A validated spec, and a corpus record whose vocabulary is `vocab_size` at `level`."""
    spec = resolve_train_spec(preset, {"preprocessing": {"level": level, "max_vocab": vocab_size},
                                       "model": model, "training": {"seq_length": 10}})
    return spec, {"vocab_size": vocab_size, "chars": 10_000}


@pytest.mark.parametrize("preset, level, model, vocab_size", SHAPES)
def test_the_description_counts_the_parameters_keras_builds(preset, level, model, vocab_size):
    spec, corpus = spec_and_corpus(preset, level, model, vocab_size)
    architecture = describe(spec, vocab_size_of(spec, corpus))
    built = build_model(spec, vocab_size)

    assert architecture.parameters == built.count_params()
    for layer in architecture.layers:
        if layer.parameters:
            assert built.get_layer(layer.name).count_params() == layer.parameters, layer
    assert architecture.lstm_units == [built.get_layer(layer.name).units
                                       for layer in architecture.layers
                                       if isinstance(layer, LSTM)]
    # The model-size ceiling counts the same parameters.
    assert check_model_size(spec, corpus, limit_mb=1e6) == built.count_params()


@pytest.mark.parametrize("preset, level, model, vocab_size", SHAPES)
def test_a_stored_spec_is_described_as_the_typed_one(preset, level, model, vocab_size):
    spec, _ = spec_and_corpus(preset, level, model, vocab_size)
    assert describe(spec.model_dump(), vocab_size) == describe(spec, vocab_size)


def with_window(spec, seq_length):
    return spec.model_copy(update={"training": spec.training.model_copy(
        update={"seq_length": seq_length})})


def test_generation_time_counts_a_whole_window_per_token_for_the_tutorial_only():
    seed, _ = spec_and_corpus("seed", "char", {"units": 32, "layers": 1}, 30)
    default, _ = spec_and_corpus("default", "char", {"units": 16, "layers": 1}, 30)

    assert (describe(with_window(seed, 20), 30).token_flops
            == 2 * describe(with_window(seed, 10), 30).token_flops)
    assert (describe(with_window(default, 20), 30).token_flops
            == describe(with_window(default, 10), 30).token_flops)
    # A step costs its overhead plus its FLOPs: more streams cost more FLOPs, not overhead.
    one_stream, two_streams = (estimate_generation_s(seed, 30, 1, streams) for streams in (1, 2))
    assert two_streams - one_stream == pytest.approx(one_stream - STEP_OVERHEAD_S)
