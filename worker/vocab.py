"""The vocabulary: the one place text becomes token ids and back.

Two levels (spec `preprocessing.level`):

- `char`: every distinct character of the corpus, sorted. No unknown token: a text with a
  character outside the vocabulary (a prompt, or a corpus a model is trained further on)
  is refused with the characters listed.
- `word`: the text split by `tokenize` into words, punctuation and line breaks; the
  `max_vocab - 1` most frequent tokens (ties in token order) plus `<unk>` at id 0, which
  stands for every other word, in training text and prompts alike.

Training and sampling both go through `Vocab`, and the vocabulary is saved with the model
(vocab.json: the tokens in id order; the level is the spec's, in config.json), so a model
is always decoded with the ids it was trained on.
"""

import collections

import numpy as np
from nltk.tokenize import RegexpTokenizer
from nltk.tokenize.treebank import TreebankWordDetokenizer

from shared.contracts.errors import UnknownCharactersError

CHAR = "char"
WORD = "word"
LEVELS = (CHAR, WORD)
UNKNOWN = "<unk>"  # the tokenizer splits "<unk>" in a text into "<", "unk", ">": no clash
UNKNOWN_ID = 0  # fixed, so a word-level vocab.json always starts with it
NEWLINE = "\n"

# Why a regexp and not word_tokenize: word_tokenize needs NLTK's punkt_tab data, which
# workers do not have (and cannot download); the Treebank tokenizer without punkt splits a
# period off only at the very end of its input, so mid-line "dog." would be one word.
# Words keep inner apostrophes, hyphens and number punctuation (don't, well-known, 10:30,
# 1,000) so the detokenizer has nothing to re-glue; "..." and "--" are one token, any
# other non-space character is its own; a line break is a token, so paragraphs survive.
_TOKENIZER = RegexpTokenizer(r"\n|\w+(?:[-'’.,:/]\w+)*|\.{3}|--|[^\w\s]")
# The Treebank convention for double quotes (`` opening, '' closing), which is what
# TreebankWordDetokenizer needs to put them back against the right word.
_OPEN_QUOTE, _CLOSE_QUOTE = "``", "''"
_DOUBLE_QUOTES = {'"', "\u201c", "\u201d"}
_BEFORE_OPENING = " \t\r\n([{<"  # a double quote after these (or first) opens
_DETOKENIZER = TreebankWordDetokenizer()


def tokenize(text):
    """Word-level tokens of `text`; other whitespace than line breaks is not kept."""
    tokens = []
    for start, end in _TOKENIZER.span_tokenize(text):
        token = text[start:end]
        if token in _DOUBLE_QUOTES:
            opening = start == 0 or text[start - 1] in _BEFORE_OPENING
            token = _OPEN_QUOTE if opening else _CLOSE_QUOTE
        tokens.append(token)
    return tokens


def token_starts(text):
    """Character offset of each token `tokenize(text)` gives, int64."""
    return np.fromiter((start for start, _ in _TOKENIZER.span_tokenize(text)),
                       dtype=np.int64)


def detokenize(tokens):
    """Word-level tokens back to text: Treebank's spacing rules within each line, line
    breaks where the tokens have them."""
    lines = [[]]
    for token in tokens:
        if token == NEWLINE:
            lines.append([])
        else:
            lines[-1].append(token)
    return NEWLINE.join(_DETOKENIZER.detokenize(line) if line else "" for line in lines)


_ENCODE_CHUNK_CHARS = 1 << 22  # 4M characters: 16 MB of UTF-32 at a time


class Vocab:
    """Tokens in id order; id i is `tokens[i]`. `level` says what a token is."""

    def __init__(self, tokens, level=CHAR):
        tokens = list(tokens)
        if level not in LEVELS:
            raise ValueError(f"unknown vocabulary level {level!r}")
        if not tokens:
            raise ValueError("a vocabulary needs at least one token")
        if any(not isinstance(t, str) or not t for t in tokens):
            raise ValueError("vocabulary tokens must be non-empty strings")
        if level == CHAR and any(len(t) != 1 for t in tokens):
            raise ValueError("character vocabulary tokens must be single characters")
        if level == WORD and (tokens[UNKNOWN_ID] != UNKNOWN or tokens.count(UNKNOWN) != 1):
            raise ValueError(f"a word vocabulary has {UNKNOWN!r} at id {UNKNOWN_ID} only")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be distinct")
        self.tokens = tokens
        self.level = level
        self._ids = {t: i for i, t in enumerate(tokens)}
        if level == CHAR:
            # Code point -> id lookup table (-1: not in the vocabulary), so encoding a
            # megabyte-sized corpus is a few vectorized NumPy operations, not a Python loop.
            code_points = [ord(t) for t in tokens]
            self._table = np.full(max(code_points) + 1, -1, dtype=np.int32)
            self._table[code_points] = np.arange(len(tokens), dtype=np.int32)

    @classmethod
    def from_text(cls, text, level=CHAR, max_vocab=None):
        """Characters: the sorted distinct ones. Words: `<unk>` and the `max_vocab - 1`
        most frequent tokens (all of them if None), by count then token."""
        if level == CHAR:
            return cls(sorted(set(text)), CHAR)
        counts = collections.Counter(tokenize(text))
        ranked = sorted(counts, key=lambda token: (-counts[token], token))
        if max_vocab is not None:
            ranked = ranked[:max_vocab - 1]
        return cls([UNKNOWN, *ranked], WORD)

    @classmethod
    def from_json(cls, tokens, level=CHAR):
        """Rebuild from `to_json()`'s list (vocab.json) and the spec's level."""
        return cls(tokens, level)

    def to_json(self):
        return list(self.tokens)

    @property
    def size(self):
        return len(self.tokens)

    @property
    def unknown_id(self):
        """The id that stands for unknown words (word level), or None (char level)."""
        return UNKNOWN_ID if self.level == WORD else None

    def id_of(self, token):
        """The id of one token, or None if it is not in the vocabulary."""
        return self._ids.get(token)

    def encode(self, text):
        """Token ids of `text` as int32, shape (tokens,).

        Word level: unknown words become `<unk>`. Char level: a character outside the
        vocabulary raises UnknownCharactersError, which lists them.
        """
        if self.level == WORD:
            return np.fromiter((self._ids.get(t, UNKNOWN_ID) for t in tokenize(text)),
                               dtype=np.int32)
        ids = self._char_ids(text)
        unknown = ids < 0
        if unknown.any():
            missing = sorted(set(text[i] for i in np.flatnonzero(unknown)[:10_000]))
            shown = ", ".join(repr(c) for c in missing[:20])
            raise UnknownCharactersError(
                f"{int(unknown.sum())} characters are not in the model's vocabulary "
                f"({len(missing)} distinct: {shown})", extra={"characters": missing})
        return ids

    def encode_known(self, text):
        """Character level: (ids of the characters in the vocabulary, in order; a Counter
        of the others). An evaluation scores the first and counts the second."""
        ids = self._char_ids(text)
        unknown = np.flatnonzero(ids < 0)
        return ids[ids >= 0], collections.Counter(text[i] for i in unknown.tolist())

    def _char_ids(self, text):
        """Ids of every character of `text`, -1 for one outside the vocabulary."""
        # Chunk by chunk into one preallocated array: encoding a whole 100 MB corpus at once
        # held its UTF-32 copy, the code points and two temporaries of 400 MB each.
        ids = np.empty(len(text), dtype=np.int32)
        for start in range(0, len(text), _ENCODE_CHUNK_CHARS):
            chunk = text[start:start + _ENCODE_CHUNK_CHARS]
            # surrogatepass: a str may hold lone surrogates; they get a code point too.
            code_points = np.frombuffer(chunk.encode("utf-32-le", errors="surrogatepass"),
                                        dtype=np.uint32)
            ids[start:start + len(chunk)] = self._table[
                np.minimum(code_points, len(self._table) - 1)]
            outside = code_points >= len(self._table)  # past the table: unknown too
            ids[start:start + len(chunk)][outside] = -1
        return ids

    def decode(self, ids):
        """The text of a sequence of ids (any iterable of ints in range)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"token ids must be in [0, {self.size})")
        return self.join([self.tokens[i] for i in ids.tolist()])

    def join(self, tokens):
        """Tokens (strings of this vocabulary) as text."""
        return "".join(tokens) if self.level == CHAR else detokenize(tokens)
