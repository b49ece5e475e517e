"""Reading a request: its JSON body and its query string, each through a model.

A body that is not JSON at all is a 400; JSON that breaks the model is a 422 listing every
field at fault (ValidationError.from_pydantic), raised before anything is stored or enqueued.
"""

import json

import pydantic
from flask import current_app, g, request
from flask.json.provider import DefaultJSONProvider

from shared.contracts.errors import MalformedRequestError, ValidationError


def _number(text):
    """A JSON number with a fraction part: 2.0 is the integer 2, as JSON Schema has it (JSON
    has one number type), so it passes a strict integer field; 2.5 stays a float and does
    not. A float field takes either."""
    value = float(text)
    return int(value) if value.is_integer() else value


# Levels of arrays and objects a body may nest: ours need 3 (training.x, a list in a
# field). Far deeper bodies are refused before anything walks them: Python's parser and
# encoder recurse once a level and fail at ~1,000 (a RecursionError, once a 500).
MAX_DEPTH = 32


class TooDeepError(ValueError):
    """Raised when a JSON body nests deeper than MAX_DEPTH."""


class BodyJSON(DefaultJSONProvider):
    """The app's JSON (app.json), so every reader of a request body parses it one way
    (parsed_json below; request.get_json too). 2.0 is the integer 2; a
    body nested deeper than MAX_DEPTH is no JSON we take (a ValueError, like bad JSON)."""

    sort_keys = False  # answers keep their models' field order

    def loads(self, s, **kwargs):
        try:
            value = json.loads(s, parse_float=_number, **kwargs)
        except RecursionError:
            raise TooDeepError from None
        pending = [(value, 1)]
        while pending:  # a loop, not recursion: the value may be ~1,000 levels deep
            node, depth = pending.pop()
            if isinstance(node, (dict, list)):
                if depth > MAX_DEPTH:
                    raise TooDeepError
                children = node.values() if isinstance(node, dict) else node
                pending.extend((child, depth + 1) for child in children)
        return value


def parsed_json():
    """The request's JSON body, parsed once a request (json_body and the Idempotency-Key's
    fingerprint, api/idempotency.py, both read it); MalformedRequestError when it is no
    JSON we take."""
    if "parsed_json" not in g:
        try:
            g.parsed_json = current_app.json.loads(request.get_data(cache=True) or b""), None
        except TooDeepError:
            g.parsed_json = None, f"the body nests arrays and objects more than {MAX_DEPTH} " \
                                  "levels deep"
        except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
            g.parsed_json = None, "the body is not valid JSON"
    body, malformed = g.parsed_json
    if malformed:
        raise MalformedRequestError(malformed)
    return body


def json_body(model):
    """The request's JSON body validated by `model` (strict: "3" is not 3, 1.5 is not an
    integer, true is not 1, an unknown field is an error)."""
    if not request.is_json:
        raise MalformedRequestError("send a JSON body with Content-Type: application/json")
    body = parsed_json()
    if not isinstance(body, dict):
        raise MalformedRequestError("the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except pydantic.ValidationError as e:
        raise ValidationError.from_pydantic(e) from None


def query(model):
    """The query string validated by `model`; a parameter may be given once."""
    repeated = sorted(name for name, values in request.args.lists() if len(values) > 1)
    if repeated:
        raise ValidationError(f"'{repeated[0]}' is given more than once", field=repeated[0])
    try:
        return model.model_validate(request.args.to_dict())
    except pydantic.ValidationError as e:
        raise ValidationError.from_pydantic(e) from None
