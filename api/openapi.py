"""The OpenAPI 3.1 document, generated from the routes and the pydantic models they declare.

Each view is marked with `@operation(...)`: its summary, body and query models, and every
response it gives. The document walks Flask's URL map, so a route cannot be served and
missing from it, and turns the models into JSON Schema with pydantic. Hand-written rather
than a framework (flask-openapi3, spectree) because those replace Flask's views and their
validation errors with their own; here the views stay plain Flask and the errors stay ours.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

from flask import Blueprint, current_app, send_from_directory
from pydantic.json_schema import models_json_schema

from shared.runtime.clock import id_pattern
from shared.contracts.schemas import Corpus, Job, Model, Problem
from shared.sweeps.schemas import Sweep, SweepSummary

bp = Blueprint("openapi", __name__)

TITLE = "textgen"
VERSION = "1"
_FLASK_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")

# Statuses every operation may answer, besides its own (414 comes from gunicorn, before
# the app: a request line over its 4,094-byte limit, so it has no problem body).
COMMON = {500: "the server failed (logged; nothing is revealed)",
          503: "Redis or the broker is unreachable right now; try again"}
NO_BODY = {414: "the URL is too long (answered by the HTTP server)"}
PROTECTED = {401: "no token, or one we do not know"}
STATUS_TEXT = {400: "the body is not a JSON object", 404: "no such id (or not yours)",
               409: "conflict with the current state", 413: "the body is over the limit",
               422: "a field is invalid: `errors` lists every one", 429: "over a quota",
               507: "the artifact store is full, or this would take you past your storage "
                    "quota (TEXTGEN_MAX_STORAGE_MB)"}


# Our ids by the name a path or a body gives them: only `<prefix>_<24 hex>` is an id
# (shared/runtime/clock.py); the stores find nothing under any other spelling.
ID_PREFIXES = {"corpus_id": "cor", "job_id": "job", "model_id": "mdl", "sweep_id": "swp"}
# Response models whose `id` goes back into requests under that name: OpenAPI links chain
# an operation that hands out ids (a create, a list) to each one that takes them, so a
# client or a fuzzer (schemathesis' stateful phase) reaches them with ids of its own.
RESOURCE_IDS = {Corpus: "corpus_id", Job: "job_id", Model: "model_id", Sweep: "sweep_id",
                SweepSummary: "sweep_id"}
# Body fields that take a list of one kind's ids (an evaluation's models): a link fills
# them with a list of the one id it has.
ID_LISTS = {"model_ids": "model_id"}


@dataclass
class Operation:
    summary: str
    responses: dict  # status -> model class, (model, description), or a content dict
    body: object = None  # a model class, or {content type: model class or schema dict}
    query: object = None  # a model class whose fields are the query parameters
    public: bool = False
    headers: dict = field(default_factory=dict)  # header name -> (description, schema)
    path: dict = field(default_factory=dict)  # path parameter -> schema (ids have theirs)
    tags: tuple = ()


def operation(summary, responses, **options):
    """Mark a view for the document (see Operation)."""
    def mark(view):
        view.openapi = Operation(summary, responses, **options)
        return view
    return mark


def build_document(app):
    models = []  # (model, mode) pairs whose schemas go into components
    paths = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        op = getattr(app.view_functions[rule.endpoint], "openapi", None)
        if op is None:
            continue
        path = _FLASK_PARAM.sub(r"{\1}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                op, rule, method, models)
    _add_links(paths)
    mapping, defs = models_json_schema(
        list(dict.fromkeys(models)), ref_template="#/components/schemas/{model}")
    document = {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION,
                 "description": "Train LSTM text generators on your text; generate from them."},
        "paths": paths,
        "components": {"schemas": defs.get("$defs", {}),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
    return _resolve(document, mapping)


def _operation(op, rule, method, models):
    def ref(model, mode):
        models.append((model, mode))
        return {"$model": (model, mode)}  # replaced once every schema is generated

    out = {"summary": op.summary, "operationId": f"{method.lower()}_{rule.endpoint}",
           "tags": list(op.tags) or [rule.endpoint.split(".")[0]]}
    if op.public:
        out["security"] = []
    params = [{"name": name, "in": "path", "required": True, "schema": _path_schema(op, name)}
              for name in sorted(rule.arguments)]
    if op.query is not None:
        for name, info in op.query.model_fields.items():
            schema = {"$model_field": (op.query, name)}
            params.append({"name": name, "in": "query", "required": info.is_required(),
                           "description": info.description or "", "schema": schema})
            models.append((op.query, "validation"))
    for name, (description, schema) in op.headers.items():
        params.append({"name": name, "in": "header", "required": False,
                       "description": description, "schema": schema})
    if params:
        out["parameters"] = params
    if op.body is not None:
        content = op.body if isinstance(op.body, dict) else {"application/json": op.body}
        out["requestBody"] = {"required": True, "content": {
            kind: {"schema": ref(schema, "validation") if isinstance(schema, type) else schema}
            for kind, schema in content.items()}}
    responses = {}
    statuses = dict(op.responses)
    for status, text in {**COMMON, **({} if op.public else PROTECTED)}.items():
        statuses.setdefault(status, (Problem, text))
    for status, text in NO_BODY.items():
        statuses.setdefault(status, ({}, text))
    if op.body is not None:  # MAX_CONTENT_LENGTH caps every body, not only uploads
        statuses.setdefault(413, (Problem, STATUS_TEXT[413]))
    if op.body is not None or op.query is not None:
        statuses.setdefault(422, (Problem, STATUS_TEXT[422]))
    for status, spec in sorted(statuses.items()):
        model, description = spec if isinstance(spec, tuple) else (spec, None)
        if isinstance(model, dict):  # a ready content map (downloads, event streams)
            content = model or None
            models.extend(_placeholders(model))
        elif model is None and status >= 400:
            content = {"application/problem+json": {"schema": ref(Problem, "serialization")}}
        elif model is None:
            content = None
        else:
            kind = "application/problem+json" if model is Problem else "application/json"
            content = {kind: {"schema": ref(model, "serialization")}}
        entry = {"description": description or STATUS_TEXT.get(status, "success")}
        if content:
            entry["content"] = content
        responses[str(status)] = entry
    out["responses"] = responses
    return out


def _path_schema(op, name):
    if name in ID_PREFIXES:
        return {"type": "string", "pattern": id_pattern(ID_PREFIXES[name])}
    return op.path.get(name, {"type": "string", "minLength": 1})


def _add_links(paths):
    """Links from each operation that answers with a resource or a page of them (a create,
    a list, a read, a cancel) to every other operation taking such an id in its path or
    its JSON body. Built while the operations still hold their models ({"$model": ...}
    placeholders)."""
    consumers = {name: [] for name in RESOURCE_IDS.values()}  # name -> [(opId, body field)]
    for op in _operations(paths):
        for param in op.get("parameters", []):
            if param["in"] == "path" and param["name"] in consumers:
                consumers[param["name"]].append((op["operationId"], None))  # None: the path
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        model = body.get("schema", {}).get("$model", (None,))[0]
        for field_name in model.model_fields if model is not None else ():
            name = ID_LISTS.get(field_name, field_name)
            if name in consumers:
                consumers[name].append((op["operationId"], field_name))
    for op in _operations(paths):
        for status, response in op["responses"].items():
            found = _resource_of(response) if status.startswith("2") else None
            if found is None:
                continue
            name, pointer = found
            value = f"$response.body#{pointer}"
            response["links"] = {target: {"operationId": target, **(
                {"parameters": {f"path.{name}": value}} if field is None
                else {"requestBody": {field: [value] if field in ID_LISTS else value}})}
                for target, field in consumers[name] if target != op["operationId"]}


def _operations(paths):
    return [op for operations in paths.values() for op in operations.values()]


def _resource_of(response):
    """(id name, JSON pointer to an id) of a response that is one resource or a page."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    model = schema.get("$model", (None,))[0] if isinstance(schema, dict) else None
    if model in RESOURCE_IDS:
        return RESOURCE_IDS[model], "/id"
    args = getattr(model, "__pydantic_generic_metadata__", {}).get("args", ())
    if len(args) == 1 and args[0] in RESOURCE_IDS:
        return RESOURCE_IDS[args[0]], "/data/0/id"
    return None


def _placeholders(node):
    """The (model, mode) pairs a hand-written content map refers to with {"$model": ...}."""
    if isinstance(node, dict):
        if "$model" in node:
            return [node["$model"]]
        return [pair for value in node.values() for pair in _placeholders(value)]
    return []


def _resolve(node, mapping):
    """Replace the placeholders _operation left with references and field schemas."""
    if isinstance(node, dict):
        if "$model" in node:
            return mapping[node["$model"]]
        if "$model_field" in node:
            model, name = node["$model_field"]
            return _field_schema(model, name)
        return {key: _resolve(value, mapping) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(value, mapping) for value in node]
    return node


def _field_schema(model, name):
    """A query parameter's schema: its field's, without the null a query string cannot
    say (a left-out parameter is the null)."""
    schema = dict(model.model_json_schema(ref_template="#/components/schemas/{model}")
                  ["properties"][name])
    schema.pop("title", None)
    options = [option for option in schema.pop("anyOf", []) if option != {"type": "null"}]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
    if schema.get("default", 0) is None:
        del schema["default"]
    return schema


@bp.get("/v1/openapi.json")
@operation("This document", {200: ({"application/json": {"schema": {"type": "object"}}},
                                   "the OpenAPI 3.1 document")}, public=True, tags=("system",))
def openapi_document():
    document = current_app.extensions.get("textgen.openapi")
    if document is None:
        document = current_app.extensions["textgen.openapi"] = build_document(current_app)
    return document


PAGES = Path(__file__).parent / "static"  # docs.html and docs.js


@bp.get("/docs")
def docs():
    """The API reference, rendered in the browser by Swagger UI from files textgen serves
    itself (the swagger-ui-py package ships them): no CDN, no network."""
    return send_from_directory(PAGES, "docs.html")


@bp.get("/docs/docs.js")
def docs_script():
    return send_from_directory(PAGES, "docs.js")


@bp.get("/docs/static/<path:name>")
def docs_static(name):
    from swagger_ui.utils import SWAGGER_UI_PY_ROOT

    return send_from_directory(SWAGGER_UI_PY_ROOT / "static", name)
