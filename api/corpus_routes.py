"""Corpora: upload a text (multipart `file`, a raw text/plain body, or a Gutenberg book by
number), read one, list them, delete one."""

from flask import Blueprint, request

from api.auth import current_owner
from api.bodies import json_body, query
from api.context import services
from api.idempotency import IDEMPOTENCY, idempotent
from api.openapi import operation
from api.responses import created, page_response, respond
from shared.service import deletions
from shared.text.corpus_text import TEXT_PATTERN, decode_corpus
from shared.contracts.errors import MalformedRequestError, ValidationError
from shared.text.gutenberg import fetch_book, strip_gutenberg
from shared.contracts.schemas import CorporaQuery, Corpus, GutenbergRequest, Page

bp = Blueprint("corpora", __name__, url_prefix="/v1/corpora")

_MAX_NAME_CHARS = 200

# What a corpus may be, as shared/text/corpus_text.py decides it: text with at least one
# character that is not white space, and no NUL.
CORPUS_TEXT = {"type": "string", "contentMediaType": "text/plain", "pattern": TEXT_PATTERN,
               "description": "the text: UTF-8 (a file part may also be UTF-16 with a BOM, "
                              "or Windows-1252); not only white space, no NUL"}
UPLOAD_BODY = {
    "multipart/form-data": {"type": "object", "required": ["file"], "properties": {
        "file": CORPUS_TEXT, "name": {"type": "string", "maxLength": _MAX_NAME_CHARS}}},
    "text/plain": CORPUS_TEXT,
    "application/json": GutenbergRequest,
}


def _read_upload():
    """Return (bytes, name, source fields) from the request; the name is metadata only."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is not None:
            data, filename = upload.read(), upload.filename
        elif "file" in request.form:  # a part without a file name (curl -F 'file=<x.txt')
            data, filename = request.form["file"].encode("utf-8"), None
        else:
            raise ValidationError("a multipart upload needs a 'file' field", field="file")
        name = request.form.get("name") or request.args.get("name") or filename
        return data, name, {"source": "upload"}
    if request.mimetype in ("text/plain", "application/octet-stream"):
        return request.get_data(cache=True), request.args.get("name"), {"source": "upload"}
    if request.is_json:
        body = json_body(GutenbergRequest)
        settings = services().settings
        raw = fetch_book(body.gutenberg_id, settings.gutenberg_url, settings.max_upload_bytes)
        return raw, body.name or f"gutenberg-{body.gutenberg_id}", {
            "source": "gutenberg", "gutenberg_id": body.gutenberg_id}
    raise MalformedRequestError(
        "send the text as multipart/form-data (field 'file'), as a text/plain body, or "
        'name a Project Gutenberg book as JSON {"gutenberg_id": 84}')


@bp.post("")
@operation("Upload a corpus",
           {201: Corpus, 400: None, 404: None, 409: None, 413: None, 507: None},
           body=UPLOAD_BODY, headers=IDEMPOTENCY)
@idempotent
def upload_corpus():
    data, name, source = _read_upload()
    name = (name or "corpus").strip() or "corpus"
    if len(name) > _MAX_NAME_CHARS:
        raise ValidationError(f"'name' must be at most {_MAX_NAME_CHARS} characters",
                              field="name")
    text, encoding = decode_corpus(data)
    if source["source"] == "gutenberg":
        text = strip_gutenberg(text)
    corpora = services().corpora
    record = corpora.new_record(current_owner(), name, data, text, encoding, **source)
    corpora.add(record, text)  # 507 past the quota or with the store full
    return created(Corpus.model_validate(record), f"/v1/corpora/{record['id']}")


@bp.get("")
@operation("List your corpora, newest first (upload_sha256: only uploads of these bytes)",
           {200: Page[Corpus]}, query=CorporaQuery)
def list_corpora():
    args = query(CorporaQuery)
    keep = None
    if args.upload_sha256:
        keep = lambda record: record.get("upload_sha256") == args.upload_sha256  # noqa: E731
    page = services().corpora.page(current_owner(), after=args.after, limit=args.limit,
                                   keep=keep)
    return page_response(page, Corpus, args.limit)


@bp.get("/<corpus_id>")
@operation("Read a corpus", {200: Corpus, 404: None})
def get_corpus(corpus_id):
    return respond(Corpus.model_validate(services().corpora.get(corpus_id, current_owner())))


@bp.delete("/<corpus_id>")
@operation("Delete a corpus (its text goes with the last corpus that has it; its bytes "
           "leave your storage quota)",
           {204: None, 404: None, 409: None})
def delete_corpus(corpus_id):
    deletions.delete_corpus(services(), current_owner(), corpus_id)
    return "", 204
