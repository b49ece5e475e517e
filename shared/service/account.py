"""What an owner may use and uses now (GET /v1/whoami): the operator's limits beside the
owner's usage, each read from the store that enforces it, so the two never disagree."""

from pydantic import BaseModel, ConfigDict, Field


class Quotas(BaseModel):
    """The limits that apply to every owner, named as shared/runtime/settings.py names them."""

    # Built from Settings' attributes: any other setting (URLs, digests) is left out.
    model_config = ConfigDict(extra="ignore", from_attributes=True)

    max_queued_jobs: int = Field(description="jobs waiting for a worker at once; one more "
                                             "answers 429 (TEXTGEN_MAX_QUEUED_JOBS)")
    max_running_per_owner: int = Field(description=(
        "jobs of yours one queue's workers run at once; the rest wait their turn "
        "(TEXTGEN_MAX_RUNNING_PER_OWNER)"))
    max_storage_mb: float = Field(description="corpora, models and checkpoints kept; past "
                                              "it uploads and training answer 507")
    max_streams_per_owner: int = Field(description="event streams and Prefer: wait "
                                                   "requests open at once")
    max_downloads_per_owner: int = Field(description="model files and zips downloaded "
                                                     "from the API at once")
    max_train_seconds: float = Field(description="the longest training budget a job may "
                                                 "have, and the one it gets when it sets none")
    max_model_mb: float = Field(description="a training job's model (parameters x 4 bytes)")
    max_train_memory_mb: float = Field(description="a training job's estimated memory")
    max_upload_bytes: int = Field(description="one corpus upload")
    generation_max_s: float = Field(description="a generation job's time limit")
    max_result_mb: float = Field(description="a generation job's samples, stored")


class Usage(BaseModel):
    jobs_queued: int = Field(description="waiting for their turn, on every queue (counted "
                                         "against max_queued_jobs)")
    jobs_running: int = Field(description="holding a worker slot (sent to a worker, or "
                                          "running), on every queue")
    storage_bytes: int = Field(description="corpora, models and checkpoints stored")
    storage_reserved_bytes: int = Field(description=(
        "held for what queued and running training jobs may still store; counted against "
        "max_storage_mb with storage_bytes"))
    streams_open: int = Field(description="event streams and Prefer: wait requests open now")
    downloads_open: int = Field(description="downloads from the API under way now")
    models: int
    corpora: int
    sweeps: int
    sweeps_running: int = Field(description="sweeps still making or running trials")


class Whoami(BaseModel):
    owner: str
    quotas: Quotas
    usage: Usage


def whoami(svc, stream_slots, download_slots, owner):
    """`owner`'s Whoami, from the services (shared/runtime/services.py) and the API's
    stream and download slots (OwnerSlots)."""
    queued, running = svc.jobs.scheduler.counts_of(owner)
    stored, reserved = svc.storage.usage(owner)
    usage = Usage(jobs_queued=queued, jobs_running=running, storage_bytes=stored,
                  storage_reserved_bytes=reserved, streams_open=stream_slots.held(owner),
                  downloads_open=download_slots.held(owner),
                  models=svc.models.count(owner), corpora=svc.corpora.count(owner),
                  sweeps=svc.sweeps.count(owner),
                  sweeps_running=svc.sweeps.running_count(owner))
    return Whoami(owner=owner, quotas=Quotas.model_validate(svc.settings), usage=usage)
