"""Models: the registered result of a training job (config, vocabulary size, metrics, lineage)."""

from flask import Blueprint

from api.context import services

bp = Blueprint("models", __name__, url_prefix="/v1/models")


@bp.get("/<model_id>")
def get_model(model_id):
    return services().models.get(model_id)
