"""Evaluations: score your models side by side on one text, as a job on the generate queue.

The job answers through /v1/jobs/<id> like any other (type `evaluate`); its result is the
table, one row per model (shared/schemas.py EvaluationRow).
"""

from flask import Blueprint

from api.auth import current_owner
from api.bodies import json_body
from api.context import services
from api.idempotency import IDEMPOTENCY, idempotent
from api.job_routes import _submit  # one way to store and enqueue a job
from api.openapi import operation
from shared.evaluations import resolved_spec
from shared.jobs import JobType
from shared.schemas import EvaluateRequest, Job, WebhookFields

bp = Blueprint("evaluations", __name__, url_prefix="/v1")


@bp.post("/evaluations")
@operation("Evaluate models side by side on a corpus (its held-out tail by default) or a "
           "text: bits per character, characters scored, out-of-vocabulary characters",
           {202: Job, 400: None, 404: None, 409: None, 429: None},
           body=EvaluateRequest, headers=IDEMPOTENCY)
@idempotent
def submit_evaluation():
    body = json_body(EvaluateRequest)
    svc = services()
    owner = current_owner()
    models = [svc.models.get(model_id, owner, field="model_ids") for model_id in body.model_ids]
    corpus = None
    if body.corpus_id is not None:
        corpus = svc.corpora.get(body.corpus_id, owner, field="corpus_id")
    spec = resolved_spec(body.model_dump(exclude=set(WebhookFields.model_fields)), models,
                         corpus, svc.settings.generation_max_s)
    return _submit(JobType.EVALUATE, spec, body, model_ids=body.model_ids,
                   corpus_id=body.corpus_id)[1]  # 202 with the job and its Location
