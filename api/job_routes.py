"""Jobs: submit training and generation, read one, list them, follow, cancel, delete."""

import re
import time

import pydantic
from flask import Blueprint, request

from api.auth import current_owner
from api.bodies import json_body, query
from api.context import event_hub, services
from api.errors import validation_error
from api.held import take_slot
from api.event_stream import EVENTS_ANSWER, EVENTS_CONTENT, events_answer
from api.idempotency import IDEMPOTENCY, idempotent, stored_answer
from api.openapi import operation
from api.responses import created, page_response, respond
from shared.errors import (
    ConflictError,
    GenerationTooLargeError,
    UnknownCharactersError,
    ValidationError,
)
from shared.generation_cost import estimate_generation_s
from shared.jobs import JobStatus, JobType
from shared.model_sizing import with_sized_model
from shared.model_storage import reserve_training_storage
from shared.queue import queue_of, send_released
from shared.results import check_result_size
from shared.schemas import (
    GenerateRequest,
    Job,
    JobsQuery,
    JobSummary,
    Page,
    TrainRequest,
    WebhookFields,
)
from shared.specs import GenerateSpec, TrainSpec, resolve_train_spec
from shared.stream_slots import RENEW_S
from shared.textprep import prepared_characters
from shared.train_memory import check_train_memory
from shared.webhook_targets import check_webhook_url

bp = Blueprint("jobs", __name__, url_prefix="/v1")

MAX_PREFER_WAIT_S = 60
_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait=(\d{1,4})(?:$|[,;\s])")


def _submit(job_type, spec, body, **lineage):
    """Store the job in its turn and send what that released; (record, 202 answer with
    where to poll it)."""
    svc = services()
    if body.webhook:
        lineage.update(webhook=check_webhook_url(body.webhook, svc.settings.webhook_allow_hosts),
                       webhook_events=sorted(set(body.webhook_events)))
    record = svc.jobs.new_record(job_type, spec, current_owner(), **lineage)
    accepted = created(Job.of(record), f"/v1/jobs/{record['id']}", status=202)
    released = svc.jobs.admit(record, max_queued=svc.settings.max_queued_jobs,
                              answer=stored_answer(accepted))
    # The job is stored: a message the broker does not take now is sent by the reaper.
    send_released(svc.celery, queue_of(record), released)
    return record, accepted


@bp.post("/train")
@operation("Submit a training job",
           {202: Job, 400: None, 404: None, 409: None, 429: None, 507: None},
           body=TrainRequest, headers=IDEMPOTENCY)
@idempotent
def submit_training():
    body = json_body(TrainRequest)
    svc = services()
    owner = current_owner()
    corpus = svc.corpora.get(body.corpus_id, owner, field="corpus_id")
    lineage = {"corpus_id": corpus["id"]}
    if body.init_from_model:
        source = svc.models.get(body.init_from_model, owner, field="init_from_model")
        spec = _continued_spec(body, source, corpus)
        lineage["init_from_model"] = source["id"]
    else:
        overrides = body.model_dump(include={"preprocessing", "model", "training"})
        # Sized by the throughput the workers of the job's queue measured (None: not yet).
        measured = svc.throughput.chars_per_s(queue_of(
            {"type": JobType.TRAIN.value, "resources": body.resources.model_dump()}))
        spec = _validated(resolve_train_spec, body.preset,
                          with_sized_model(body.preset, overrides, corpus["chars"], measured))
    spec = _within_time_ceiling(spec, body, svc.settings.max_train_seconds).model_dump()
    check_train_memory(spec, corpus, svc.settings.max_train_memory_mb)
    resources = body.resources.model_dump()
    if resources["accelerator"] == "gpu" and not svc.redis.exists(svc.keys.gpu_workers()):
        raise ValidationError("no worker with a GPU has ever registered here; ask for "
                              "accelerator 'cpu', or start a worker with --gpu",
                              field="resources.accelerator")
    with reserve_training_storage(svc, owner, spec, corpus) as attach:  # 422, 507
        record, accepted = _submit(JobType.TRAIN, spec, body, resources=resources, **lineage)
        attach(record["id"])
    return accepted


def _within_time_ceiling(spec, body, ceiling_s):
    """Every training job ends: a budget asked above the operator's ceiling is a 422; none
    (or one inherited from a continued model above it) becomes the ceiling."""
    asked = body.training.get("max_seconds")
    if asked is not None and asked > ceiling_s:
        raise ValidationError(f"training.max_seconds may be at most {ceiling_s:g} s here "
                              "(TEXTGEN_MAX_TRAIN_SECONDS)", field="training.max_seconds",
                              extra={"limit_s": ceiling_s})
    if spec.training.max_seconds is not None and spec.training.max_seconds <= ceiling_s:
        return spec
    return spec.model_copy(update={"training": spec.training.model_copy(
        update={"max_seconds": ceiling_s})})


def _continued_spec(body, source, corpus):
    """Training that continues `source`: its spec, with this request's `training` on top."""
    for section in ("preprocessing", "model"):
        if getattr(body, section):
            raise ValidationError(f"'{section}' is the model's own when init_from_model is "
                                  "given; leave it out", field=section)
    config = source["config"]
    spec = _validated(TrainSpec.model_validate, {**config, "training": {
        **config["training"], **body.training}})
    alphabet = source.get("alphabet")
    if alphabet is not None:  # character level: the corpus must be within the vocabulary
        unseen = prepared_characters(corpus["alphabet"], spec.preprocessing.mode) - set(alphabet)
        if unseen:
            raise UnknownCharactersError(
                f"the corpus has {len(unseen)} characters that model {source['id']} never "
                f"saw: {_shown(unseen)}; remove them from the text, or train a new model "
                "on it", field="corpus_id",
                extra={"characters": sorted(unseen)})
    return spec


def _validated(build, *args):
    """`build(*args)`, a spec from request fields: its errors are the request's (422)."""
    try:
        return build(*args)
    except pydantic.ValidationError as e:
        raise validation_error(e) from None


@bp.post("/generate")
@operation("Submit a generation job (Prefer: wait=N answers 200 when it ends in time)",
           {200: (Job, "the finished job (Prefer: wait)"), 202: Job, 400: None, 404: None,
            409: None, 429: None},
           body=GenerateRequest,
           headers={**IDEMPOTENCY, "Prefer": (f"wait=N (N up to {MAX_PREFER_WAIT_S}): wait "
                                              "for the job to end", {"type": "string"})})
@idempotent
def submit_generation():
    body = json_body(GenerateRequest)
    svc = services()
    model = svc.models.get(body.model_id, current_owner(), field="model_id")
    _check_prompt(body.prompt, model)
    tokens = len(body.prompt) + body.length
    estimate_s = estimate_generation_s(model["config"], model["vocab_size"], tokens,
                                       body.num_samples * len(body.temperatures))
    limit_s = svc.settings.generation_max_s
    if estimate_s > limit_s:
        raise GenerationTooLargeError(
            f"this generation would take about {estimate_s:,.0f} s, over the limit of "
            f"{limit_s:,.0f} s (TEXTGEN_GENERATION_MAX_S); ask for fewer tokens or samples",
            field="length", extra={"estimate_s": round(estimate_s, 1), "limit_s": limit_s})
    spec = GenerateSpec.model_validate(body.model_dump(exclude=set(WebhookFields.model_fields)))
    check_result_size(spec, int(svc.settings.max_result_mb * 1024 * 1024))
    record, accepted = _submit(JobType.GENERATE, spec.model_dump(), body, model_id=model["id"])
    wait_s = _prefer_wait_s()
    if wait_s:
        record = _wait_until_done(record["id"], wait_s)
        if JobStatus(record["status"]).is_terminal:
            return respond(Job.of(record), 200, {"Preference-Applied": f"wait={wait_s}",
                                                 "Location": f"/v1/jobs/{record['id']}"})
        return created(Job.of(record), f"/v1/jobs/{record['id']}", status=202)
    return accepted


def _check_prompt(prompt, model):
    """A character-level model's prompt, prepared as its corpus was, may hold only
    characters the model knows."""
    alphabet = model.get("alphabet")
    if alphabet is None or not prompt:
        return
    unseen = prepared_characters(prompt, model["config"]["preprocessing"]["mode"]) \
        - set(alphabet)
    if unseen:
        raise UnknownCharactersError(
            f"the prompt has {len(unseen)} characters the model never saw: {_shown(unseen)}; "
            "remove them from the prompt, or train a model on a text that has them",
            field="prompt", extra={"characters": sorted(unseen)})


def _shown(characters, most=20):
    shown = sorted(characters)[:most]
    return ", ".join(repr(c) for c in shown) + (" ..." if len(characters) > most else "")


def _prefer_wait_s():
    match = _PREFER_WAIT.search(request.headers.get("Prefer", ""))
    return min(int(match.group(1)), MAX_PREFER_WAIT_S) if match else 0


def _wait_until_done(job_id, wait_s):
    """The job once it ended, or as it is after `wait_s` seconds. The wait holds one of the
    owner's stream slots; with none free it is not held (the preference is ignored)."""
    svc = services()
    jobs = svc.jobs
    slot = take_slot(refuse=False)
    if slot is None:
        return jobs.get(job_id)
    deadline = time.monotonic() + wait_s
    cursor = "0"
    try:
        # Wakes on the job's next event (its status changes are events), through this
        # process's event hub: no thread and no Redis connection held while it waits.
        with event_hub().follow(svc.keys.events(job_id)) as follower:
            while True:
                follower.arm()
                slot.renew_if_due()
                record = jobs.get(job_id)
                remaining_s = deadline - time.monotonic()
                if JobStatus(record["status"]).is_terminal or remaining_s <= 0:
                    return record
                # The newest event's id, not the events: a generation's `text` events
                # hold all its text, which this wait does not need.
                newest = jobs.last_event_id(job_id)
                if newest == cursor:
                    follower.wait(cursor, min(remaining_s, RENEW_S))
                cursor = newest
    finally:
        slot.release()


@bp.get("/jobs/<job_id>")
@operation("Read a job", {200: Job, 404: None})
def get_job(job_id):
    svc = services()
    record = svc.jobs.get(job_id, current_owner())
    return respond(Job.of(record, heartbeat=_heartbeat(record, svc)))


def _heartbeat(record, svc):
    """A running job's lease as its worker's last sign of life, on Redis' clock (which set
    it), so that a client can say when a worker stopped answering."""
    expires_ms, heard_ms = (int(record.get(k) or 0) for k in ("lease_expires_ms", "heard_ms"))
    if record["status"] != JobStatus.RUNNING or not expires_ms or not heard_ms:
        return None
    seconds, micros = svc.redis.time()
    now_ms = seconds * 1000 + micros / 1000
    return {"age_s": round(max(0.0, now_ms - heard_ms) / 1000, 1),
            "lease_left_s": round(max(0.0, expires_ms - now_ms) / 1000, 1)}


@bp.get("/jobs")
@operation("List your jobs, newest first (summaries: GET a job for its spec)",
           {200: Page[JobSummary]}, query=JobsQuery)
def list_jobs():
    args = query(JobsQuery)
    page = services().jobs.page(
        current_owner(), after=args.after, limit=args.limit,
        status=args.status.value if args.status else None,
        job_type=args.type.value if args.type else None)
    page.data = [JobSummary.of(record) for record in page.data]
    return page_response(page, JobSummary, args.limit)


@bp.get("/jobs/<job_id>/events")
@operation("The job's events, oldest first; with Accept: text/event-stream, a live stream",
           {200: EVENTS_CONTENT, 404: None}, **EVENTS_ANSWER)
def list_events(job_id):
    svc, owner = services(), current_owner()
    return events_answer(svc.keys.events(job_id), JobStatus,
                         lambda: svc.jobs.get(job_id, owner)["status"])


@bp.post("/jobs/<job_id>/cancel")
@operation("Cancel a queued or running job (a running one stops within a training step)",
           {200: Job, 404: None, 409: None})
def cancel_job(job_id):
    svc = services()
    job = svc.jobs.cancel(job_id, current_owner())
    svc.metrics.job_ended(job["type"], JobStatus.CANCELLED.value)
    svc.webhooks.notify(job, "completed")
    return respond(Job.of(job))


@bp.delete("/jobs/<job_id>")
@operation("Delete a finished job, its events and its checkpoints (its model stays)",
           {204: None, 404: None, 409: None})
def delete_job(job_id):
    svc = services()
    job = svc.jobs.get(job_id, current_owner())
    if not JobStatus(job["status"]).is_terminal:
        raise ConflictError(f"job {job_id} is {job['status']}; cancel it first")
    svc.jobs.delete(job)
    svc.artifacts.delete_job_files(job_id)
    svc.storage.release(job["owner"], f"checkpoints:{job_id}")
    return "", 204
