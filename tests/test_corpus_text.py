import codecs
import re

import pytest

from shared.text.corpus_text import TEXT_PATTERN, decode_corpus, text_sha256
from shared.contracts.errors import CorpusRejectedError
from tests.conftest import handout

TEXT = "Café — “quoted”\nsecond line\n"


@pytest.mark.parametrize("data, encoding", [
    (TEXT.encode("utf-8"), "utf-8"),
    (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),
    (TEXT.encode("utf-16"), "utf-16"),  # Python writes a BOM
    (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16"),
    (TEXT.encode("cp1252"), "windows-1252"),
])
def test_decodes_common_encodings(data, encoding):
    assert decode_corpus(data) == (TEXT, encoding)


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_normalizes_line_endings(newline):
    text, _ = decode_corpus(f"a{newline}b{newline}".encode())
    assert text == "a\nb\n"


@pytest.mark.parametrize("data", [b"", b"  \n\t ", b"text\x00with NUL",
                                  b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_rejects_empty_and_binary(data):
    with pytest.raises(CorpusRejectedError):
        decode_corpus(data)


def test_frankenstein_is_windows_1252():
    data = handout("corpora/frankenstein-2.txt").read_bytes()
    text, encoding = decode_corpus(data)
    assert encoding == "windows-1252"
    assert "\r" not in text and "Frankenstein" in text


def test_hash_is_of_normalized_text():
    assert text_sha256(decode_corpus(b"a\r\nb")[0]) == text_sha256("a\nb")


@pytest.mark.parametrize("text", ["a", " a ", "\u3000a", "\ufeff\ufeffx", " \n\t", "\r\n",
                                  "\x1c\x1d", "\x85\xa0", "\ufeff", "\ufeff\ufeff", "x\x00",
                                  "\x00", "\u2028 \u205f", "\x0b\x0c", "~"])
def test_the_schema_pattern_takes_exactly_the_texts_decode_takes(text):
    """TEXT_PATTERN is what the API's schema says a corpus may be (schemathesis sends
    what it allows and expects it taken): the two must agree on every upload."""
    try:
        decode_corpus(text.encode("utf-8"))
        taken = True
    except CorpusRejectedError:
        taken = False
    assert (re.search(TEXT_PATTERN, text) is not None) == taken
