"""Models: the registered result of a training job, and its files for download."""

from flask import Blueprint, send_file

from api.context import services
from shared.errors import ArtifactMissingError, NotFoundError

bp = Blueprint("models", __name__, url_prefix="/v1/models")

# What a model directory holds (worker/model_files.py): all a user needs to use it in
# plain Keras. Only these names are served; anything else is a 404, never a path.
MODEL_FILES = {
    "model.keras": "application/zip",  # a .keras file is a zip archive
    "vocab.json": "application/json",
    "config.json": "application/json",
    "metrics.json": "application/json",
}


@bp.get("/<model_id>")
def get_model(model_id):
    record = services().models.get(model_id)
    return {**record, "files": {name: f"/v1/models/{model_id}/files/{name}"
                                for name in MODEL_FILES}}


@bp.get("/<model_id>/files/<name>")
def download_file(model_id, name):
    svc = services()
    record = svc.models.get(model_id)
    if name not in MODEL_FILES:
        raise NotFoundError(f"a model has no file {name!r}; it has {', '.join(MODEL_FILES)}")
    try:  # the record names the attempt whose files it committed
        file = svc.artifacts.open_model_file(model_id, record["attempt"], name)
    except ArtifactMissingError as e:
        raise NotFoundError(f"model {model_id} has no {name} in the artifact store") from e
    return send_file(file, mimetype=MODEL_FILES[name], as_attachment=True,
                     download_name=f"{model_id}-{name}")
