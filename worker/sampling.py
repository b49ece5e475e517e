"""Sampling: text from a loaded model, many samples as one batch.

A token is a character or a word (with punctuation marks and line breaks), as the model's
vocabulary says (worker.vocab).

- `embedding_lstm` models are stepped in NumPy with their trained weights, carrying each
  LSTM's (h, c) from one token to the next, so each token costs one step whatever the
  text length so far.
- `tutorial` models keep their meaning: each token is predicted from the previous
  `seq_length` tokens starting from a zero state, one full window per step.

Decisions a caller can rely on:

- `length` counts tokens: characters, or words and punctuation marks.
- The prompt is encoded by the model's vocabulary as given (worker/runs.py prepares it as
  the corpus was first). A character outside a character vocabulary is an error
  (UnknownCharactersError); unknown words become `<unk>`, as in training.
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

import numpy as np

from worker.models import EMBEDDING_LSTM, lstm_name

START_TOKENS = ("\n", " ")  # preference order for the start token of an empty prompt
PAD_TOKEN = " "  # left padding of a short tutorial window


CHECK_EVERY = 32  # tokens between two calls of `check` (a Redis read when a job runs)


def generate(loaded, *, prompt="", length=200, temperature=1.0, top_k=0, top_p=1.0,
             num_samples=1, seed=None, stop=None, check=None, watch=None):
    """Return `num_samples` continuations of `prompt` (without it), each `length` tokens
    unless `stop` cut it short. `top_k` 0 and `top_p` 1.0 mean no limit.

    `check()` is called every CHECK_EVERY tokens and may raise to end sampling (a cancelled
    job, a time limit). `watch(ids, ends)` sees every step: the ids drawn so far (batch,
    tokens) and, per sample, the text `stop` ended it with or None (worker/text_stream.py
    streams them). A character of the prompt outside the vocabulary raises ValueError.
    """
    vocab = loaded.vocab
    rng = np.random.default_rng(seed)
    prompt_ids = vocab.encode(prompt)
    if loaded.spec.model.architecture == EMBEDDING_LSTM:
        stepper = StatefulStepper(loaded.model, num_samples)
        if len(prompt_ids) == 0:
            prompt_ids = np.array([start_token_id(vocab)], dtype=np.int32)
        scores = stepper.feed(np.tile(prompt_ids, (num_samples, 1)))
    else:
        stepper = WindowStepper(loaded.model, loaded.spec.training.seq_length, num_samples,
                                pad_id=_first_known(vocab, (PAD_TOKEN,)))
        scores = stepper.start(prompt_ids)

    generated = np.empty((num_samples, length), dtype=np.int64)  # token ids, per sample
    ends = [None] * num_samples  # (tokens kept, text) once `stop` ended a sample
    for position in range(length):
        if check is not None and position % CHECK_EVERY == 0:
            check()
        if vocab.unknown_id is not None:
            scores = np.array(scores, dtype=np.float64)  # (batch, vocab)
            scores[:, vocab.unknown_id] = -np.inf  # logits and log-probabilities alike
        next_ids = next_token_ids(scores, temperature, top_k, top_p, rng)
        generated[:, position] = next_ids
        if stop:
            # Checked after every token, so the first match ends a sample right there.
            for i in range(num_samples):
                if ends[i] is None:
                    text = _cut_at_stop(vocab, generated[i, :position + 1], stop)
                    if text is not None:
                        ends[i] = text
        if watch is not None:
            watch(generated[:, :position + 1], ends)
        if stop and all(end is not None for end in ends):
            break
        if position < length - 1:
            scores = stepper.feed(next_ids[:, None])
    return [vocab.join([vocab.tokens[j] for j in ids]) if end is None else end
            for ids, end in zip(generated.tolist(), ends)]


def sample_now(loaded, **options):
    """generate() from a model whose weights change between calls (one in training).

    The NumPy weights cached for a model are copies taken when first used, so they are
    dropped first: each call samples today's weights.
    """
    _weights_cache.pop(loaded.model, None)
    return generate(loaded, **options)


def _cut_at_stop(vocab, ids, stop):
    """The text of `ids` up to `stop` if the last token completed it, else None.

    Only the tail that can hold a new occurrence is joined at each step, so a long sample
    costs O(length) joins of a few tokens, not O(length**2) characters: every token is at
    least one character, so `len(stop) + 1` tokens (one more for a separator the
    detokenizer may put between two of them) cover it.
    """
    if stop not in vocab.join([vocab.tokens[j] for j in ids[-(len(stop) + 1):]]):
        return None
    text = vocab.join([vocab.tokens[j] for j in ids])
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


class LstmWeights:
    """An `embedding_lstm` model's weights as NumPy arrays, for stepping it in NumPy.

    One character through a 2x128 LSTM is a handful of small matrix products: NumPy does
    them in microseconds, while calling a Keras model (or a traced function) costs a
    millisecond of dispatch per call whatever the size. Gate order and activations are
    Keras' (i, f, c, o; sigmoid and tanh); the model's configs are checked, not assumed.

    Two rearrangements save work per step, exactly: the first layer's input projection of
    every token is precomputed (embedding @ kernel + bias, a (vocab, 4u) table), and the
    other layers multiply [x, h] by their stacked kernels in one product.
    """

    def __init__(self, model):
        embedding = np.asarray(model.get_layer("embedding").embeddings)  # (vocab, emb)
        self.input_table = None  # (vocab, 4u): layer 1's x @ kernel + bias, per token
        self.layers = []  # per layer: (stacked kernel (in + u, 4u) or recurrent, bias)
        self.state_sizes = []
        for i, lstm in enumerate(_lstm_layers(model), start=1):
            kernel, recurrent, bias = _lstm_arrays(lstm)
            if i == 1:
                self.input_table = embedding @ kernel + bias
                self.layers.append((recurrent, None))
            else:
                self.layers.append((np.concatenate([kernel, recurrent]), bias))
            self.state_sizes.append(recurrent.shape[0])
        head_kernel, *head_bias = [np.asarray(w) for w in model.get_layer("head").get_weights()]
        self.head = (head_kernel, head_bias[0] if head_bias else 0.0)  # (u, vocab), (vocab,)


def _lstm_arrays(lstm):
    """(kernel (in, 4u), recurrent kernel (u, 4u), bias (4u,)) of a Keras LSTM layer."""
    config = lstm.get_config()
    if (config["activation"], config["recurrent_activation"]) != ("tanh", "sigmoid"):
        raise ValueError(f"{lstm.name}: the NumPy sampler assumes tanh and sigmoid")
    kernel, recurrent, *bias = [np.asarray(w) for w in lstm.get_weights()]
    return kernel, recurrent, bias[0] if bias else np.zeros(kernel.shape[1], np.float32)


def _sigmoid(x):
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # the same function, without overflow in exp


def lstm_update(z, c):
    """One LSTM step from its pre-activations z (batch, 4u), gates i, f, c, o side by side
    as Keras orders them; returns the new (h, c). One sigmoid over all four (the c slice
    unused) costs less than three calls on the slices."""
    u = c.shape[1]
    gates = _sigmoid(z)
    c = gates[:, u:2 * u] * c + gates[:, :u] * np.tanh(z[:, 2 * u:3 * u])
    return gates[:, 3 * u:] * np.tanh(c), c


class StatefulStepper:
    """Feeds ids to an `embedding_lstm` model one step at a time, carrying each LSTM's
    (h, c) for every stream: a token costs one step whatever the text length so far."""

    def __init__(self, model, batch_size):
        self.weights = lstm_weights(model)
        self.states = [(np.zeros((batch_size, size), np.float32),
                        np.zeros((batch_size, size), np.float32))
                       for size in self.weights.state_sizes]

    def feed(self, ids):
        """Feed ids (batch, time); return the logits after the last one (batch, vocab)."""
        ids = np.asarray(ids)
        for t in range(ids.shape[1]):
            x = None
            for layer, (weights, bias) in enumerate(self.weights.layers):
                h, c = self.states[layer]
                if layer == 0:
                    z = self.weights.input_table[ids[:, t]] + h @ weights
                else:
                    z = np.concatenate([x, h], axis=1) @ weights + bias
                h, c = lstm_update(z, c)
                self.states[layer] = (h, c)
                x = h
        kernel, bias = self.weights.head
        return x @ kernel + bias


# model -> its weights as NumPy arrays (LstmWeights or TutorialWeights). Copying them costs
# milliseconds; a worker that keeps a loaded model (worker.model_cache) pays it once per
# model, not per job.
_weights_cache = weakref.WeakKeyDictionary()


def _cached(model, kind):
    if model not in _weights_cache:
        _weights_cache[model] = kind(model)
    return _weights_cache[model]


class TutorialWeights:
    """A `tutorial` model's weights as NumPy arrays: the scaling of ids, each LSTM's, the
    softmax head's. Its forward pass runs every window from a zero state, as the tutorial's
    model does, so a sample means exactly what the trained model means."""

    def __init__(self, model):
        scale = model.get_layer("scale").get_config()
        self.scale, self.offset = scale["scale"], scale["offset"]
        self.lstms = [_lstm_arrays(lstm) for lstm in _lstm_layers(model)]
        self.head = [np.asarray(w) for w in model.get_layer("head").get_weights()]

    def log_probs(self, windows):
        """Log-probabilities of the token after each window (batch, seq_length) of ids."""
        x = (windows * self.scale + self.offset).astype(np.float32)[:, :, None]  # (b, t, 1)
        for kernel, recurrent, bias in self.lstms:
            z_in = x @ kernel + bias  # every step's input projection at once: (b, t, 4u)
            h = c = np.zeros((len(windows), recurrent.shape[0]), np.float32)
            outputs = []
            for t in range(windows.shape[1]):
                h, c = lstm_update(z_in[:, t] + h @ recurrent, c)
                outputs.append(h)
            x = np.stack(outputs, axis=1)  # (b, t, u): the next layer's input
        kernel, bias = self.head
        logits = h @ kernel + bias  # the last step only, as the tutorial's last LSTM
        shifted = logits - logits.max(axis=-1, keepdims=True)  # log-softmax, stably
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class WindowStepper:
    """Slides a `seq_length` window per sample through a `tutorial` model."""

    def __init__(self, model, seq_length, batch_size, pad_id):
        self.weights = _cached(model, TutorialWeights)
        self.seq_length = seq_length
        self.batch_size = batch_size
        self.pad_id = pad_id

    def start(self, prompt_ids):
        """Fill the windows from the prompt's last characters; return the first scores."""
        tail = np.asarray(prompt_ids[-self.seq_length:], dtype=np.int32)
        window = np.full(self.seq_length, self.pad_id, dtype=np.int32)
        window[self.seq_length - len(tail):] = tail
        self.windows = np.tile(window, (self.batch_size, 1))
        return self.weights.log_probs(self.windows)

    def feed(self, ids):
        """Append ids (batch, 1) to the windows; return the next scores (log-probabilities)."""
        self.windows = np.concatenate([self.windows[:, 1:], ids.astype(np.int32)], axis=1)
        return self.weights.log_probs(self.windows)


def start_token_id(vocab):
    """The token an `embedding_lstm` model is fed before a text that has no context."""
    return _first_known(vocab, START_TOKENS)


def lstm_weights(model):
    """An `embedding_lstm` model's LstmWeights, copied once per model."""
    return _cached(model, LstmWeights)


def _first_known(vocab, candidates):
    for token in candidates:
        token_id = vocab.id_of(token)
        if token_id is not None:
            return token_id
    return 1 if vocab.unknown_id == 0 else 0  # never start from <unk>


def _lstm_layers(model):
    """The model's LSTM layers in order: lstm_1, lstm_2, ... (worker.models names them)."""
    names = {layer.name for layer in model.layers}
    i = 1
    while lstm_name(i) in names:
        yield model.get_layer(lstm_name(i))
        i += 1
