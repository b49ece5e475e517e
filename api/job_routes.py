"""Jobs: submit training and generation, read one, list them, follow, cancel, delete."""

import re
import time

from flask import Blueprint, request

from api.auth import current_owner
from api.bodies import json_body, query
from api.context import event_hub, services
from api.event_stream import EVENTS_ANSWER, EVENTS_CONTENT, events_answer
from api.held import take_slot
from api.idempotency import IDEMPOTENCY, idempotent
from api.openapi import operation
from api.responses import accepted, created, page_response, respond
from shared.service import deletions, submissions, training_plans
from shared.stores.jobs import JobStatus
from shared.contracts.schemas import (
    GenerateRequest,
    Job,
    JobsQuery,
    JobSummary,
    Page,
    TrainRequest,
)
from shared.stores.owner_slots import RENEW_S

bp = Blueprint("jobs", __name__, url_prefix="/v1")

MAX_PREFER_WAIT_S = 60
_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait=(\d{1,4})(?:$|[,;\s])")


@bp.post("/train")
@operation("Submit a training job",
           {202: Job, 400: None, 404: None, 409: None, 429: None, 507: None},
           body=TrainRequest, headers=IDEMPOTENCY)
@idempotent(claimed_in_storing_step=True)  # as a generation's, below
def submit_training():
    body = json_body(TrainRequest)
    plan = training_plans.plan_training(services(), current_owner(), body)
    return accepted(plan)[1]  # the 202


@bp.post("/generate")
@operation("Submit a generation job (Prefer: wait=N answers 200 when it ends in time)",
           {200: (Job, "the finished job (Prefer: wait)"), 202: Job, 400: None, 404: None,
            409: None, 429: None},
           body=GenerateRequest,
           headers={**IDEMPOTENCY, "Prefer": (f"wait=N (N up to {MAX_PREFER_WAIT_S}): wait "
                                              "for the job to end", {"type": "string"})})
# The key is claimed by the step that stores the job: no round trip before the view.
@idempotent(claimed_in_storing_step=True)
def submit_generation():
    body = json_body(GenerateRequest)
    record, answer = accepted(submissions.plan_generation(services(), current_owner(), body))
    wait_s = _prefer_wait_s()
    if wait_s:
        record = _wait_until_done(record["id"], wait_s)
        if JobStatus(record["status"]).is_terminal:
            return respond(Job.of(record), 200, {"Preference-Applied": f"wait={wait_s}",
                                                 "Location": f"/v1/jobs/{record['id']}"})
        return created(Job.of(record), f"/v1/jobs/{record['id']}", status=202)
    return answer


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
    return respond(Job.of(submissions.cancel_job(services(), job_id, current_owner())))


@bp.delete("/jobs/<job_id>")
@operation("Delete a finished job, its events and its checkpoints (its model stays)",
           {204: None, 404: None, 409: None})
def delete_job(job_id):
    deletions.delete_job(services(), current_owner(), job_id)
    return "", 204
