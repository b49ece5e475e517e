"""Sampling: text from a loaded model, many samples as one batch.

A token is a character or a word (with punctuation marks and line breaks), as the model's
vocabulary says (worker.vocab).

- `embedding_lstm` models run through a step model that carries each LSTM's (h, c) from one
  call to the next, so each token costs one step whatever the text length so far.
- `tutorial` models keep their meaning: each token is predicted from the previous
  `seq_length` tokens starting from a zero state, one full window per step.

Decisions a caller can rely on:

- `length` counts tokens: characters, or words and punctuation marks.
- The prompt is encoded by the model's vocabulary but not preprocessed. Characters outside
  a character vocabulary are dropped (a `tutorial` model knows only lowercase letters,
  digits, `_` and space, for instance); unknown words become `<unk>`, as in training.
- `<unk>` is never generated: its probability is set to zero before each draw.
- With no usable prompt, an `embedding_lstm` model starts from a zero state fed one start
  token: newline if in the vocabulary, else space, else the first id that is not `<unk>`
  (newline is the most natural "start of text" in raw corpora). A `tutorial` window shorter
  than `seq_length` is left-padded with the space id (else that same first id): the
  tutorial started from a random training window instead, which a saved model no longer
  has.
- A word-level sample is its tokens joined by the detokenizer; it does not start with a
  separator from the prompt.
- `stop`: a sample ends just before the first occurrence of `stop` in its generated text
  (after detokenizing; the stop string itself is not returned; text in the prompt does not
  count).
- Random draws come from `np.random.default_rng(seed)` in NumPy: same inputs and seed, same
  text. Temperature 0 is greedy (argmax) and draws nothing.
"""

import weakref

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from worker.models import EMBEDDING_LSTM, lstm_name

START_TOKENS = ("\n", " ")  # preference order for the start token of an empty prompt
PAD_TOKEN = " "  # left padding of a short tutorial window


def generate(loaded, *, prompt="", length=200, temperature=1.0, top_k=0, top_p=1.0,
             num_samples=1, seed=None, stop=None):
    """Return `num_samples` continuations of `prompt` (without it), each `length` tokens
    unless `stop` cut it short. `top_k` 0 and `top_p` 1.0 mean no limit."""
    vocab = loaded.vocab
    rng = np.random.default_rng(seed)
    prompt_ids = vocab.encode(prompt, skip_unknown=True)
    if loaded.config["architecture"] == EMBEDDING_LSTM:
        stepper = StatefulStepper(loaded.model, num_samples)
        if len(prompt_ids) == 0:
            prompt_ids = np.array([_first_known(vocab, START_TOKENS)], dtype=np.int32)
        scores = stepper.feed(np.tile(prompt_ids, (num_samples, 1)))
    else:
        stepper = WindowStepper(loaded.model, loaded.config["seq_length"], num_samples,
                                pad_id=_first_known(vocab, (PAD_TOKEN,)))
        scores = stepper.start(prompt_ids)

    samples = [[] for _ in range(num_samples)]  # tokens (str) of each sample
    texts = [None] * num_samples  # a sample's final text, once `stop` ended it
    for position in range(length):
        if vocab.unknown_id is not None:
            scores = np.array(scores, dtype=np.float64)  # (batch, vocab)
            scores[:, vocab.unknown_id] = -np.inf  # logits and log-probabilities alike
        next_ids = next_token_ids(scores, temperature, top_k, top_p, rng)
        for i, token_id in enumerate(next_ids.tolist()):
            if texts[i] is None:
                samples[i].append(vocab.tokens[token_id])
                # Checked after every token, so the first match ends right here.
                if stop:
                    texts[i] = _cut_at_stop(vocab, samples[i], stop)
        if all(t is not None for t in texts) or position == length - 1:
            break
        scores = stepper.feed(next_ids[:, None])
    return [vocab.join(s) if t is None else t for s, t in zip(samples, texts)]


def _cut_at_stop(vocab, tokens, stop):
    """The text of `tokens` up to `stop` if the last token completed it, else None.

    Only the tail that can hold a new occurrence is joined at each step, so a long sample
    costs O(length) joins of a few tokens, not O(length**2) characters: every token is at
    least one character, so `len(stop) + 1` tokens (one more for a separator the
    detokenizer may put between two of them) cover it.
    """
    if stop not in vocab.join(tokens[-(len(stop) + 1):]):
        return None
    text = vocab.join(tokens)
    cut = text.find(stop)
    return text[:cut] if cut >= 0 else None


def next_token_ids(scores, temperature, top_k, top_p, rng):
    """Draw one id per row of `scores` (batch, vocab): logits or log-probabilities."""
    scores = np.asarray(scores, dtype=np.float64)
    if temperature == 0:
        return scores.argmax(axis=-1)
    z = scores / temperature
    vocab_size = z.shape[-1]
    if 0 < top_k < vocab_size:
        kth = np.partition(z, -top_k, axis=-1)[:, -top_k, None]
        z = np.where(z < kth, -np.inf, z)  # ties with the k-th are kept
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    if top_p < 1.0:
        # Nucleus: keep the likeliest tokens until their mass reaches top_p (at least one).
        order = np.argsort(-p, axis=-1, kind="stable")
        sorted_p = np.take_along_axis(p, order, axis=-1)
        keep_sorted = np.cumsum(sorted_p, axis=-1) - sorted_p < top_p
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=-1)
        p = np.where(keep, p, 0.0)
    cdf = np.cumsum(p, axis=-1)
    u = rng.random(len(p)) * cdf[:, -1]  # inverse-CDF draw; no renormalization needed
    return np.minimum((cdf <= u[:, None]).sum(axis=-1), vocab_size - 1)


def build_step_model(model):
    """A twin of an `embedding_lstm` model that takes and returns every LSTM's state.

    Inputs [ids (batch, time), h_1, c_1, ..., h_n, c_n], outputs [logits (batch, time,
    vocab), h_1', c_1', ...]. Same layer configs (plus return_state, minus dropout, which
    is off at inference) and the trained weights copied over.
    """
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    pairs = []  # (trained layer, twin layer) to copy weights between
    embedding = model.get_layer("embedding")
    twin = layers.Embedding.from_config(embedding.get_config())
    pairs.append((embedding, twin))
    x = twin(ids)
    state_inputs, state_outputs = [], []
    i = 1
    while _has_layer(model, lstm_name(i)):
        lstm = model.get_layer(lstm_name(i))
        h = keras.Input(shape=(lstm.units,), name=f"h_{i}")
        c = keras.Input(shape=(lstm.units,), name=f"c_{i}")
        twin = layers.LSTM.from_config(
            {**lstm.get_config(), "return_sequences": True, "return_state": True})
        x, h_out, c_out = twin(x, initial_state=[h, c])
        pairs.append((lstm, twin))
        state_inputs += [h, c]
        state_outputs += [h_out, c_out]
        i += 1
    head = model.get_layer("head")
    twin = layers.Dense.from_config(head.get_config())
    logits = twin(x)
    pairs.append((head, twin))
    step_model = keras.Model([ids, *state_inputs], [logits, *state_outputs], name="step")
    for trained, copy in pairs:
        copy.set_weights(trained.get_weights())
    return step_model


class StatefulStepper:
    """Feeds ids to an `embedding_lstm` model's step twin, carrying the LSTM states."""

    def __init__(self, model, batch_size):
        self._call, state_sizes = _step_function(model)
        self.states = [np.zeros((batch_size, size), dtype=np.float32) for size in state_sizes]

    def feed(self, ids):
        """Feed ids (batch, time); return the logits after the last one (batch, vocab)."""
        logits, *self.states = self._call(np.asarray(ids, dtype=np.int32), *self.states)
        return logits[:, -1, :].numpy()


# model -> traced function (and state sizes). Building and tracing costs ~0.5 s; a worker
# that keeps a loaded model (worker.model_cache) pays it once per model, not per job.
_step_functions = weakref.WeakKeyDictionary()
_window_functions = weakref.WeakKeyDictionary()


def _step_function(model):
    if model not in _step_functions:
        step_model = build_step_model(model)
        state_sizes = [t.shape[-1] for t in step_model.inputs[1:]]

        def forward(ids, *states):
            return step_model([ids, *states], training=False)

        # One traced graph for every batch size and time length: an eager call of a Keras
        # model costs milliseconds of Python overhead per character.
        signature = [tf.TensorSpec((None, None), tf.int32)] + [
            tf.TensorSpec((None, size), tf.float32) for size in state_sizes]
        _step_functions[model] = (tf.function(forward, input_signature=signature),
                                  state_sizes)
    return _step_functions[model]


class WindowStepper:
    """Slides a `seq_length` window per sample through a `tutorial` model."""

    def __init__(self, model, seq_length, batch_size, pad_id):
        self.model = model
        self.seq_length = seq_length
        self.batch_size = batch_size
        self.pad_id = pad_id
        self._call = _window_function(model, seq_length)

    def start(self, prompt_ids):
        """Fill the windows from the prompt's last characters; return the first scores."""
        tail = np.asarray(prompt_ids[-self.seq_length:], dtype=np.int32)
        window = np.full(self.seq_length, self.pad_id, dtype=np.int32)
        window[self.seq_length - len(tail):] = tail
        self.windows = np.tile(window, (self.batch_size, 1))
        return self._scores()

    def feed(self, ids):
        """Append ids (batch, 1) to the windows; return the next scores (log-probabilities)."""
        self.windows = np.concatenate([self.windows[:, 1:], ids.astype(np.int32)], axis=1)
        return self._scores()

    def _scores(self):
        probs = self._call(self.windows).numpy()
        return np.log(np.maximum(probs, 1e-30))  # the model outputs softmax probabilities


def _window_function(model, seq_length):
    if model not in _window_functions:
        def forward(window):
            return model(window, training=False)

        _window_functions[model] = tf.function(
            forward, input_signature=[tf.TensorSpec((None, seq_length), tf.int32)])
    return _window_functions[model]


def _first_known(vocab, candidates):
    for token in candidates:
        token_id = vocab.id_of(token)
        if token_id is not None:
            return token_id
    return 1 if vocab.unknown_id == 0 else 0  # never start from <unk>


def _has_layer(model, name):
    return any(layer.name == name for layer in model.layers)
