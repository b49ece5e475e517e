"""A sweep's request and its search space: which training-spec fields vary, over what.

A field of the space is a dotted name of the training spec (`model.units`); its values are
a list (a choice among them) or a range {low, high, log} to sample. Every value is checked
by the spec's own validation (shared/contracts/specs.py), the base spec's other fields in
place, so a trial can never be refused for a value the sweep accepted.
"""

import math
import typing
from typing import Annotated, Literal

import pydantic
from pydantic import BaseModel, Field

from shared.contracts.errors import ValidationError
from shared.contracts.specs import (
    SECTIONS,
    STRICT,
    WEEK_S,
    ModelOverrides,
    PreprocessingOverrides,
    PresetName,
    PreprocessingSpec,
    ModelSpec,
    TrainingOverrides,
    TrainingSpec,
    resolve_train_spec,
)

SECTION_MODELS = {"preprocessing": PreprocessingSpec, "model": ModelSpec,
                  "training": TrainingSpec}
# Fields a sweep sets itself: the budget is trial_seconds; the validation split is what the
# objective is measured on, so trials on different splits would not compare.
NOT_SWEPT = {"training.max_seconds": "each trial's budget is trial_seconds",
             "training.validation_fraction": "trials are compared on one validation split; "
                                             "set it in the base spec"}
SWEEPABLE = [f"{section}.{field}" for section, model in SECTION_MODELS.items()
             for field in model.model_fields if f"{section}.{field}" not in NOT_SWEPT]
MAX_FIELDS = 8  # fields in one search space: more than a few trials can tell apart
MAX_CHOICES = 32  # values in one list
MAX_FINAL_FRACTION = 0.9  # the search keeps a tenth of the budget at least: it picks the trial

Choice = str | int | float | bool | None


class Range(BaseModel):
    """Sample a number from low to high (both included); log: uniform in its logarithm."""

    model_config = STRICT

    low: int | float
    high: int | float
    log: bool = False


SpaceEntry = Annotated[list[Choice], Field(min_length=1, max_length=MAX_CHOICES)] | Range


def _space_schema(schema):
    """The space's JSON Schema: per sweepable field, a list of the field's own values, or
    (numeric fields) a range whose ends are such values."""
    properties = {}
    for name in SWEEPABLE:
        section, _, field = name.partition(".")
        value = SECTION_MODELS[section].model_json_schema()["properties"][field]
        value = {key: v for key, v in value.items() if key not in ("title", "description")}
        entries = [{"type": "array", "items": value, "minItems": 1, "maxItems": MAX_CHOICES}]
        number = next((branch for branch in value.get("anyOf", [value])
                       if branch.get("type") in ("integer", "number")), None)
        if number is not None:
            entries.append({"type": "object", "properties": {
                "low": number, "high": number, "log": {"type": "boolean", "default": False}},
                "required": ["low", "high"], "additionalProperties": False})
        properties[name] = {"anyOf": entries}
    schema.pop("additionalProperties", None)
    schema.update(type="object", properties=properties, additionalProperties=False)


class SweepRequest(BaseModel):
    """POST /v1/sweeps."""

    model_config = STRICT

    corpus_id: Annotated[str, Field(min_length=1, max_length=100)] = Field(
        description="the corpus every trial trains on")
    preset: PresetName = Field("default", description="the base spec's recipe")
    preprocessing: PreprocessingOverrides = Field(default_factory=dict)
    model: ModelOverrides = Field(default_factory=dict)
    training: TrainingOverrides = Field(default_factory=dict)
    space: Annotated[dict[str, SpaceEntry], Field(
        min_length=1, max_length=MAX_FIELDS,
        # Each field's values as the spec takes them, in the schema; checked_space() checks.
        json_schema_extra=_space_schema,
        description="dotted training-spec field -> a list of values (a choice) or a range "
                    "{low, high, log}; all lists: a grid")]
    trials: Annotated[int, Field(ge=1, le=100, description=(
        "trials to run (a grid runs at most its size)"))] = 10
    trial_seconds: Annotated[float, Field(ge=1.0, le=WEEK_S, description=(
        "each trial's training.max_seconds: the budget its rungs divide"))]
    budget_seconds: Annotated[float | None, Field(ge=1.0, le=WEEK_S, description=(
        "the whole sweep's: no trial starts once it is spent, and a trial gets at most "
        "what is left (null: trials x trial_seconds)"))] = None
    # 0.5: with the default budget (trials x trial_seconds) and the default parallel (2),
    # the trials need about half the budget when none is pruned, so the final phase mostly
    # takes time a sweep used to leave idle. What it gains depends on the winner: 2-minute
    # bench, an undertrained trial continued from 2.079 to 1.629; 20-minute bench, a trial
    # already overfitting, no gain (bench/README.md, issue 18). It never does worse: the
    # trial stays the best unless the final job ends lower.
    final_fraction: Annotated[float, Field(ge=0.0, le=MAX_FINAL_FRACTION, description=(
        "the share of budget_seconds kept for the final phase: when the trials are done, "
        "the best one goes on from its weights as one more training job, for what is left "
        "of the budget, and becomes the sweep's best if its validation loss is lower "
        "(0: no final phase)"))] = 0.5
    parallel: Annotated[int, Field(ge=1, le=16, description=(
        "trials queued or running at once (each one of your jobs)"))] = 2
    objective: Literal["val_loss"] = Field("val_loss", description=(
        "minimized: the trial's best validation loss (nats per token)"))

    def overrides(self):
        return self.model_dump(include=set(SECTIONS))


def checked_space(body):
    """The request's space as stored ({field: list or {low, high, log}}), each value
    passed through the training spec's validation; one ValidationError lists every field
    at fault (`space.<field>`)."""
    errors = []
    space = {}
    for name, entry in body.space.items():
        try:
            space[name] = _checked(name, entry, body.preset, body.overrides())
        except ValueError as e:
            errors.append({"pointer": f"/space/{name.replace('~', '~0').replace('/', '~1')}",
                           "field": f"space.{name}", "message": str(e)})
    if errors:
        detail = "; ".join(f"{err['field']}: {err['message']}" for err in errors)
        raise ValidationError(detail, field=errors[0]["field"], errors=errors)
    return space


def _checked(name, entry, preset, overrides):
    section, _, field = name.partition(".")
    if section not in SECTION_MODELS or field not in SECTION_MODELS[section].model_fields:
        raise ValueError("not a field of the training spec (section.field, as "
                         "model.units)")
    if name in NOT_SWEPT:
        raise ValueError(f"not swept: {NOT_SWEPT[name]}")
    if isinstance(entry, list):
        for value in entry:
            _passes(section, field, value, preset, overrides)
        return entry
    kind = _numeric_kind(SECTION_MODELS[section].model_fields[field].annotation)
    if kind is None:
        raise ValueError("a range needs a numeric field; give a list of values")
    if kind is int and not all(isinstance(v, int) for v in (entry.low, entry.high)):
        raise ValueError("an integer field's range has integer low and high")
    if not entry.low < entry.high:
        raise ValueError("low must be below high")
    if entry.log and entry.low <= 0:
        raise ValueError("a log range needs low > 0")
    for value in (entry.low, entry.high):
        _passes(section, field, kind(value), preset, overrides)
    return {"low": kind(entry.low), "high": kind(entry.high), "log": entry.log}


def _passes(section, field, value, preset, overrides):
    """ValueError with the spec's own message unless `value` makes a valid spec."""
    try:
        resolve_train_spec(preset, with_params(overrides, {f"{section}.{field}": value}))
    except pydantic.ValidationError as e:
        raise ValueError(f"{value!r}: {e.errors()[0]['msg']}") from None


def _numeric_kind(annotation):
    args = typing.get_args(annotation) or (annotation,)
    return int if int in args else float if float in args else None


def with_params(overrides, params):
    """The base `overrides` ({section: {field: value}}) with a trial's dotted `params`."""
    merged = {section: dict(overrides.get(section) or {}) for section in SECTIONS}
    for name, value in params.items():
        section, _, field = name.partition(".")
        merged[section][field] = value
    return merged


def grid_size(space):
    """Points of an all-lists space (None when a range makes it endless)."""
    if any(not isinstance(entry, list) for entry in space.values()):
        return None
    return math.prod(len(values) for values in grid(space).values())


def grid(space):
    """{field: distinct values} of an all-lists space."""
    return {name: distinct(entry) for name, entry in space.items()}


def distinct(values):
    """The list without repeats, in the order given (by repr: 1 and True stay apart)."""
    return list({repr(value): value for value in values}.values())

