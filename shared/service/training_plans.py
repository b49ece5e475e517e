"""Planning a training job from its request: the spec (a preset sized to the corpus and the
workers' measured throughput, or a model's own spec to continue), within the operator's
time ceiling, on workers that exist. shared/service/submissions.py `submit` then checks its memory
and reserves its storage.
"""

from shared.contracts.errors import UnknownCharactersError, ValidationError
from shared.stores.jobs import JobType
from shared.sizing.model_sizing import with_sized_model
from shared.runtime.queue import queue_of
from shared.contracts.specs import TrainSpec, resolve_train_spec
from shared.service.submissions import Submission, shown, validated, webhook_fields
from shared.text.textprep import prepared_characters


def plan_training(svc, owner, body):
    """A TrainRequest on `owner`'s corpus (and model, to continue one). Both as this
    process read them before, if it did (neither record ever changes): admitting the job
    checks that they still exist."""
    corpus = svc.corpora.get(body.corpus_id, owner, field="corpus_id", cached=True)
    resources = body.resources.model_dump()
    fields = {"corpus_id": corpus["id"]}
    required = [svc.corpora.required(corpus["id"], field="corpus_id")]
    if body.init_from_model:
        source = svc.models.get(body.init_from_model, owner, field="init_from_model",
                                cached=True)
        spec = _continued_spec(body, source, corpus)
        fields["init_from_model"] = source["id"]
        required.append(svc.models.required(source["id"], field="init_from_model"))
    else:
        overrides = body.model_dump(include={"preprocessing", "model", "training"})
        # Sized by the throughput the workers of the job's queue measured (None: not yet).
        measured = svc.throughput.chars_per_s(queue_of(
            {"type": JobType.TRAIN.value, "resources": resources}))
        spec = validated(resolve_train_spec, body.preset,
                         with_sized_model(body.preset, overrides, corpus["chars"], measured))
    spec = _within_time_ceiling(spec, body, svc.settings.max_train_seconds)
    if resources["accelerator"] == "gpu" and not svc.redis.exists(svc.keys.gpu_workers()):
        raise ValidationError("no worker with a GPU has ever registered here; ask for "
                              "accelerator 'cpu', or start a worker with --gpu",
                              field="resources.accelerator")
    return Submission(JobType.TRAIN, spec.model_dump(),
                      {"resources": resources, **fields, **webhook_fields(svc, body)}, corpus,
                      required=tuple(required))


def _within_time_ceiling(spec, body, ceiling_s):
    """Every training job ends: a budget asked above the operator's ceiling is a 422; none
    (or one inherited from a continued model above it) becomes the ceiling."""
    asked = body.training.get("max_seconds")
    if asked is not None and asked > ceiling_s:
        raise ValidationError(f"training.max_seconds may be at most {ceiling_s:g} s here "
                              "(TEXTGEN_MAX_TRAIN_SECONDS)", field="training.max_seconds",
                              extra={"limit_s": ceiling_s})
    if spec.training.max_seconds is not None and spec.training.max_seconds <= ceiling_s:
        return spec
    return spec.with_training(max_seconds=ceiling_s)


def _continued_spec(body, source, corpus):
    """Training that continues `source`: its spec, with this request's `training` on top."""
    for section in ("preprocessing", "model"):
        if getattr(body, section):
            raise ValidationError(f"'{section}' is the model's own when init_from_model is "
                                  "given; leave it out", field=section)
    config = source["config"]
    spec = validated(TrainSpec.model_validate, {**config, "training": {
        **config["training"], **body.training}})
    alphabet = source.get("alphabet")
    if alphabet is not None:  # character level: the corpus must be within the vocabulary
        unseen = prepared_characters(corpus["alphabet"], spec.preprocessing.mode) - set(alphabet)
        if unseen:
            raise UnknownCharactersError(
                f"the corpus has {len(unseen)} characters that model {source['id']} never "
                f"saw: {shown(unseen)}; remove them from the text, or train a new model "
                "on it", field="corpus_id",
                extra={"characters": sorted(unseen)})
    return spec
