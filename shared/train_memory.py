"""An estimate of a training job's peak memory, made by the API before it accepts the job.

The worker streams windows from one array of token ids, so memory grows with the corpus,
not with corpus x window (the tutorial's own code needs about 600 bytes per character for
its copied windows; we need a few dozen). The constants come from bench/memory_scale.py on
this code; the estimate errs high.
"""

from shared.errors import TrainingTooLargeError

RUNTIME_MB = 800  # a worker with TensorFlow and Keras loaded and a model built (685 measured)
# Per corpus character, at the peak: the text, its int32 ids and the chunk being encoded
# (measured: 5.2 bytes a character from 1 to 100 MB). Tutorial preprocessing also holds a
# lowercase copy and a list of word strings (~60 bytes a word, a word ~6 characters).
BYTES_PER_CHAR = {"raw": 8, "tutorial": 24}
FLOAT_BYTES = 4
# Per parameter: the weights, their gradients and Adam's two moments, all float32.
BYTES_PER_PARAMETER = 4 * FLOAT_BYTES
# Per LSTM unit and time step, the activations kept for the backward pass (four gates,
# cell and hidden state, and their pre-activations), float32.
FLOATS_PER_UNIT_STEP = 12


def lstm_layer_sizes(model):
    """Units of each LSTM layer: the tutorial's last layer has half."""
    sizes = [model["units"]] * model["layers"]
    if model["architecture"] == "tutorial":
        sizes[-1] = max(1, model["units"] // 2)
    return sizes


def parameter_count(model, vocab_size):
    sizes = lstm_layer_sizes(model)
    embedded = model["architecture"] == "embedding_lstm"
    width = model["embedding_dim"] if embedded else 1
    count = vocab_size * model["embedding_dim"] if embedded else 0
    for units in sizes:
        count += 4 * units * (width + units + 1)
        width = units
    return count + (width + 1) * vocab_size


def vocab_size_of(spec, corpus):
    """The vocabulary a job will have: the corpus record counts characters; a word-level
    vocabulary is capped by max_vocab."""
    preprocessing = spec["preprocessing"]
    return (preprocessing["max_vocab"] if preprocessing.get("level") == "word"
            else corpus["vocab_size"])


def estimate_train_memory_mb(spec, corpus_chars, vocab_size):
    """Peak resident memory, in MB, of training `spec` on a corpus of `corpus_chars`."""
    model, training = spec["model"], spec["training"]
    steps_held = training["batch_size"] * training["seq_length"]
    activations = steps_held * sum(lstm_layer_sizes(model)) * FLOATS_PER_UNIT_STEP
    logits = steps_held * vocab_size * 3  # logits, softmax and their gradient
    total = (corpus_chars * BYTES_PER_CHAR[spec["preprocessing"]["mode"]]
             + parameter_count(model, vocab_size) * BYTES_PER_PARAMETER
             + (activations + logits) * FLOAT_BYTES)
    return RUNTIME_MB + total / 2**20


def check_train_memory(spec, corpus, limit_mb):
    """Raise TrainingTooLargeError, with the estimate, when `spec` on `corpus` (its record)
    would need more than `limit_mb`."""
    estimate_mb = estimate_train_memory_mb(spec, corpus["chars"], vocab_size_of(spec, corpus))
    if estimate_mb > limit_mb:
        raise TrainingTooLargeError(
            f"training this corpus ({corpus['chars']:,} characters) with these settings "
            f"needs about {estimate_mb:,.0f} MB, over the limit of {limit_mb:,.0f} MB "
            "(TEXTGEN_MAX_TRAIN_MEMORY_MB)", field="corpus_id",
            extra={"estimate_mb": round(estimate_mb), "limit_mb": round(limit_mb)})
    return estimate_mb
