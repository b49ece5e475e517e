"""Sweeps: search a training spec's fields for the lowest validation loss, each trial a
training job of yours (shared/sweeps/runner.py does the work; docs/sweeps.md says how)."""

from flask import Blueprint

from api.auth import current_owner
from api.bodies import json_body, query
from api.context import services
from api.event_stream import EVENTS_ANSWER, EVENTS_CONTENT, events_answer
from api.idempotency import IDEMPOTENCY, idempotent, stored_answer
from api.openapi import operation
from api.responses import created, page_response, respond
from shared.service import deletions
from shared.sweeps import runner as sweep_runner
from shared.contracts.schemas import ListQuery, Page
from shared.sweeps.schemas import Sweep, SweepSummary
from shared.sweeps.space import SweepRequest
from shared.sweeps.store import FINAL_FIELD, SweepStatus, trials_of

bp = Blueprint("sweeps", __name__, url_prefix="/v1/sweeps")


@bp.post("")
@operation("Start a sweep: trials of a training spec over a search space, poor ones pruned "
           "at rungs (ASHA), each trial a training job of yours",
           {201: Sweep, 400: None, 404: None, 409: None, 422: None, 507: None},
           body=SweepRequest, headers=IDEMPOTENCY)
@idempotent
def start_sweep():
    body = json_body(SweepRequest)
    svc = services()
    # A retry of a request killed after the sweep was stored gets the sweep as stored
    # (no trials yet); one that ran to its end, this answer with its first trials.
    record = sweep_runner.start(svc, current_owner(), body,
                                answer=lambda record: stored_answer(_created(svc, record)))
    return _created(svc, record)


@bp.get("")
@operation("List your sweeps, newest first", {200: Page[SweepSummary]}, query=ListQuery)
def list_sweeps():
    args = query(ListQuery)
    page = services().sweeps.page(current_owner(), after=args.after, limit=args.limit)
    page.data = [SweepSummary.of(record) for record in page.data]
    return page_response(page, SweepSummary, args.limit)


@bp.get("/<sweep_id>")
@operation("Read a sweep: each trial's settings, job, status, rung and best validation "
           "loss, and the best trial so far", {200: Sweep, 404: None})
def get_sweep(sweep_id):
    svc = services()
    return respond(_shaped(svc, svc.sweeps.get(sweep_id, current_owner())))


@bp.get("/<sweep_id>/events")
@operation("The sweep's events, oldest first: trial_started, trial_reported (each epoch's "
           "validation loss), trial_pruned (at its rung), trial_ended (complete, pruned or "
           "failed), final_started and final_ended (the final phase), status; with Accept: "
           "text/event-stream, a live stream",
           {200: EVENTS_CONTENT, 404: None}, **EVENTS_ANSWER)
def list_sweep_events(sweep_id):
    svc, owner = services(), current_owner()
    return events_answer(svc.keys.sweep_events(sweep_id), SweepStatus,
                         lambda: svc.sweeps.get(sweep_id, owner)["status"])


@bp.post("/<sweep_id>/cancel")
@operation("Cancel a running sweep and its queued and running trials",
           {200: Sweep, 404: None, 409: None})
def cancel_sweep(sweep_id):
    svc = services()
    return respond(_shaped(svc, sweep_runner.cancel(svc, sweep_id, current_owner())))


@bp.delete("/<sweep_id>")
@operation("Delete a finished sweep and its study (its trials' jobs and models stay)",
           {204: None, 404: None, 409: None})
def delete_sweep(sweep_id):
    deletions.delete_sweep(services(), current_owner(), sweep_id)
    return "", 204


def _created(svc, record):
    return created(_shaped(svc, record), f"/v1/sweeps/{record['id']}")


def _shaped(svc, record):
    final = record.get(FINAL_FIELD) or {}
    job_ids = [trial["job_id"] for trial in [*trials_of(record), final]
               if trial.get("job_id")]
    jobs = {job["id"]: job for job in svc.jobs.get_many(job_ids) if job is not None}
    return Sweep.of(record, jobs)
