"""worker.evaluation on small Keras models: the stateful scorer agrees with Keras' own
forward pass, streams read side by side agree with one stream, and what is out of the
vocabulary is counted and listed, never dropped unseen."""

import math

import numpy as np
import pytest

from shared.contracts.specs import resolve_train_spec
from worker.evaluation import MIN_STREAM_TOKENS, score_text
from worker.model_files import LoadedModel
from worker.models import build_model
from worker.sampling import StatefulStepper, start_token_id
from worker.vocab import Vocab

pytestmark = pytest.mark.keras  # trains or samples Keras models in this process

TEXT = "the quick brown fox jumps over the lazy dog.\nhow vexingly quick daft zebras jump!\n"
SPEC = resolve_train_spec("default", {"model": {"units": 16, "layers": 2, "dropout": 0.0,
                                                "embedding_dim": 8}})


def loaded_model(vocab, seed=5):
    """An untrained model with random weights: scoring is exact whatever the weights."""
    import keras

    keras.utils.set_random_seed(seed)
    return LoadedModel(build_model(SPEC, vocab.size), vocab, SPEC)


def keras_nats(loaded, text):
    """The text's loss from one Keras forward pass over all of it, after the start token."""
    ids = loaded.vocab.encode(text)
    inputs = np.concatenate([[start_token_id(loaded.vocab)], ids[:-1]])[None]
    logits = np.asarray(loaded.model(inputs))[0].astype(np.float64)
    peak = logits.max(axis=-1)
    log_z = np.log(np.exp(logits - peak[:, None]).sum(axis=-1)) + peak
    return float((log_z - logits[np.arange(len(ids)), ids]).sum())


@pytest.fixture(scope="module")
def char_model():
    return loaded_model(Vocab.from_text(TEXT))


def test_one_stream_scores_exactly_what_keras_computes(char_model):
    text = TEXT * 5  # under two streams' worth: read as one
    assert len(text) < 2 * MIN_STREAM_TOKENS
    row = score_text(char_model, text)
    assert row["chars_scored"] == row["tokens_scored"] == len(text)
    assert row["bits_per_token"] is None and row["oov_count"] == 0 and row["oov"] == []
    expected = keras_nats(char_model, text) / len(text) / math.log(2)
    assert row["bits_per_char"] == pytest.approx(expected, rel=1e-5)


def stepped_nats(loaded, text):
    """The text's loss stepping the sampler's stateful stepper through it in one stream
    (test_sampling checks it against Keras; Keras itself takes minutes over 16k steps)."""
    ids = loaded.vocab.encode(text)
    stepper = StatefulStepper(loaded.model, 1)
    logits = stepper.feed([[start_token_id(loaded.vocab)]])[0]
    nats = 0.0
    for token in ids:
        logits = logits.astype(np.float64)
        nats += float(np.log(np.exp(logits - logits.max()).sum()) + logits.max() - logits[token])
        logits = stepper.feed([[token]])[0]
    return nats


def test_streams_side_by_side_agree_with_one_pass(char_model):
    text = TEXT * 200  # 16,400 characters: 16 streams, each warmed up on what precedes it
    row = score_text(char_model, text)
    assert row["chars_scored"] == len(text)
    one_pass = stepped_nats(char_model, text) / len(text) / math.log(2)
    assert row["bits_per_char"] == pytest.approx(one_pass, rel=2e-3)


def test_characters_outside_the_vocabulary_are_skipped_counted_and_listed(char_model):
    text = TEXT * 3
    row = score_text(char_model, text.replace("quick", "QUICK!é") + "ééé")
    assert row["oov_count"] == 6 * 6 + 3
    assert row["oov"] == ["é", "C", "I", "K", "Q", "U"]  # most frequent first, then in order
    assert row["chars_scored"] == len(text) - 6 * 5 + 6 * 1  # each "quick" became a known "!"
    # Skipped means read as if absent: the same score as the text without them.
    without = score_text(char_model, text.replace("quick", "!"))
    assert row["bits_per_char"] == pytest.approx(without["bits_per_char"], rel=1e-6)


def test_word_models_score_tokens_and_characters_with_unknown_words_as_unk():
    vocab = Vocab.from_text(TEXT, "word", max_vocab=10)
    loaded = loaded_model(vocab)
    text = TEXT * 3 + "the xylophones\n" + "z" * 100
    row = score_text(loaded, text)
    assert "z" * 32 in row["oov"]  # a listed word is cut
    tokens = row["tokens_scored"]
    assert row["level"] == "word" and row["chars_scored"] == len(text)
    assert row["bits_per_char"] == pytest.approx(row["bits_per_token"] * tokens / len(text))
    assert "xylophones" in row["oov"] and row["oov_count"] == sum(
        1 for t in vocab_tokens(text) if vocab.id_of(t) is None)
    expected = keras_nats(loaded, text) / tokens / math.log(2)
    assert row["bits_per_token"] == pytest.approx(expected, rel=1e-5)


def vocab_tokens(text):
    from worker.vocab import tokenize

    return tokenize(text)


def test_check_can_stop_scoring(char_model):
    class Stop(Exception):
        pass

    def check():
        raise Stop

    with pytest.raises(Stop):
        score_text(char_model, TEXT * 10, check=check)
