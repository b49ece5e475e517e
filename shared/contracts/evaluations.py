"""Evaluation jobs: the spec (which models, which text), how a corpus's held-out tail is
cut, and the cost estimate checked before a job is accepted.

The API resolves the text once and stores it in the spec (`holdout_fraction` chosen, an
inline text kept), so the worker only cuts and scores (worker/evaluation.py).
"""

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from shared.contracts.errors import EvaluationTooLargeError, ValidationError
from shared.sizing.generation_cost import estimate_generation_s
from shared.contracts.specs import PRESETS, STRICT

MAX_MODELS = 8  # models side by side in one evaluation: a table a person reads
MAX_TEXT_CHARS = 100_000  # an inline text; a longer one is uploaded as a corpus first
MAX_OOV_SHOWN = 50  # distinct out-of-vocabulary characters (or words) listed per model
OOV_WORD_CHARS = 32  # a listed word is cut to this: a \w+ run may be a page long

# The sampler-style scorer (worker/evaluation.py) runs this many streams of the text at
# once, each reading WARMUP_TOKENS of the text before its part (not scored) so that no
# scored token starts from an empty state but the very first. Here for the cost estimate.
STREAMS = 128
WARMUP_TOKENS = 64
# A model's held-out tail when no model of the evaluation trained on the corpus: the
# default preset's validation split.
DEFAULT_HOLDOUT = PRESETS["default"]["training"]["validation_fraction"]

Id = Annotated[str, Field(min_length=1, max_length=100)]
SCORED = "embedding_lstm"  # the architecture worker/evaluation.py scores


class EvaluateSpec(BaseModel):
    """An evaluation job's spec: models, and a corpus (its held-out tail, or all of it) or
    an inline text."""

    # The schema says what the validators below check: a corpus or a text, not both.
    model_config = {**STRICT, "json_schema_extra": {"oneOf": [
        {"required": [name], "properties": {name: {"type": "string"}}}
        for name in ("corpus_id", "text")]}}

    model_ids: Annotated[list[Id], Field(min_length=1, max_length=MAX_MODELS, description=(
        f"1 to {MAX_MODELS} of your models, scored side by side on the same text"),
        json_schema_extra={"uniqueItems": True})]
    corpus_id: Id | None = Field(None, description="score this corpus (or give `text`)")
    part: Literal["held_out", "all"] = Field("held_out", description=(
        "with corpus_id: 'held_out', the tail a training job holds out for validation "
        "(see holdout_fraction); 'all', the whole corpus"))
    holdout_fraction: Annotated[float, Field(gt=0.0, le=0.5, description=(
        "with part 'held_out': the share of the corpus, from its end, that is scored. "
        "Null: the smallest validation_fraction of the models trained on this corpus (no "
        f"model is then scored on text it trained on), else {DEFAULT_HOLDOUT:g}"))] | None = None
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS, description=(
        "score this text instead of a corpus (up to "
        f"{MAX_TEXT_CHARS:,} characters; upload a longer one as a corpus)"))] | None = Field(
        None, validate_default=True)

    @field_validator("model_ids")
    @classmethod
    def _distinct(cls, model_ids):
        if len(set(model_ids)) != len(model_ids):
            raise ValueError("lists a model twice")
        return model_ids

    @field_validator("text")
    @classmethod
    def _one_text(cls, text, info):
        if (info.data.get("corpus_id") is None) == (text is None):
            raise ValueError("give either corpus_id or text")
        return text


def resolved_spec(fields, models, corpus, limit_s):
    """The spec to store for `fields` (a request's, validated) on the owner's `models` and
    `corpus` (None for an inline text): the tail chosen. ValidationError for a model it
    cannot score, EvaluationTooLargeError when it would not end within `limit_s`."""
    spec = EvaluateSpec.model_validate(fields)
    for model in models:
        if model["config"]["model"]["architecture"] != SCORED:
            raise ValidationError(
                f"model {model['id']} is a tutorial-architecture model (the seed preset), "
                "which predicts each character from a fresh window: scoring a text would "
                "cost a window per character; only embedding_lstm models are evaluated",
                field="model_ids")
    chars = len(spec.text or "")
    if corpus is not None:
        chars = corpus["chars"]
        if spec.part == "held_out":
            spec = spec.model_copy(update={"holdout_fraction": spec.holdout_fraction
                                           or holdout_fraction(models, corpus)})
            chars = int(chars * spec.holdout_fraction)  # the tail, as tail_start cuts it
        else:
            spec = spec.model_copy(update={"holdout_fraction": None})
    estimate_s = sum(estimate_evaluation_s(model, chars) for model in models)
    if estimate_s > limit_s:
        raise EvaluationTooLargeError(
            f"scoring {chars:,} characters with these models would take about "
            f"{estimate_s:,.0f} s, over the limit of {limit_s:,.0f} s "
            "(TEXTGEN_GENERATION_MAX_S); evaluate fewer models or a shorter text",
            field="model_ids", extra={"estimate_s": round(estimate_s, 1), "limit_s": limit_s})
    return spec.model_dump()


def holdout_fraction(models, corpus):
    """The held-out share scored when none is asked: the smallest validation split among
    the models trained on `corpus` that held one out, so no such model is scored on text
    it trained on; the default preset's split when there is none."""
    fractions = [m["config"]["training"]["validation_fraction"] for m in models
                 if m.get("corpus_sha256") == corpus["sha256"]]
    fractions = [f for f in fractions if f > 0]
    return min(fractions) if fractions else DEFAULT_HOLDOUT


def tail_start(length, fraction):
    """Where the held-out tail of a text of `length` begins: worker/datasets.py cuts a
    validation split the same way (int(length * fraction) from the end)."""
    return length - int(length * fraction)


def overlaps_training(model, corpus, spec: EvaluateSpec):
    """Whether the text scored holds text `model` (a record) trained on: its own corpus,
    wholly or past its validation split. None for an inline text (it cannot be known)."""
    if corpus is None:
        return None
    if model.get("corpus_sha256") != corpus["sha256"]:
        return False
    if spec.part == "all":
        return True
    return spec.holdout_fraction > model["config"]["training"]["validation_fraction"]


def estimate_evaluation_s(model, chars):
    """Seconds to score `chars` characters with `model` (a record): STREAMS streams,
    stepped like the sampler's (shared/sizing/generation_cost.py), each with its warm-up."""
    steps = -(-chars // STREAMS) + WARMUP_TOKENS
    return estimate_generation_s(model["config"], model["vocab_size"], steps, STREAMS)
