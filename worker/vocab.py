"""The character vocabulary: the one place text becomes token ids and back.

Training and sampling both go through `Vocab`, and the vocabulary is saved with the model
(vocab.json: the tokens in id order), so a model is always decoded with the ids it was
trained on.
"""

import numpy as np


class Vocab:
    """Characters in id order; id i is `tokens[i]`."""

    def __init__(self, tokens):
        tokens = list(tokens)
        if not tokens:
            raise ValueError("a vocabulary needs at least one token")
        if any(not isinstance(t, str) or len(t) != 1 for t in tokens):
            raise ValueError("vocabulary tokens must be single characters")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be distinct")
        self.tokens = tokens
        self._ids = {t: i for i, t in enumerate(tokens)}
        # Code point -> id lookup table (-1: not in the vocabulary), so encoding a
        # megabyte-sized corpus is a few vectorized NumPy operations, not a Python loop.
        code_points = [ord(t) for t in tokens]
        self._table = np.full(max(code_points) + 1, -1, dtype=np.int32)
        self._table[code_points] = np.arange(len(tokens), dtype=np.int32)

    @classmethod
    def from_text(cls, text):
        """The sorted distinct characters of `text`."""
        return cls(sorted(set(text)))

    @classmethod
    def from_json(cls, tokens):
        """Rebuild from `to_json()`'s list (vocab.json)."""
        return cls(tokens)

    def to_json(self):
        return list(self.tokens)

    @property
    def size(self):
        return len(self.tokens)

    def id_of(self, token):
        """The id of one character, or None if it is not in the vocabulary."""
        return self._ids.get(token)

    def encode(self, text, *, skip_unknown=False):
        """Token ids of `text` as int32, shape (len(text),).

        A character outside the vocabulary raises ValueError (training text must be fully
        covered); with `skip_unknown=True` it is dropped instead (prompts, where a user may
        type characters the model never saw).
        """
        # surrogatepass: a str may hold lone surrogates; they get a code point like any other.
        code_points = np.frombuffer(
            text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32
        )
        ids = np.full(len(code_points), -1, dtype=np.int32)
        in_table = code_points < len(self._table)
        ids[in_table] = self._table[code_points[in_table]]
        unknown = ids < 0
        if unknown.any():
            if not skip_unknown:
                missing = sorted({chr(c) for c in code_points[unknown]})
                shown = ", ".join(repr(c) for c in missing[:10])
                raise ValueError(
                    f"{int(unknown.sum())} characters not in the vocabulary "
                    f"({len(missing)} distinct, e.g. {shown})"
                )
            ids = ids[~unknown]
        return ids

    def decode(self, ids):
        """The text of a sequence of ids (any iterable of ints in range)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"token ids must be in [0, {self.size})")
        return "".join(self.tokens[i] for i in ids.tolist())
