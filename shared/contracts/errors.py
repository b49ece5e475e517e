"""The one error tree of textgen.

Every error a user can see carries a stable `code` (machine-readable, never reworded), an
HTTP `status` the API answers with, and optionally the `field` at fault. The API maps this
tree to application/problem+json in one place (api/errors.py); workers record `code` and
the message on the failed job.
"""


class TextgenError(Exception):
    """Base of every error textgen raises on purpose."""

    code = "error"
    status = 500
    title = "Internal error"

    def __init__(self, message, *, field=None, extra=None, headers=None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}  # more members of the problem document
        self.headers = headers or {}  # response headers (WWW-Authenticate, Retry-After)


class InternalError(TextgenError):
    """Raised for what nobody planned: the API's 500, and a job whose worker hit an
    unexpected exception. Its message reveals nothing; the log has the exception."""

    code = "internal_error"


class ConfigError(TextgenError):
    """Raised when settings read from the environment are missing or invalid."""

    code = "config_invalid"
    title = "Invalid configuration"


class ValidationError(TextgenError):
    """Raised when a request or a job spec has a field of the wrong type or value.

    `errors` lists every field at fault, each {pointer, field, message}: pointer is a JSON
    pointer into the request body (RFC 6901), field the same path dotted.
    """

    code = "validation_failed"
    status = 422
    title = "Invalid input"

    def __init__(self, message, *, field=None, errors=None, extra=None):
        errors = errors or ([{"pointer": "/" + field.replace(".", "/"), "field": field,
                              "message": message}] if field else [])
        super().__init__(message, field=field, extra={"errors": errors, **(extra or {})})

    @classmethod
    def from_pydantic(cls, e):
        """The ValidationError listing every field a pydantic ValidationError `e` names: a
        request body, query or the spec built from them that breaks its model."""
        errors = []
        for item in e.errors(include_url=False):
            path = [str(part) for part in item["loc"]]
            pointer = "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in path)
            message = item["msg"].removeprefix("Value error, ")
            if item["type"] == "extra_forbidden":
                message = "unknown field"
            errors.append({"pointer": pointer, "field": ".".join(path) or None,
                           "message": message})
        detail = "; ".join(f"{err['field'] or 'body'}: {err['message']}" for err in errors)
        return cls(detail, field=errors[0]["field"] if errors else None, errors=errors)


class UnknownCharactersError(ValidationError):
    """Raised when a prompt or a corpus holds characters the model never saw."""

    code = "unknown_characters"
    title = "Characters the model never saw"


class UnauthorizedError(TextgenError):
    """Raised when a request carries no bearer token, or one we do not know."""

    code = "unauthorized"
    status = 401
    title = "Unauthorized"

    def __init__(self, message):
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="textgen"'})


class TooManyQueuedJobsError(TextgenError):
    """Raised when an owner already has TEXTGEN_MAX_QUEUED_JOBS jobs waiting for a worker."""

    code = "too_many_queued_jobs"
    status = 429
    title = "Too many queued jobs"


class TooManyStreamsError(TextgenError):
    """Raised when an owner already holds TEXTGEN_MAX_STREAMS_PER_OWNER event streams and
    waits open."""

    code = "too_many_streams"
    status = 429
    title = "Too many open streams"


class TooManyDownloadsError(TextgenError):
    """Raised when an owner already has TEXTGEN_MAX_DOWNLOADS_PER_OWNER downloads going."""

    code = "too_many_downloads"
    status = 429
    title = "Too many downloads at once"


class ServiceUnavailableError(TextgenError):
    """Raised when Redis, the broker or an outside service cannot be reached right now."""

    code = "service_unavailable"
    status = 503
    title = "Service unavailable"


class GenerationTooLargeError(TextgenError):
    """Raised when a generation job's estimated time is over the generation time limit."""

    code = "generation_too_large"
    status = 422
    title = "Generation would take too long"


class EvaluationTooLargeError(GenerationTooLargeError):
    """Raised when an evaluation's estimated time is over the generation time limit (it
    runs on the generate queue)."""

    code = "evaluation_too_large"
    title = "Evaluation would take too long"


class MalformedRequestError(TextgenError):
    """Raised when a request body cannot be parsed at all (bad JSON, wrong content type)."""

    code = "malformed_request"
    status = 400
    title = "Malformed request"


class PayloadTooLargeError(TextgenError):
    """Raised when an upload is over the configured size limit."""

    code = "payload_too_large"
    status = 413
    title = "Payload too large"


class CorpusRejectedError(TextgenError):
    """Raised when an uploaded corpus is empty, binary or otherwise unusable as text."""

    code = "corpus_rejected"
    status = 422
    title = "Corpus rejected"


class TrainingTooLargeError(TextgenError):
    """Raised when a training job's estimated memory is over TEXTGEN_MAX_TRAIN_MEMORY_MB."""

    code = "training_too_large"
    status = 422
    title = "Training would not fit in memory"


class NotFoundError(TextgenError):
    """Raised when a corpus, job or model id does not exist (or is not the caller's)."""

    code = "not_found"
    status = 404
    title = "Not found"


class InsufficientStorageError(TextgenError):
    """Raised when an upload cannot be stored because the artifact store is full."""

    code = "insufficient_storage"
    status = 507
    title = "Insufficient storage"


class StorageQuotaError(InsufficientStorageError):
    """Raised when an upload or a training job would take its owner past
    TEXTGEN_MAX_STORAGE_MB."""

    code = "storage_quota_exceeded"
    title = "Storage quota exceeded"


class ModelTooLargeError(ValidationError):
    """Raised when a training job's model would be over TEXTGEN_MAX_MODEL_MB."""

    code = "model_too_large"


class ConflictError(TextgenError):
    """Raised when a state change is not allowed from the record's current state."""

    code = "conflict"
    status = 409
    title = "Conflict"


class InUseError(ConflictError):
    """Raised when a corpus or model is deleted while a queued or running job uses it."""

    code = "in_use"
    title = "In use"


class IdempotencyKeyReusedError(ConflictError):
    """Raised when an Idempotency-Key comes back with another request body."""

    code = "idempotency_key_reused"
    title = "Idempotency key reused"


class JobFailedError(TextgenError):
    """Base of errors that end a job as failed; `code` is recorded on the job."""

    code = "job_failed"
    title = "Job failed"


class NltkDataMissingError(JobFailedError):
    """Raised when NLTK data the tutorial preprocessing needs is absent and cannot be fetched."""

    code = "nltk_data_missing"
    title = "NLTK data missing"


class CorpusTooSmallError(JobFailedError):
    """Raised when the prepared text is too short for the requested windows and split."""

    code = "corpus_too_small"
    title = "Corpus too small"


class TrainingDivergedError(JobFailedError):
    """Raised when the training loss became NaN or infinite: no model is registered."""

    code = "training_diverged"
    title = "Training diverged"


class ArtifactMissingError(JobFailedError):
    """Raised when a stored corpus or model file a job needs is not in the artifact store."""

    code = "artifact_missing"
    status = 404  # answered by the API when a file to download is gone
    title = "Artifact missing"


class StorageError(JobFailedError):
    """Raised when the artifact store or the scratch cache cannot be written or read: a full
    disk, a read-only or forbidden location, an unreachable or refusing S3 endpoint."""

    code = "storage_failed"
    status = 503  # answered by the API: the store cannot be written now, not the input's fault
    title = "Storage failed"


class StorageFullError(StorageError):
    """Raised when the artifact store or the scratch cache has no room left (ENOSPC, a
    quota, an S3 server's 507). A job records it as storage_failed; an upload answers 507
    (InsufficientStorageError)."""
