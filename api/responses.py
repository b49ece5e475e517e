"""Answers built from response models: JSON in the model's field order."""

from flask import Response

from shared.schemas import Page


def respond(model, status=200, headers=None):
    response = Response(model.model_dump_json(), status=status, mimetype="application/json")
    response.headers.update(headers or {})
    return response


def created(model, location, status=201):
    return respond(model, status, {"Location": location})


def page_response(page, item_model, limit):
    """A shared.pages.Page of records as the list envelope {data, has_more, next, limit}."""
    body = Page[item_model](data=[item_model.model_validate(r) for r in page.data],
                            has_more=page.has_more, next=page.next, limit=limit)
    return respond(body)
