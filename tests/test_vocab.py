"""worker.vocab: the one encode/decode shared by training and sampling, per character or
per word."""

import json

import numpy as np
import pytest

from shared.contracts.errors import UnknownCharactersError
from worker.vocab import UNKNOWN, Vocab, detokenize, tokenize


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


def test_unknown_characters_are_refused_and_listed():
    vocab = Vocab.from_text("abc ")
    with pytest.raises(UnknownCharactersError, match="not in the model's vocabulary") as e:
        vocab.encode("a Zb🙂cZ")
    assert e.value.extra["characters"] == ["Z", "🙂"]


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


def test_word_tokens_keep_line_breaks_and_come_back_as_text():
    text = 'He said, "Hi there!" It\'s 10:30 now.\n\nA well-known line; 50% off.'
    tokens = tokenize(text)
    assert tokens == ["He", "said", ",", "``", "Hi", "there", "!", "''", "It's", "10:30",
                      "now", ".", "\n", "\n", "A", "well-known", "line", ";", "50", "%",
                      "off", "."]
    assert detokenize(tokens) == text
    assert tokenize("a <unk> b") == ["a", "<", "unk", ">", "b"]  # never the unknown token


def test_word_vocab_keeps_the_most_frequent_and_unk_first():
    text = "c c c a a d d b\n"
    vocab = Vocab.from_text(text, "word", max_vocab=3)
    # Counts c 3, a 2, d 2, b 1, \n 1: the tie between a and d goes to the smaller token.
    assert vocab.tokens == [UNKNOWN, "c", "a"] and vocab.unknown_id == 0
    ids = vocab.encode("c d a zebra")
    assert ids.dtype == np.int32 and ids.tolist() == [1, 0, 2, 0]
    assert vocab.decode(ids) == "c <unk> a <unk>"
    assert vocab.decode(vocab.encode("a c")) == "a c"

    everything = Vocab.from_text(text, "word", max_vocab=100)
    assert everything.tokens == [UNKNOWN, "c", "a", "d", "\n", "b"]
    again = Vocab.from_json(json.loads(json.dumps(everything.to_json())), "word")
    assert again.tokens == everything.tokens and again.level == "word"
    assert Vocab.from_text("abc").unknown_id is None


@pytest.mark.parametrize("tokens", [["a", "b"], ["a", UNKNOWN], [UNKNOWN, "a", UNKNOWN],
                                    [UNKNOWN, "a", "a"], [UNKNOWN, ""]])
def test_bad_word_token_lists_are_refused(tokens):
    with pytest.raises(ValueError):
        Vocab.from_json(tokens, "word")
