"""Scoring a text: how well a model predicts it, in bits per character (and per token).

The loss of a token is -ln p(token | every token before it); a text's loss is their sum
in nats, and bits per character = nats / characters / ln 2 (per token: / tokens).

An `embedding_lstm` model reads the text once with its LSTM state carried from token to
token, stepped in NumPy with the sampler's weights (worker/sampling.py), so a book costs
one step per character. The text is cut into up to STREAMS consecutive parts read side
by side as one batch; each stream first reads the WARMUP_TOKENS before its part without
scoring them, so no scored token starts from an empty state but the first of the text,
which is predicted after the sampler's start token. Every token is scored exactly once.

Out of the vocabulary, never silently:
- char level: a character the model never saw is skipped (the model reads the text as if
  it were not there); it is counted and listed, and `chars_scored` leaves it out.
- word level: a word the model never saw is read and scored as `<unk>`, as in training;
  such words are counted and listed, and every character of the text is scored.

`tutorial` models (the seed preset) predict each token from a fresh window of seq_length
tokens: scoring a book would cost a window per character. The API refuses them.
"""

import collections
import math

import numpy as np
from threadpoolctl import threadpool_limits

from shared.contracts.evaluations import MAX_OOV_SHOWN, OOV_WORD_CHARS, STREAMS, WARMUP_TOKENS
from worker.models import EMBEDDING_LSTM
from worker.sampling import lstm_update, lstm_weights, start_token_id
from worker.vocab import CHAR, UNKNOWN_ID, tokenize

LN2 = math.log(2)
# Fewer streams for a short text: each stream's warm-up is then under 1/16 of its part.
MIN_STREAM_TOKENS = 16 * WARMUP_TOKENS
CHUNK_TOKENS = 128  # steps per chunk: `check` runs between two; (streams, chunk, 4u) floats
HEAD_FLOATS = 1 << 22  # logits computed at once, at most (16 MB of float32)


def score_text(loaded, text, check=None):
    """The evaluation row of `loaded` (a LoadedModel) on `text`, prepared as its corpus
    was: bits per char and per token, what was scored, what was out of the vocabulary.
    `check()` runs between chunks and may raise to stop (a cancelled job, a time limit)."""
    if loaded.spec.model.architecture != EMBEDDING_LSTM:
        raise ValueError("only embedding_lstm models are scored (see the module docstring)")
    vocab = loaded.vocab
    if vocab.level == CHAR:
        ids, unknown = vocab.encode_known(text)
        chars = len(ids)
    else:
        tokens = tokenize(text)
        known = [vocab.id_of(token) for token in tokens]
        unknown = collections.Counter(t for t, i in zip(tokens, known) if i is None)
        ids = np.array([UNKNOWN_ID if i is None else i for i in known], dtype=np.int32)
        chars = len(text)
    # One BLAS thread: a step's products are (streams, u) x (u, 4u); with two threads on a
    # busy 2-core host each waited on the other (0.67 ms one-threaded, 19 ms two-threaded
    # at load 10, 2026-12-01).
    with threadpool_limits(limits=1, user_api="blas"):
        nats = _total_nats(lstm_weights(loaded.model), ids, start_token_id(vocab), check)
    per_token = nats / len(ids) / LN2 if len(ids) else None
    return {
        "level": vocab.level,
        "bits_per_char": nats / chars / LN2 if chars else None,
        "bits_per_token": None if vocab.level == CHAR else per_token,
        "chars_scored": chars,
        "tokens_scored": len(ids),
        "oov_count": sum(unknown.values()),
        # The most frequent first: what a user most needs to see.
        "oov": [t[:OOV_WORD_CHARS] for t, _ in sorted(
            unknown.items(), key=lambda kv: (-kv[1], kv[0]))][:MAX_OOV_SHOWN],
    }


def _total_nats(weights, ids, start_id, check):
    """Sum of -ln p(ids[t] | start, ids[:t]) over every t, in float64."""
    n = len(ids)
    if n == 0:
        return 0.0
    inputs = np.concatenate([[start_id], ids[:-1]]).astype(np.int32)  # inputs[t] precedes ids[t]
    streams = max(1, min(STREAMS, n // MIN_STREAM_TOKENS))
    bounds = np.linspace(0, n, streams + 1).astype(np.int64)  # stream k scores [b_k, b_k+1)
    firsts = np.maximum(bounds[:-1] - WARMUP_TOKENS, 0)  # where stream k starts reading
    length = int((bounds[1:] - firsts).max())
    states = [(np.zeros((streams, u), np.float32), np.zeros((streams, u), np.float32))
              for u in weights.state_sizes]
    nats = 0.0
    for begin in range(0, length, CHUNK_TOKENS):
        if check is not None:
            check()
        # Positions in the text of this chunk's steps, per stream (streams, T); cut per
        # chunk, so memory stays O(chunk) beside the ids whatever the text's length.
        at = firsts[:, None] + np.arange(begin, min(begin + CHUNK_TOKENS, length))
        scored = (at >= bounds[:-1, None]) & (at < bounds[1:, None])
        at = np.minimum(at, n - 1)  # a shorter stream's last steps read padding, unscored
        top = _read(weights, inputs[at], states)
        nats += _nats(weights.head, top[scored], ids[at][scored])
    return nats


def _read(weights, x, states):
    """Run the LSTM layers over ids x (streams, T) from `states`, which it updates; the
    last layer's outputs (streams, T, u). Each layer's input projection is one product
    over the whole chunk; only the recurrent product is stepped."""
    z_in = weights.input_table[x]  # layer 1: embedding @ kernel + bias, (streams, T, 4u)
    outputs = None
    for layer, (stacked, bias) in enumerate(weights.layers):
        h, c = states[layer]
        units = h.shape[1]
        if layer == 0:
            recurrent = stacked
        else:  # [kernel; recurrent] stacked (worker/sampling.py LstmWeights)
            kernel, recurrent = stacked[:-units], stacked[-units:]
            # One 2-D product: a batched 3-D one ran 20x slower here.
            z_in = (outputs.reshape(-1, outputs.shape[-1]) @ kernel + bias).reshape(
                x.shape + (-1,))
        outputs = np.empty(x.shape + (units,), np.float32)
        for t in range(x.shape[1]):
            h, c = lstm_update(z_in[:, t] + h @ recurrent, c)
            outputs[:, t] = h
        states[layer] = (h, c)
    return outputs


def _nats(head, h, targets):
    """-ln softmax(h @ kernel + bias)[target], summed; h (m, u), targets (m,)."""
    kernel, bias = head
    rows = max(1, HEAD_FLOATS // kernel.shape[1])
    total = 0.0
    for i in range(0, len(h), rows):
        logits = h[i:i + rows] @ kernel + bias  # (rows, vocab)
        peak = logits.max(axis=-1, keepdims=True)
        log_z = np.log(np.exp(logits - peak).sum(axis=-1)) + peak[:, 0]
        picked = logits[np.arange(len(logits)), targets[i:i + rows]]
        total += float((log_z - picked).sum(dtype=np.float64))
    return total
