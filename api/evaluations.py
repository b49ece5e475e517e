"""Evaluations: score your models side by side on one text, as a job on the generate queue.

The job answers through /v1/jobs/<id> like any other (type `evaluate`); its result is the
table, one row per model (shared/schemas.py EvaluationRow).
"""

from flask import Blueprint

from api.auth import current_owner
from api.bodies import json_body
from api.context import services
from api.idempotency import IDEMPOTENCY, idempotent
from api.jobs import _submit  # one way to store and enqueue a job, shared with jobs.py
from api.openapi import operation
from shared.errors import EvaluationTooLargeError, ValidationError
from shared.evaluations import EvaluateSpec, estimate_evaluation_s, holdout_fraction
from shared.jobs import JobType
from shared.schemas import EvaluateRequest, Job, WebhookFields

bp = Blueprint("evaluations", __name__, url_prefix="/v1")

SCORED = "embedding_lstm"  # the architecture worker/evaluation.py scores


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
    for model in models:
        if model["config"]["model"]["architecture"] != SCORED:
            raise ValidationError(
                f"model {model['id']} is a tutorial-architecture model (the seed preset), "
                "which predicts each character from a fresh window: scoring a text would "
                "cost a window per character; only embedding_lstm models are evaluated",
                field="model_ids")
    spec = body.model_dump(exclude=set(WebhookFields.model_fields))
    chars = len(body.text or "")
    if body.corpus_id is not None:
        corpus = svc.corpora.get(body.corpus_id, owner, field="corpus_id")
        chars = corpus["chars"]
        spec["holdout_fraction"] = None
        if body.part == "held_out":
            spec["holdout_fraction"] = body.holdout_fraction or holdout_fraction(models, corpus)
            chars = int(chars * spec["holdout_fraction"])  # the tail, as tail_start cuts it
    _check_time(models, chars, svc.settings.generation_max_s)
    spec = EvaluateSpec.model_validate(spec).model_dump()
    return _submit(JobType.EVALUATE, spec, body, model_ids=body.model_ids,
                   corpus_id=body.corpus_id)[1]  # 202 with the job and its Location


def _check_time(models, chars, limit_s):
    """An evaluation runs on the generate queue under its time limit: one that would not
    end in time is refused now, with the estimate."""
    estimate_s = sum(estimate_evaluation_s(model, chars) for model in models)
    if estimate_s > limit_s:
        raise EvaluationTooLargeError(
            f"scoring {chars:,} characters with these models would take about "
            f"{estimate_s:,.0f} s, over the limit of {limit_s:,.0f} s "
            "(TEXTGEN_GENERATION_MAX_S); evaluate fewer models or a shorter text",
            field="model_ids", extra={"estimate_s": round(estimate_s, 1), "limit_s": limit_s})
