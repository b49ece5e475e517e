"""Answers built from response models: JSON in the model's field order; the 202 of a
submitted job; and the one refusal the delete views share."""

from flask import Response

from api.auth import current_owner
from api.context import services
from api.idempotency import stored_answer
from shared.errors import InUseError
from shared.schemas import Job, Page
from shared.submissions import submit


def respond(model, status=200, headers=None):
    response = Response(model.model_dump_json(), status=status, mimetype="application/json")
    response.headers.update(headers or {})
    return response


def created(model, location, status=201):
    return respond(model, status, {"Location": location})


def accepted(submission):
    """Submit a planned job (shared/submissions.py): (its record, the 202 answer with where
    to poll it). A retry with the same Idempotency-Key gets that answer, which is stored
    with the job."""
    record = submit(services(), current_owner(), submission,
                    answer=lambda record: stored_answer(_accepted_answer(record)))
    return record, _accepted_answer(record)


def _accepted_answer(record):
    return created(Job.of(record), f"/v1/jobs/{record['id']}", status=202)


def page_response(page, item_model, limit):
    """A shared.pages.Page of records as the list envelope {data, has_more, next, limit}."""
    body = Page[item_model](data=[item_model.model_validate(r) for r in page.data],
                            has_more=page.has_more, next=page.next, limit=limit)
    return respond(body)


def refuse_if_in_use(svc, record, kind):
    """InUseError (409) while a queued or running job uses the corpus or model `record`."""
    users = svc.jobs.active_using(record["owner"], record["id"])
    if users:
        raise InUseError(f"{kind} {record['id']} is used by queued or running job "
                         f"{', '.join(users)}; cancel it or wait until it ends",
                         extra={"jobs": users})
