"""An estimate of a training job's peak memory, made by the API before it accepts the job.

The worker streams windows from one array of token ids, so memory grows with the corpus,
not with corpus x window (the tutorial's own code needs about 600 bytes per character for
its copied windows; we need a few dozen). The constants come from bench/memory_scale.py on
this code; the estimate errs high.
"""

from shared.sizing.architecture import describe
from shared.contracts.errors import TrainingTooLargeError
from shared.contracts.specs import TrainSpec

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


def vocab_size_of(spec, corpus):
    """The vocabulary a job will have: the corpus record counts characters; a word-level
    vocabulary is capped by max_vocab. `spec`: a TrainSpec or its model_dump()."""
    preprocessing = TrainSpec.model_validate(spec).preprocessing
    return preprocessing.max_vocab if preprocessing.level == "word" else corpus["vocab_size"]


def estimate_train_memory_mb(spec, corpus_chars, vocab_size):
    """Peak resident memory, in MB, of training `spec` (a TrainSpec or its model_dump())
    on a corpus of `corpus_chars`."""
    spec = TrainSpec.model_validate(spec)
    architecture = describe(spec, vocab_size)
    steps_held = spec.training.batch_size * spec.training.seq_length
    activations = steps_held * sum(architecture.lstm_units) * FLOATS_PER_UNIT_STEP
    logits = steps_held * vocab_size * 3  # logits, softmax and their gradient
    total = (corpus_chars * BYTES_PER_CHAR[spec.preprocessing.mode]
             + architecture.parameters * BYTES_PER_PARAMETER
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
