"""The API's bodies: request models (strict) and response models (built from records).

Responses are shaped here, never returned as stored: each model lists the fields a client
sees, in a stable order (id, type, status first), and a stored field it does not name
(leases, worker internals, the owner's token digest) cannot leak. The job specs themselves
are shared/contracts/specs.py's models. The OpenAPI document is generated from these
(api/openapi.py); webhooks (shared/webhooks/outbox.py) send jobs in the same shape, so
they live in shared/.
"""

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.runtime.clock import iso_of_ms
from shared.stores.jobs import JobStatus, JobType, StoppedReason
from shared.stores.pages import CURSOR_PATTERN, MAX_LIMIT
from shared.stores import results
from shared.contracts.evaluations import MAX_OOV_SHOWN, OOV_WORD_CHARS, EvaluateSpec
from shared.stores.results import PREVIEW_CHARS, PREVIEW_SAMPLES
from shared.contracts.specs import (
    STRICT,
    GenerateSpec,
    ModelOverrides,
    PreprocessingOverrides,
    PresetName,
    TrainingOverrides,
    TrainSpec,
)

# Built from our own records: lax (a stored 1 is a valid float), unknown fields dropped.
OUT = ConfigDict(extra="ignore")

Id = Annotated[str, Field(min_length=1, max_length=100)]
SUMMARY_MESSAGE_CHARS = 300  # of a job's error message in a listing
SUMMARY_OOV = 5  # of each evaluation row's out-of-vocabulary list in a listing

# --- requests ------------------------------------------------------------------------


class Resources(BaseModel):
    model_config = STRICT

    accelerator: Literal["cpu", "gpu"] = Field("cpu", description=(
        "'gpu': run on a worker started with --gpu (queue train-gpu); refused while no "
        "such worker has ever registered"))


class WebhookFields(BaseModel):
    """Where to POST the job when it ends (and, if asked, at each epoch's end)."""

    model_config = STRICT

    webhook: Annotated[str, Field(min_length=8, max_length=2000, description=(
        "an https URL (http only to hosts the operator allows; no user:password; a host "
        "that resolves to a private or loopback address is refused unless allowed); "
        "POSTed the job, signed the Standard Webhooks way"))] | None = None
    webhook_events: Annotated[list[Literal["completed", "epoch_end"]], Field(
        min_length=1, max_length=2, description="what to send: completed (the default), "
        "epoch_end")] = ["completed"]


class TrainRequest(WebhookFields):
    model_config = STRICT

    corpus_id: Id = Field(description="the corpus to train on")
    preset: PresetName = Field("default", description="the recipe the sections override")
    preprocessing: PreprocessingOverrides = Field(default_factory=dict)
    model: ModelOverrides = Field(default_factory=dict)
    training: TrainingOverrides = Field(default_factory=dict)
    init_from_model: Id | None = Field(None, description=(
        "continue training this model: its weights, vocabulary, preprocessing and "
        "architecture; `training` still applies"))
    resources: Resources = Field(default_factory=Resources)


class GenerateRequest(GenerateSpec, WebhookFields):
    """POST /v1/generate: the generation spec (seed chosen and recorded when null) and
    where to send the job when it ends."""


class EvaluateRequest(EvaluateSpec, WebhookFields):
    """POST /v1/evaluations: the models and the text, and where to send the job when it
    ends."""


class GutenbergRequest(BaseModel):
    model_config = STRICT

    gutenberg_id: Annotated[int, Field(ge=1, le=1_000_000, description=(
        "a Project Gutenberg ebook number: the server fetches that book and strips the "
        "header and licence"))]
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class ListQuery(BaseModel):
    # Query strings are text: numbers are parsed (lax), but unknown values are refused.
    model_config = ConfigDict(extra="ignore")

    after: Annotated[str, Field(pattern=CURSOR_PATTERN, description=(
        "the `next` cursor of the previous page"))] | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="items per page")] = 50


class CorporaQuery(ListQuery):
    upload_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description=(
        "only corpora uploaded as exactly these bytes (SHA-256, hex): a client reuses "
        "the corpus of a file it uploaded before"))] | None = None


class JobsQuery(ListQuery):
    status: JobStatus | None = Field(None, description="only jobs in this status")
    type: JobType | None = Field(None, description="only jobs of this type")


# A Redis stream id, `<ms>-<seq>` (or `<ms>`): each part is an unsigned 64-bit number, which
# 19 ASCII digits always fit and 20 may not (Redis refuses the id); ours are 13-digit times
# and small sequence numbers.
EVENT_ID_PATTERN = r"^[0-9]{1,19}(-[0-9]{1,19})?$"


class EventsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    after: Annotated[str, Field(pattern=EVENT_ID_PATTERN, description=(
        "an event id (the `next` of the previous page): events after it"))] = "0"
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 100


# --- responses -----------------------------------------------------------------------


class Progress(BaseModel):
    model_config = OUT

    epoch: int
    epochs: int | None
    step: int
    steps: int | None
    fraction: float
    eta_seconds: float | None
    targets_per_s: float | None = Field(None, description=(
        "a training's speed: target characters (or word tokens) per second since its "
        "attempt's first step, validation included; null until steps are timed"))
    # A generation job's own (its step counts tokens over every sample): set as it streams.
    samples: int | None = Field(None, description="a generation's samples in all")
    samples_done: int | None = Field(None, description="a generation's finished samples")
    chars_done: int | None = Field(None, description=(
        "characters of a generation's text sent as `text` events so far, prompts included"))


class JobError(BaseModel):
    model_config = OUT

    code: str
    message: str


class Sample(BaseModel):
    model_config = OUT

    text: str = Field(description="the prompt (as prepared for the model), then what the "
                                  "model wrote")
    temperature: float


class TrainResult(BaseModel):
    model_config = OUT

    model_id: str
    best_epoch: int | None = Field(None, description="the epoch whose weights were kept")


class GenerateResult(BaseModel):
    """A generation job's result as its record keeps it: the samples are an artifact."""

    model_config = OUT

    sample_count: int
    bytes: int = Field(description="size of the samples' JSON document at `url`")
    url: str = Field(description="GET it for every sample in full")
    preview: list[Sample] = Field(description=(
        f"the first {PREVIEW_SAMPLES} samples, each cut to {PREVIEW_CHARS} characters"))


class Samples(BaseModel):
    """GET /v1/jobs/<id>/result: every sample of a generation job."""

    model_config = OUT

    samples: list[Sample]


class Attempt(BaseModel):
    model_config = OUT

    attempt: int
    worker: str | None
    started_at: str | None
    ended_at: str | None = Field(description=(
        "null while it runs; for a lost attempt, its worker's last heartbeat"))
    outcome: Literal["lost", "running", "succeeded", "failed", "cancelled"] = Field(
        description="lost: the job went on without it (its worker stopped answering, or "
                    "gave it up)")
    reason: str | None = Field(None, description="why a lost attempt ended")


class Heartbeat(BaseModel):
    model_config = OUT

    age_s: float = Field(description="since the worker last renewed the job's lease (it "
                                     "does so every TEXTGEN_LEASE_S / 6)")
    lease_left_s: float = Field(description=(
        "until the lease runs out: a worker silent that long loses the job to its next "
        "attempt (within TEXTGEN_REAP_INTERVAL_S more)"))


class EvaluationRow(BaseModel):
    """One model's line of an evaluation (worker/evaluation.py says how it is scored)."""

    model_config = OUT

    model_id: str
    level: Literal["char", "word"]
    bits_per_char: float | None = Field(description=(
        "the text's loss in bits over its characters scored (word models: over every "
        "character of the text); null when nothing was scored"))
    bits_per_token: float | None = Field(description="word models: bits per word token")
    chars_scored: int = Field(description=(
        "characters scored: char models leave out the ones not in their vocabulary"))
    tokens_scored: int
    oov_count: int = Field(description=(
        "out of the model's vocabulary: char models, characters skipped (read as if "
        "absent, not scored); word models, words scored as <unk> as in training"))
    oov: list[str] = Field(description=(
        f"those characters (or words, cut to {OOV_WORD_CHARS} characters), the most frequent "
        f"first, at most {MAX_OOV_SHOWN} (a listing of jobs shows {SUMMARY_OOV})"))
    overlaps_training: bool | None = Field(description=(
        "the text holds text this model trained on (its own corpus past its validation "
        "split); null for an inline text"))


class EvaluateResult(BaseModel):
    model_config = OUT

    chars: int = Field(description="characters of the text evaluated, before preparation")
    models: list[EvaluationRow] = Field(description="one row per model, in the order asked")


class JobSummary(BaseModel):
    """A job in a listing: what a table of jobs shows, bounded in size whatever the job
    holds (no spec, whose prompt may be 10,000 characters; an error message cut), so
    a page of 200 stays well under 1 MB. GET /v1/jobs/<id> has the rest."""

    model_config = OUT

    id: str
    type: JobType
    status: JobStatus
    created_at: str
    started_at: str | None
    finished_at: str | None
    attempt: int = Field(description="1, and one more each time a lost run is retried")
    progress: Progress
    metrics: dict[str, float | None]
    result: TrainResult | GenerateResult | EvaluateResult | None
    error: JobError | None
    stopped_reason: StoppedReason | None = Field(None, description=(
        "why a finished training job stopped"))
    corpus_id: str | None = None
    model_id: str | None = None
    model_ids: list[str] | None = Field(None, description="an evaluation's models")
    init_from_model: str | None = None
    sweep_id: str | None = Field(None, description="the sweep this job is a trial of")
    sweep_trial: int | None = Field(None, description="its trial's number in the sweep")
    sweep_final: bool | None = Field(None, description=(
        "the sweep's final phase: its best trial continued from that trial's model"))
    attempts: list[Attempt] = Field(default_factory=list, description=(
        "every attempt that started, oldest first: a job whose worker stopped answering "
        "runs again as its next attempt"))

    @model_validator(mode="before")
    @classmethod
    def _every_attempt(cls, record):
        # In the validator, so that every way of shaping a record gets it.
        return {**record, "attempts": _attempts(record)} if isinstance(record, dict) \
            else record

    @classmethod
    def of(cls, record):
        record = results.shown(record)
        error = record.get("error")
        if error and len(error.get("message") or "") > SUMMARY_MESSAGE_CHARS:
            error = {**error, "message": error["message"][:SUMMARY_MESSAGE_CHARS] + "…"}
        result = record.get("result")
        if result and "models" in result:  # an evaluation: a few of each row's oov
            result = {**result, "models": [{**row, "oov": row["oov"][:SUMMARY_OOV]}
                                           for row in result["models"]]}
        return cls.model_validate({**record, "error": error, "result": result}, strict=False)


class Job(JobSummary):
    """A job in full: its summary's fields, then what it was asked to do."""

    resources: Resources | None = None
    webhook: str | None = None
    webhook_events: list[str] | None = None
    spec: TrainSpec | GenerateSpec | EvaluateSpec
    heartbeat: Heartbeat | None = Field(None, description=(
        "a running job's worker's last sign of life (GET /v1/jobs/<id> only)"))

    @classmethod
    def of(cls, record, heartbeat=None):
        return cls.model_validate({**results.shown(record), "heartbeat": heartbeat},
                                  strict=False)


def _attempts(record):
    """The ended attempts the job store kept (its reap step), then the current one."""
    attempts = [{**a, "ended_at": iso_of_ms(a["heard_ms"])} if a.get("heard_ms") else a
                for a in record.get("attempts") or []]
    started_at = record.get("started_at")
    # started_at is the latest start: the last ended attempt's while the next one waits
    # (queued, or cancelled before it ran).
    if started_at and not (attempts and attempts[-1]["started_at"] == started_at):
        attempts.append({"attempt": record["attempt"], "worker": record.get("worker"),
                         "started_at": started_at, "ended_at": record["finished_at"],
                         "outcome": record["status"]})
    return attempts


class Corpus(BaseModel):
    model_config = OUT

    id: str
    name: str
    bytes: int
    chars: int
    encoding: str
    vocab_size: int = Field(description="distinct characters")
    sha256: str = Field(description="of the text as stored (decoded, LF line endings)")
    upload_sha256: str | None = Field(None, description="of the bytes as uploaded")
    created_at: str
    source: Literal["upload", "gutenberg"] = "upload"
    gutenberg_id: int | None = None


class Model(BaseModel):
    model_config = OUT

    id: str
    job_id: str
    corpus_id: str
    created_at: str
    preset: str
    vocab_size: int
    alphabet: str | None = Field(None, description="the characters a character-level "
                                                   "model knows, sorted")
    metrics: dict[str, Any]
    best_epoch: int | None = None
    stopped_reason: StoppedReason | None = None
    train_seconds: float | None = None
    init_from_model: str | None = None
    sweep_id: str | None = Field(None, description="the sweep whose trial trained it")
    config: TrainSpec
    files: dict[str, str] = Field(description="download path of each file")
    download: str = Field(description="one zip of every file")


class Event(BaseModel):
    """One event of a job. `type` says what `data` holds: `status` (status, and worker,
    error or reason), `epoch_end` (a training epoch's losses and sample), `resumed`
    (attempt, epoch), and `text`, a generation's text as it is sampled: `deltas`, each
    {sample, text, end}; `sample` counts over the job (temperature by temperature), one
    sample's deltas joined are its text in the result (prompt included), and its last has
    `end` true. A job handed to a new attempt (status queued with an attempt) samples
    again from the start. `progress`, a training's step as it runs, at most twice a
    second: the job's `progress` as the same write recorded it (epoch, epochs, step,
    steps, fraction, eta_seconds, targets_per_s) and `loss`, the running epoch's mean so
    far. Text and progress events stop after 5,000 of them (the record goes on), so they
    never push status events out of the stream."""

    model_config = OUT

    id: str
    type: str
    time: str
    data: dict[str, Any]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a listing; pass `next` as `after` for the following one."""

    data: list[T]
    has_more: bool
    next: str | None
    limit: int


class FieldProblem(BaseModel):
    pointer: str = Field(description="JSON pointer into the request body (RFC 6901)")
    field: str | None = None
    message: str


class Problem(BaseModel):
    """application/problem+json (RFC 9457), with a stable `code`."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    field: str | None = None
    errors: list[FieldProblem] | None = None


class Preset(BaseModel):
    name: PresetName
    description: str
    spec: TrainSpec = Field(description=(
        "what a training job of this preset runs when the request overrides nothing "
        "(max_seconds null: the service's ceiling, TEXTGEN_MAX_TRAIN_SECONDS)"))


class Presets(BaseModel):
    data: list[Preset]


class WorkerHeartbeat(BaseModel):
    name: str = Field(description="Celery's node name and the process id")
    queues: list[str]
    age_s: float = Field(description="seconds since the worker last reported")


class Health(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    redis: bool
    workers: dict[str, int] = Field(description="queue -> workers that reported lately")
    heartbeats: list[WorkerHeartbeat] = []
