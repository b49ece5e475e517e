"""Jobs: submit training and generation, poll one job, list them, cancel one."""

import re

from flask import Blueprint, request

from api.context import services
from shared.errors import MalformedRequestError, ValidationError
from shared.jobs import JobType
from shared.queue import TASK_GENERATE, TASK_TRAIN, enqueue
from shared.specs import validate_generate_request, validate_train_request
from shared.train_memory import check_train_memory

bp = Blueprint("jobs", __name__, url_prefix="/v1")

_MAX_LIST_LIMIT = 200
_STREAM_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")  # a Redis stream id, the events cursor


def _json_body():
    body = request.get_json(silent=True)
    if body is None:
        raise MalformedRequestError("the body must be valid JSON (Content-Type: application/json)")
    return body


def _accepted(record, task_name):
    """Enqueue the stored job by id and answer 202 with where to poll it."""
    enqueue(services().celery, task_name, record["id"])
    return record, 202, {"Location": f"/v1/jobs/{record['id']}"}


@bp.post("/train")
def submit_training():
    corpus_id, spec = validate_train_request(_json_body())
    svc = services()
    corpus = svc.corpora.get(corpus_id, field="corpus_id")
    check_train_memory(spec, corpus, svc.settings.max_train_memory_mb)
    return _accepted(svc.jobs.create(JobType.TRAIN, spec, corpus_id=corpus_id), TASK_TRAIN)


@bp.post("/generate")
def submit_generation():
    spec = validate_generate_request(_json_body())
    svc = services()
    svc.models.get(spec["model_id"], field="model_id")
    record = svc.jobs.create(JobType.GENERATE, spec, model_id=spec["model_id"])
    return _accepted(record, TASK_GENERATE)


@bp.get("/jobs/<job_id>")
def get_job(job_id):
    return services().jobs.get(job_id)


@bp.get("/jobs")
def list_jobs():
    limit = _int_arg("limit", 50, 1, _MAX_LIST_LIMIT)
    offset = _int_arg("offset", 0, 0, None)
    return {"jobs": services().jobs.list(limit=limit, offset=offset),
            "limit": limit, "offset": offset}


@bp.get("/jobs/<job_id>/events")
def list_events(job_id):
    """The job's events after the cursor `after` (oldest first) and the cursor to pass next."""
    after = request.args.get("after", "0")
    if not _STREAM_ID.match(after):
        raise ValidationError("'after' must be a cursor returned by this endpoint",
                              field="after")
    limit = _int_arg("limit", 100, 1, _MAX_LIST_LIMIT)
    events, cursor = services().jobs.events(job_id, after=after, limit=limit)
    return {"events": events, "next": cursor}


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id):
    return services().jobs.cancel(job_id)


def _int_arg(name, default, minimum, maximum):
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"'{name}' must be an integer", field=name) from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ValidationError(f"'{name}' must be between {minimum} and {maximum}", field=name)
    return value
