"""shared.text.textprep: the raw and tutorial preprocessing modes."""

import nltk
import pytest
from nltk.corpus.reader import StopwordsCorpusReader
from nltk.corpus.util import LazyCorpusLoader

from shared.contracts.errors import NltkDataMissingError
from shared.text.textprep import prepare_text
from tests.conftest import HANDOUTS
from worker.vocab import Vocab, tokenize

FRANKENSTEIN = HANDOUTS / "corpora" / "frankenstein-2.txt"
NLTK_DATA = HANDOUTS / "nltk_data"


def use_nltk_data(monkeypatch, paths):
    """Point NLTK at `paths` only, with a stopwords loader that has not loaded yet.

    NLTK's lazy loader turns itself into the reader on first use and keeps its root; a
    reader loaded by an earlier test would otherwise ignore (or be refused by) new paths.
    """
    monkeypatch.setenv("NLTK_DATA", str(paths[0]))
    monkeypatch.setattr(nltk.data, "path", [str(p) for p in paths])
    monkeypatch.setattr(nltk.corpus, "stopwords", LazyCorpusLoader(
        "stopwords", StopwordsCorpusReader, r"(?!README|\.).*", encoding="utf8"))


@pytest.fixture
def stopwords_installed(monkeypatch):
    if not (NLTK_DATA / "corpora" / "stopwords").is_dir():
        pytest.skip(f"no NLTK stopwords under {NLTK_DATA}")
    use_nltk_data(monkeypatch, [NLTK_DATA, *nltk.data.path])


def test_raw_mode_returns_text_unchanged():
    text = "Hello,\r\n  World!\tÇa va?\n"
    assert prepare_text(text, "raw") == text


def test_tutorial_mode_lowercases_tokenizes_and_drops_stopwords(stopwords_installed):
    text = "The Monster, who was THERE... spoke: it's 1818!\nAnd so_on"
    # "the", "who", "was", "there", "it", "s", "and" are stopwords; \w+ keeps "so_on".
    assert prepare_text(text, "tutorial") == "monster spoke 1818 so_on"


def test_tutorial_mode_at_word_level_is_the_tutorial_words(stopwords_installed):
    prepared = prepare_text("The Monster, who was THERE... spoke: it's 1818!\nAnd so_on",
                            "tutorial")
    assert tokenize(prepared) == prepared.split(" ") == ["monster", "spoke", "1818", "so_on"]
    vocab = Vocab.from_text(prepared, "word", max_vocab=10)
    assert vocab.decode(vocab.encode(prepared)) == prepared


def test_tutorial_mode_on_frankenstein_matches_the_tutorial(stopwords_installed):
    if not FRANKENSTEIN.is_file():
        pytest.skip(f"{FRANKENSTEIN} is absent")
    text = FRANKENSTEIN.read_bytes().decode("cp1252").replace("\r\n", "\n")
    prepared = prepare_text(text, "tutorial")
    assert len(prepared) == 80_617
    assert len(set(prepared)) == 40


def test_missing_stopwords_raise_with_the_fix_named(monkeypatch, tmp_path):
    use_nltk_data(monkeypatch, [tmp_path])
    # The download server is outside the machine: fake it as unreachable, as it is here.
    monkeypatch.setattr(nltk, "download", lambda *args, **kwargs: False)
    with pytest.raises(NltkDataMissingError) as excinfo:
        prepare_text("Some text", "tutorial")
    assert "nltk.downloader stopwords" in excinfo.value.message
    assert "NLTK_DATA" in excinfo.value.message
