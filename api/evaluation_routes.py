"""Evaluations: score your models side by side on one text, as a job on the generate queue.

The job answers through /v1/jobs/<id> like any other (type `evaluate`); its result is the
table, one row per model (shared/contracts/schemas.py EvaluationRow).
"""

from flask import Blueprint

from api.auth import current_owner
from api.bodies import json_body
from api.context import services
from api.idempotency import IDEMPOTENCY, idempotent
from api.openapi import operation
from api.responses import accepted
from shared.contracts.schemas import EvaluateRequest, Job
from shared.service.submissions import plan_evaluation

bp = Blueprint("evaluations", __name__, url_prefix="/v1")


@bp.post("/evaluations")
@operation("Evaluate models side by side on a corpus (its held-out tail by default) or a "
           "text: bits per character, characters scored, out-of-vocabulary characters",
           {202: Job, 400: None, 404: None, 409: None, 429: None},
           body=EvaluateRequest, headers=IDEMPOTENCY)
@idempotent
def submit_evaluation():
    body = json_body(EvaluateRequest)
    return accepted(plan_evaluation(services(), current_owner(), body))[1]  # the 202
