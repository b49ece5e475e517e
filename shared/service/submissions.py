"""Submitting a job: what it must pass before it is stored, then storing it in its owner's
turn; and cancelling one. The views parse a request and call these; every refusal is one of
shared/contracts/errors.py's (422 with the field at fault, 404, 507), which api/errors.py answers.

A `plan_*` function checks a request against the stores, the workers and the service's
limits and returns the Submission; `submit` stores it. Training's plan:
shared/service/training_plans.py.
"""

from dataclasses import dataclass

import pydantic

from shared.contracts.errors import GenerationTooLargeError, UnknownCharactersError, ValidationError
from shared.contracts.evaluations import resolved_spec
from shared.sizing.generation_cost import estimate_generation_s
from shared.stores.jobs import JobStatus, JobType
from shared.sizing.model_storage import training_reservation
from shared.runtime.queue import queue_of, send_released
from shared.stores.results import check_result_size
from shared.contracts.schemas import WebhookFields
from shared.contracts.specs import GenerateSpec
from shared.text.textprep import prepared_characters
from shared.sizing.train_memory import check_train_memory
from shared.webhooks.targets import check_webhook_url


@dataclass(frozen=True)
class Submission:
    """A job that passed its checks: its type, its spec (as stored), the record's other
    fields (lineage, resources, webhook), and for training the corpus it reads."""

    job_type: JobType
    spec: dict
    fields: dict
    corpus: dict | None = None  # training: sizes its memory and its storage reservation
    # (key, error) of each record the job needs that was read from a cache (its model, its
    # corpus): stored only if they still exist (shared/stores/admission.py), else the
    # error is the answer.
    required: tuple = ()


def submit(svc, owner, submission, answer=None):
    """Store the job and queue it for `owner`'s turn, then send what that released; the
    record. A training job must fit the workers' memory (422) and its model the size
    limit (422), and reserves its storage under the owner's quota in the step that stores
    it (507). `answer(record)`: what a retry with the same Idempotency-Key gets, written
    in the storing step (api/idempotency.py)."""
    reservation = None
    if submission.job_type is JobType.TRAIN:
        check_train_memory(submission.spec, submission.corpus, svc.settings.max_train_memory_mb)
        reservation = training_reservation(svc, owner, submission.spec, submission.corpus)
    record = svc.jobs.new_record(submission.job_type, submission.spec, owner,
                                 **submission.fields)
    released = svc.jobs.admit(record, max_queued=svc.settings.max_queued_jobs,
                              answer=answer(record) if answer else None,
                              required=submission.required, reservation=reservation)
    # The job is stored: a message the broker does not take now is sent by the reaper.
    send_released(svc.celery, queue_of(record), released)
    return record


def cancel_job(svc, job_id, owner=None):
    """queued | running -> cancelled (ConflictError once it ended), counted and sent to
    its webhook as any job that ended; the job."""
    job = svc.jobs.cancel(job_id, owner)
    svc.metrics.job_ended(job["type"], JobStatus.CANCELLED.value)
    svc.webhooks.notify(job, "completed")
    return job


def webhook_fields(svc, body):
    """The record fields of a request's webhook (WebhookFields): none without one; a URL
    the server must not call is a 422."""
    if not body.webhook:
        return {}
    return {"webhook": check_webhook_url(body.webhook, svc.settings.webhook_allow_hosts),
            "webhook_events": sorted(set(body.webhook_events))}


def plan_generation(svc, owner, body):
    """A GenerateRequest on one of `owner`'s models: its prompt within the model's
    characters, its cost within TEXTGEN_GENERATION_MAX_S and its result within
    TEXTGEN_MAX_RESULT_MB. The model as this process read it before, if it did (a model
    never changes): admitting the job checks that it still exists."""
    model = svc.models.get(body.model_id, owner, field="model_id", cached=True)
    check_prompt(body.prompt, model)
    tokens = len(body.prompt) + body.length
    estimate_s = estimate_generation_s(model["config"], model["vocab_size"], tokens,
                                       body.num_samples * len(body.temperatures))
    limit_s = svc.settings.generation_max_s
    if estimate_s > limit_s:
        raise GenerationTooLargeError(
            f"this generation would take about {estimate_s:,.0f} s, over the limit of "
            f"{limit_s:,.0f} s (TEXTGEN_GENERATION_MAX_S); ask for fewer tokens or samples",
            field="length", extra={"estimate_s": round(estimate_s, 1), "limit_s": limit_s})
    spec = GenerateSpec.model_validate(body.model_dump(exclude=set(WebhookFields.model_fields)))
    check_result_size(spec, int(svc.settings.max_result_mb * 1024 * 1024))
    return Submission(JobType.GENERATE, spec.model_dump(),
                      {"model_id": model["id"], **webhook_fields(svc, body)},
                      required=(svc.models.required(model["id"], field="model_id"),))


def plan_evaluation(svc, owner, body):
    """An EvaluateRequest on `owner`'s models and corpus (or an inline text), resolved and
    costed by shared/contracts/evaluations.py."""
    models = [svc.models.get(model_id, owner, field="model_ids") for model_id in body.model_ids]
    corpus = None
    if body.corpus_id is not None:
        corpus = svc.corpora.get(body.corpus_id, owner, field="corpus_id")
    spec = resolved_spec(body.model_dump(exclude=set(WebhookFields.model_fields)), models,
                         corpus, svc.settings.generation_max_s)
    return Submission(JobType.EVALUATE, spec, {"model_ids": body.model_ids,
                                               "corpus_id": body.corpus_id,
                                               **webhook_fields(svc, body)})


def check_prompt(prompt, model):
    """A character-level model's prompt, prepared as its corpus was, may hold only
    characters the model knows."""
    alphabet = model.get("alphabet")
    if alphabet is None or not prompt:
        return
    unseen = prepared_characters(prompt, model["config"]["preprocessing"]["mode"]) \
        - set(alphabet)
    if unseen:
        raise UnknownCharactersError(
            f"the prompt has {len(unseen)} characters the model never saw: {shown(unseen)}; "
            "remove them from the prompt, or train a model on a text that has them",
            field="prompt", extra={"characters": sorted(unseen)})


def shown(characters, most=20):
    """Characters as a message lists them: the first `most`, sorted and quoted."""
    listed = sorted(characters)[:most]
    return ", ".join(repr(c) for c in listed) + (" ..." if len(characters) > most else "")


def validated(build, *args):
    """`build(*args)`, a spec from request fields: its errors are the request's (422)."""
    try:
        return build(*args)
    except pydantic.ValidationError as e:
        raise ValidationError.from_pydantic(e) from None
