"""Models: the registered result of a training job, its files, and deleting it."""

from flask import Blueprint

from api.auth import current_owner
from api.bodies import query
from api.context import services
from api.downloads import PRESIGNED_URL_S, send_stored, send_zip
from api.openapi import operation
from api.responses import page_response, respond
from shared.service import deletions
from shared.contracts.errors import ArtifactMissingError, NotFoundError
from shared.contracts.schemas import ListQuery, Model, Page

bp = Blueprint("models", __name__, url_prefix="/v1/models")

# What a model directory holds (worker/model_files.py): all a user needs to use it in
# plain Keras. Only these names are served; anything else is a 404, never a path.
MODEL_FILES = {
    "model.keras": "application/zip",  # a .keras file is a zip archive
    "vocab.json": "application/json",
    "config.json": "application/json",
    "metrics.json": "application/json",
}
BINARY = {"schema": {"type": "string", "format": "binary"}}
REDIRECT = ({}, f"with an S3 artifact store: the file's presigned URL (Location, valid "
                f"{PRESIGNED_URL_S} s to start the download)")


def _shaped(record):
    model_id = record["id"]
    return Model.model_validate({
        **record, "files": {name: f"/v1/models/{model_id}/files/{name}" for name in MODEL_FILES},
        "download": f"/v1/models/{model_id}/download"})


@bp.get("")
@operation("List your models, newest first", {200: Page[Model]}, query=ListQuery)
def list_models():
    args = query(ListQuery)
    page = services().models.page(current_owner(), after=args.after, limit=args.limit)
    page.data = [_shaped(record) for record in page.data]
    return page_response(page, Model, args.limit)


@bp.get("/<model_id>")
@operation("Read a model: config, metrics, lineage, files", {200: Model, 404: None})
def get_model(model_id):
    return respond(_shaped(services().models.get(model_id, current_owner())))


@bp.get("/<model_id>/files/<name>")
@operation("Download one file of a model",
           {200: ({"application/zip": BINARY, "application/json": {"schema": {}}},
                  "the file: model.keras is a zip archive, the others JSON"),
            302: REDIRECT, 404: None, 429: None},
           path={"name": {"type": "string", "enum": list(MODEL_FILES)}})
def download_file(model_id, name):
    svc = services()
    record = svc.models.get(model_id, current_owner())
    if name not in MODEL_FILES:
        raise NotFoundError(f"a model has no file {name!r}; it has {', '.join(MODEL_FILES)}")
    return send_stored(_stored(svc, record, name), MODEL_FILES[name], f"{model_id}-{name}")


@bp.get("/<model_id>/download")
@operation("Download the model as one zip: model.keras, vocab.json, config.json, "
           "metrics.json", {200: ({"application/zip": BINARY}, "the zip"), 404: None,
                            429: None})
def download_zip(model_id):
    svc = services()
    record = svc.models.get(model_id, current_owner())
    # Every file is found before the first byte goes out: a missing one is still a 404.
    return send_zip([(name, _stored(svc, record, name)) for name in MODEL_FILES],
                    f"{model_id}.zip")


def _stored(svc, record, name):
    """One file of a model, from the attempt its record committed."""
    try:
        return svc.artifacts.model_file(record["id"], record["attempt"], name)
    except ArtifactMissingError as e:
        raise NotFoundError(f"model {record['id']} has no {name} in the artifact store") from e


@bp.delete("/<model_id>")
@operation("Delete a model and its files", {204: None, 404: None, 409: None})
def delete_model(model_id):
    deletions.delete_model(services(), current_owner(), model_id)
    return "", 204
