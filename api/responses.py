"""Answers built from response models: JSON in the model's field order, and the 202 of a
submitted job."""

from flask import Response

from api.auth import current_owner
from api.context import services
from api.idempotency import stored_answer
from shared.contracts.schemas import Job, Page
from shared.service.submissions import submit


def respond(model, status=200, headers=None):
    response = Response(model.model_dump_json(), status=status, mimetype="application/json")
    response.headers.update(headers or {})
    return response


def created(model, location, status=201):
    return respond(model, status, {"Location": location})


def accepted(submission):
    """Submit a planned job (shared/service/submissions.py): (its record, the 202 answer with where
    to poll it). A retry with the same Idempotency-Key gets that answer, which is stored
    with the job."""
    answered = []  # the 202, built once: stored with the job, and returned

    def answer(record):
        answered.append(created(Job.of(record), f"/v1/jobs/{record['id']}", status=202))
        return stored_answer(answered[0])

    record = submit(services(), current_owner(), submission, answer=answer)
    return record, answered[0]


def page_response(page, item_model, limit):
    """A shared.stores.pages.Page of records as the list envelope {data, has_more, next, limit}."""
    body = Page[item_model](data=[item_model.model_validate(r) for r in page.data],
                            has_more=page.has_more, next=page.next, limit=limit)
    return respond(body)

