"""What the API answers, as types: the client's own statuses, stop reasons and TypedDicts,
written from the API's OpenAPI document (/v1/openapi.json, which tests/test_client_records.py
checks them against: the client carries none of the server's code), and Page, one page of
a listing.

A record is the JSON object as received, so a field the server adds later is there too,
and `json.dumps(job)` prints exactly what the API said.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Literal, NotRequired, TypedDict, TypeVar


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self):
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class StoppedReason(StrEnum):
    """Why a finished training job stopped: its `stopped_reason`, and its model's."""

    EPOCHS_DONE = "epochs_done"  # every epoch asked for ran
    TIME_LIMIT = "time_limit"  # training.max_seconds was spent
    EARLY_STOPPING = "early_stopping"  # val_loss stopped improving for `patience` epochs
    CANCELLED = "cancelled"
    PRUNED = "pruned"  # a sweep stopped the trial at a rung


class Progress(TypedDict):
    epoch: int
    epochs: int | None
    step: int
    steps: int | None
    fraction: float
    eta_seconds: float | None  # the whole job's, not the epoch's
    targets_per_s: NotRequired[float | None]  # a training's speed: characters (or tokens)/s
    samples: NotRequired[int | None]  # a generation's (its step counts tokens)
    samples_done: NotRequired[int | None]
    chars_done: NotRequired[int | None]  # of text sent in `text` events, prompts included


class JobError(TypedDict):
    code: str
    message: str


class Sample(TypedDict):
    text: str  # the prompt (as prepared for the model), then what the model wrote
    temperature: float


class TrainResult(TypedDict):
    model_id: str
    best_epoch: int | None


class GenerateResult(TypedDict):
    sample_count: int
    bytes: int  # of the samples' JSON document at `url`
    url: str  # GET it (ApiClient.samples) for every sample in full
    preview: list[Sample]  # the first few samples, each cut short


class EvaluationRow(TypedDict):
    model_id: str
    level: Literal["char", "word"]
    bits_per_char: float | None
    bits_per_token: float | None  # word models
    chars_scored: int  # char models leave out the characters they never saw
    tokens_scored: int
    oov_count: int  # characters skipped (char models), words scored as <unk> (word models)
    oov: list[str]  # those characters or words, the most frequent first (capped)
    overlaps_training: bool | None  # the text holds text this model trained on


class EvaluateResult(TypedDict):
    chars: int  # of the text evaluated
    models: list[EvaluationRow]  # in the order asked


class Samples(TypedDict):
    samples: list[Sample]  # GET /v1/jobs/<id>/result


class Attempt(TypedDict):
    attempt: int
    worker: str | None
    started_at: str | None
    ended_at: str | None  # None while it runs
    outcome: str  # lost (the job went on without it), running, or how the job ended
    reason: NotRequired[str | None]  # why a lost attempt ended


class Heartbeat(TypedDict):
    age_s: float  # since the worker last renewed the job's lease
    lease_left_s: float  # until a silent worker loses the job to the next attempt


class JobSummary(TypedDict):
    """A job as a listing has it: no spec (GET the job for it), an error message cut."""

    id: str
    type: Literal["train", "generate", "evaluate"]
    status: str  # a JobStatus value
    created_at: str  # ISO 8601, UTC
    started_at: str | None
    finished_at: str | None
    attempt: int
    progress: Progress
    # loss, val_loss, bits_per_char; word level also bits_per_token
    metrics: dict[str, float | None]
    result: TrainResult | GenerateResult | EvaluateResult | None
    error: JobError | None
    stopped_reason: str | None  # a StoppedReason value
    corpus_id: NotRequired[str | None]
    model_id: NotRequired[str | None]
    model_ids: NotRequired[list[str] | None]  # an evaluation's
    init_from_model: NotRequired[str | None]
    sweep_id: NotRequired[str | None]  # a sweep's trial: the sweep, and its trial's number
    sweep_trial: NotRequired[int | None]
    sweep_final: NotRequired[bool | None]
    attempts: list[Attempt]  # every attempt that started, oldest first


class Job(JobSummary):
    spec: dict[str, Any]  # the training spec (preset, preprocessing, model, training), the
    # generation spec or the evaluation spec
    heartbeat: NotRequired[Heartbeat | None]  # a running job read on its own
    resources: NotRequired[dict[str, str] | None]
    webhook: NotRequired[str | None]
    webhook_events: NotRequired[list[str] | None]


class Corpus(TypedDict):
    id: str
    name: str
    bytes: int
    chars: int
    encoding: str
    vocab_size: int  # distinct characters
    sha256: str  # of the text as stored (decoded, LF line endings)
    upload_sha256: str | None  # of the bytes as uploaded
    created_at: str
    source: Literal["upload", "gutenberg"]
    gutenberg_id: NotRequired[int | None]


class Model(TypedDict):
    id: str
    job_id: str
    corpus_id: str
    created_at: str
    preset: str
    vocab_size: int
    alphabet: str | None
    metrics: dict[str, Any]
    best_epoch: int | None
    stopped_reason: str | None  # a StoppedReason value
    train_seconds: float | None
    init_from_model: str | None
    config: dict[str, Any]  # the training spec the model was made with
    files: dict[str, str]  # file name -> download path
    download: str  # the path of one zip of every file


class Event(TypedDict):
    id: str  # the stream id: pass it as `after` (or Last-Event-ID) for what came since
    type: str  # status, resumed, epoch_end
    time: str
    data: dict[str, Any]


class WorkerHeartbeat(TypedDict):
    name: str
    queues: list[str]
    age_s: float  # since the worker last reported


class Health(TypedDict):
    status: Literal["ok", "degraded", "unavailable"]
    redis: bool
    workers: dict[str, int]  # queue -> workers that reported lately
    heartbeats: list[WorkerHeartbeat]


class Preset(TypedDict):
    name: str
    description: str
    spec: dict[str, Any]  # the training spec a job of it runs when nothing is overridden


class Whoami(TypedDict):
    owner: str
    quotas: dict[str, float]  # setting name (max_queued_jobs, max_storage_mb...) -> limit
    # jobs_queued, jobs_running, storage_bytes, storage_reserved_bytes, streams_open,
    # downloads_open, models, corpora, sweeps, sweeps_running
    usage: dict[str, float]


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; pass `next` as `after` for the following one."""

    data: list[T]
    has_more: bool
    next: str | None
    limit: int

    @classmethod
    def of(cls, body):
        return cls(data=body["data"], has_more=body["has_more"], next=body["next"],
                   limit=body["limit"])


def is_final(event):
    """True for the status event that ends a job."""
    return event["type"] == "status" and JobStatus(event["data"]["status"]).is_terminal


class SweepStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"


def is_sweep_final(event):
    """True for the status event that ends a sweep (it has no other)."""
    return event["type"] == "status" and event["data"]["status"] != SweepStatus.RUNNING


class SweepTrial(TypedDict):
    number: int
    params: dict[str, Any]  # dotted spec field -> its value in this trial
    job_id: str | None
    status: str  # a JobStatus value, or "pruned" (stopped at a rung)
    rung: int  # epochs reported to the study
    best_val_loss: float | None


class Sweep(TypedDict):
    id: str
    status: str  # a SweepStatus value
    corpus_id: str
    created_at: str
    finished_at: str | None
    max_trials: int
    trials_made: int
    best: dict[str, Any] | None  # number, job_id, model_id, val_loss, params, final
    trials: NotRequired[list[SweepTrial]]  # GET /v1/sweeps/<id> only, not the listing
