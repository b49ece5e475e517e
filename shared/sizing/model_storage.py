"""What a training job will store, known before it is accepted: the model-size ceiling
(TEXTGEN_MAX_MODEL_MB) and the room it reserves under its owner's storage quota.

A saved model file (model.keras: weights and Adam's two moments, all float32) measured
12.0-12.2 bytes a parameter plus ~30 KB of archive and config on 10k-875k parameter
models (2026-12-01, Keras 3.15). A job keeps its last and best checkpoints, a third while
a new epoch's file is stored before the oldest is pruned; then its model.
"""

from shared.sizing.architecture import describe
from shared.contracts.errors import ModelTooLargeError
from shared.sizing.train_memory import FLOAT_BYTES, vocab_size_of

MB = 1024 * 1024
OPTIMIZER_FACTOR = 3  # weights, and Adam's first and second moments, in every saved file
FILE_OVERHEAD_BYTES = 64 * 1024  # a .keras archive's config and zip entries (~30 KB seen)
FILES_AT_ONCE = 3  # checkpoints: last, best, and the next; or last, best and the model
JSON_BYTES = 64 * 1024  # vocab.json, config.json, metrics.json and state.json together


def check_model_size(spec, corpus, limit_mb):
    """ModelTooLargeError (422) when the model's weights (parameters x 4 bytes) would be
    over `limit_mb`; returns the parameter count."""
    parameters = describe(spec, vocab_size_of(spec, corpus)).parameters
    weights_mb = parameters * FLOAT_BYTES / MB
    if weights_mb > limit_mb:
        raise ModelTooLargeError(
            f"this model has {parameters:,} parameters ({weights_mb:,.0f} MB of weights), "
            f"over the limit of {limit_mb:,.0f} MB (TEXTGEN_MAX_MODEL_MB); ask for fewer "
            "units or layers", field="model",
            extra={"parameters": parameters, "weights_mb": round(weights_mb, 1),
                   "limit_mb": limit_mb})
    return parameters


def job_storage_bytes(parameters):
    """The most a training job of `parameters` stores at once: checkpoints and model."""
    per_file = parameters * FLOAT_BYTES * OPTIMIZER_FACTOR + FILE_OVERHEAD_BYTES
    return FILES_AT_ONCE * per_file + JSON_BYTES


def training_reservation(svc, owner, spec, corpus):
    """Refuse a model over TEXTGEN_MAX_MODEL_MB (422); else the room the job reserves
    under the owner's quota, taken (or refused, 507) by the step that stores the job
    (StorageQuota.reservation)."""
    parameters = check_model_size(spec, corpus, svc.settings.max_model_mb)
    return svc.storage.reservation(owner, job_storage_bytes(parameters),
                                   what="this training job")
