"""Corpora: upload a text (multipart `file` or a raw text/plain body) and read its record."""

from flask import Blueprint, request

from api.context import services
from shared.clock import new_id, utc_now_iso
from shared.corpus_text import decode_corpus, text_sha256
from shared.errors import MalformedRequestError, ValidationError

bp = Blueprint("corpora", __name__, url_prefix="/v1/corpora")

_MAX_NAME_CHARS = 200


def _read_upload():
    """Return (bytes, name) from the request; the name is metadata, never a path."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ValidationError("a multipart upload needs a 'file' field", field="file")
        data = upload.read()
        name = request.form.get("name") or request.args.get("name") or upload.filename
    elif request.mimetype in ("text/plain", "application/octet-stream"):
        data = request.get_data(cache=False)
        name = request.args.get("name")
    else:
        raise MalformedRequestError(
            "send the text as multipart/form-data (field 'file') or as a text/plain body")
    name = (name or "corpus").strip()
    if len(name) > _MAX_NAME_CHARS:
        raise ValidationError(f"'name' must be at most {_MAX_NAME_CHARS} characters",
                              field="name")
    return data, name


@bp.post("")
def upload_corpus():
    data, name = _read_upload()
    text, encoding = decode_corpus(data)
    sha256 = text_sha256(text)
    svc = services()
    svc.artifacts.put_corpus(sha256, text)  # 507 when the store is full
    record = svc.corpora.put({
        "id": new_id("cor"),
        "name": name,
        "bytes": len(data),
        "chars": len(text),
        "encoding": encoding,
        "vocab_size": len(set(text)),
        "sha256": sha256,
        "created_at": utc_now_iso(),
    })
    return record, 201, {"Location": f"/v1/corpora/{record['id']}"}


@bp.get("/<corpus_id>")
def get_corpus(corpus_id):
    return services().corpora.get(corpus_id)
