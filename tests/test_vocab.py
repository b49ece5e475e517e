"""worker.vocab: the one encode/decode shared by training and sampling."""

import json

import numpy as np
import pytest

from worker.vocab import Vocab


def test_from_text_is_sorted_distinct_characters():
    vocab = Vocab.from_text("banana\n")
    assert vocab.tokens == ["\n", "a", "b", "n"]
    assert vocab.size == 4


def test_encode_decode_round_trip():
    text = "Hello, wörld!\n\u2014 ok 🙂"
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    assert ids.dtype == np.int32
    assert ids.shape == (len(text),)
    assert vocab.decode(ids) == text
    assert vocab.decode(ids.tolist()) == text


def test_json_round_trip_keeps_ids():
    vocab = Vocab.from_text("the cat sat")
    again = Vocab.from_json(json.loads(json.dumps(vocab.to_json())))
    assert again.tokens == vocab.tokens
    assert np.array_equal(again.encode("a cat"), vocab.encode("a cat"))


def test_unknown_characters_raise_unless_skipped():
    vocab = Vocab.from_text("abc ")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("a Zb")
    assert vocab.decode(vocab.encode("a Zb🙂c", skip_unknown=True)) == "a bc"


@pytest.mark.parametrize("tokens", [[], ["a", "a"], ["ab"], [1]])
def test_bad_token_lists_are_refused(tokens):
    with pytest.raises(ValueError):
        Vocab.from_json(tokens)


def test_decode_refuses_out_of_range_ids():
    vocab = Vocab.from_text("ab")
    with pytest.raises(ValueError):
        vocab.decode([0, 2])
    with pytest.raises(ValueError):
        vocab.decode([-1])
