"""Job specs: the presets (data), and the typed models a request is validated against.

A training spec is a preset plus overrides: the request's sections are partial (any field of
a section may be left out), the preset fills in the rest, and the merged spec is validated
once more as a whole. The API stores `TrainSpec.model_dump()` on the job; the worker
validates it again on arrival, keeps the TrainSpec down to the last callback, and dumps it
only where it is stored (the model record's `config`, the model's config.json). The
OpenAPI document is generated from these same models (api/openapi.py), so the ranges below
are the API's.
"""

import secrets
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, field_validator, model_validator
from typing_extensions import TypedDict

# Strict: JSON "3" is not 3, 1.5 is not an int, true is not 1; an unknown field is an error.
STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

PresetName = Literal["default", "seed"]

PRESETS = {
    # What a practitioner would use on a CPU: raw text, embedding, a loss on every step.
    # The rate held, then cooled to zero over the last 20% of the budget (issue 16; no
    # warm-up: Adam with clipping needs none here, and 20 steps of it cost 0.1 nats at 20 s).
    # Sized for small CPU budgets (bench/quality_per_minute.py, 2 cores): 128 units run
    # ~35k target chars/s, where 256 run ~8k and learn less in the same minutes; a high
    # rate with clipping learns fastest (1e-2 beat 5e-3, 7e-3 and 2e-2); windows of 64
    # give more steps than 128 at the same loss. bfloat16 products in training steps, where
    # the CPU has them: 1.5x the steps a second, 0.004-0.011 nats worse at equal steps, and
    # 0.02-0.04 better at 40 and 80 s (bench/README.md, 2026-12-08).
    "default": {
        "preprocessing": {"mode": "raw", "level": "char", "max_vocab": 10000},
        "model": {"architecture": "embedding_lstm", "units": 128, "layers": 2, "dropout": 0.0,
                  "embedding_dim": 64},
        "training": {"epochs": 10, "batch_size": 64, "seq_length": 64, "learning_rate": 1e-2,
                     "validation_fraction": 0.1, "seed": 1, "max_seconds": None,
                     "clip_norm": 1.0, "patience": 3, "lr_decay": 0.95,
                     "lr_schedule": "budget", "warmup_steps": 0, "cooldown_fraction": 0.2,
                     "ema_decay": None, "matmul_precision": "bfloat16"},
    },
    # The tutorial exactly: LSTM 256 -> 256 -> 128, dropout 0.2, batch 256, Adam at Keras'
    # default rate, windows of 100, no validation split, no clipping, no schedule.
    "seed": {
        "preprocessing": {"mode": "tutorial", "level": "char", "max_vocab": 10000},
        "model": {"architecture": "tutorial", "units": 256, "layers": 3, "dropout": 0.2,
                  "embedding_dim": 64},
        "training": {"epochs": 4, "batch_size": 256, "seq_length": 100, "learning_rate": 1e-3,
                     "validation_fraction": 0.0, "seed": 1, "max_seconds": None,
                     "clip_norm": None, "patience": None, "lr_decay": 1.0,
                     "lr_schedule": "epoch_decay", "warmup_steps": 0,
                     "cooldown_fraction": 0.2, "ema_decay": None, "matmul_precision": "float32"},
    },
}

# One line each, for GET /v1/presets and `textgen presets`; the comments above say why.
PRESET_DESCRIPTIONS = {
    "default": "for CPUs: raw text, a 2x128 embedding LSTM predicting every step, rate 0.01 "
               "cooled to zero over the budget's last 20%, bfloat16 products where the CPU "
               "has them; sized to the corpus when only max_seconds is given",
    "seed": "the original tutorial: lowercased words without stopwords, read as characters "
            "by a 256-256-128 LSTM, dropout 0.2, batch 256, Adam at 0.001, windows of 100",
}

SEED_MAX = 2**31 - 1  # seeds fit a signed 32-bit int, the widest every RNG here takes
WEEK_S = 7 * 86400  # the longest training budget accepted (and the broker's redelivery horizon)


def _field(ge=None, le=None, doc="", **kw):
    return Field(ge=ge, le=le, description=doc, **kw)



class PreprocessingSpec(BaseModel):
    model_config = STRICT

    mode: Literal["tutorial", "raw"] = Field(description=(
        "'tutorial': lowercase, NLTK \\w+ tokens, English stopwords removed, joined by "
        "spaces; 'raw': the text as uploaded (case, punctuation, line breaks kept)"))
    level: Literal["char", "word"] = Field(description=(
        "'char': a token is a character; 'word': a word, punctuation mark or line break, "
        "unknown words as <unk>"))
    max_vocab: Annotated[int, _field(2, 200_000, "word level: vocabulary size, <unk> "
                                     "included (the max_vocab - 1 most frequent tokens)")]

    @model_validator(mode="before")
    @classmethod
    def _stored_before_word_level(cls, data):
        """A model saved before word level existed has neither `level` nor `max_vocab`: it
        is a character model."""
        if isinstance(data, dict) and "level" not in data:
            data = {**BEFORE_WORD_LEVEL, **data}
        return data


# max_vocab is unused at character level: the presets' value.
BEFORE_WORD_LEVEL = {"level": "char", "max_vocab": 10000}


class ModelSpec(BaseModel):
    model_config = STRICT

    architecture: Literal["tutorial", "embedding_lstm"] = Field(description=(
        "'tutorial': scaled-index input, stacked LSTM predicting the next token of a window; "
        "'embedding_lstm': token embedding, stacked LSTM, a prediction at every step"))
    units: Annotated[int, _field(1, 4096, "LSTM units per layer (the tutorial's last layer "
                                 "has half)")]
    layers: Annotated[int, _field(1, 8, "number of stacked LSTM layers")]
    dropout: Annotated[float, _field(0.0, 0.9, "dropout rate after each LSTM layer")]
    embedding_dim: Annotated[int, _field(1, 1024, "embedding width (embedding_lstm only)")]


class TrainingSpec(BaseModel):
    model_config = STRICT

    epochs: Annotated[int, _field(1, 10_000, "passes over the training text")]
    batch_size: Annotated[int, _field(1, 4096, "windows per training step")]
    seq_length: Annotated[int, _field(2, 2048, "tokens per window")]
    learning_rate: Annotated[float, _field(1e-6, 1.0, "Adam's initial learning rate")]
    validation_fraction: Annotated[float, _field(
        0.0, 0.5, "share of the text, taken from its end, held out for validation")]
    seed: Annotated[int, _field(0, SEED_MAX, "seed for weights and data order: same seed, "
                                "same run")]
    max_seconds: Annotated[float | None, _field(
        1.0, WEEK_S, "wall-clock budget; training stops at the next step once spent "
        "(null: the service's ceiling, TEXTGEN_MAX_TRAIN_SECONDS). For the default preset at "
        "character level with no `model` field, the model is also sized to the corpus and "
        "this budget (shared/sizing/model_sizing.py)")]
    clip_norm: Annotated[float | None, _field(1e-3, 1e3, "gradient clipping by global norm "
                                              "(null: none)")]
    patience: Annotated[int | None, _field(1, 1000, "epochs without a better val_loss "
                                           "before stopping (null: never)")]
    lr_decay: Annotated[float, _field(0.01, 1.0, "learning rate multiplied by this after "
                                      "each epoch (lr_schedule 'epoch_decay' only)")]
    # The schedule and averaging fields (issue 16, worker/schedule.py).
    lr_schedule: Literal["budget", "epoch_decay"] = Field(description=(
        "'budget': warm up over warmup_steps, hold learning_rate, then cool down linearly "
        "to zero over the last cooldown_fraction of the budget (by elapsed time with "
        "max_seconds, across resumed attempts; by steps with epochs; whichever ends "
        "first); 'epoch_decay': multiply by lr_decay after each epoch"))
    warmup_steps: Annotated[int, _field(0, 100_000, "'budget' schedule: steps of linear "
                                        "warm-up from zero")]
    cooldown_fraction: Annotated[float, _field(0.0, 1.0, "'budget' schedule: the last share "
                                               "of the budget over which the rate falls "
                                               "to zero (1: linear decay throughout)")]
    ema_decay: Annotated[float | None, _field(
        0.5, 0.99999, "validate and save an exponential moving average of the weights, "
        "updated every step with this decay (null: the weights as trained)")]
    # Issue 16: the compiled LSTM op's products (worker/fused_lstm.py).
    matmul_precision: Literal["float32", "bfloat16"] = Field(description=(
        "the LSTM layers' matrix products in training steps on a CPU: 'float32', or "
        "'bfloat16' (operands rounded to bfloat16, sums and weights kept in float32: faster "
        "where the CPU has AVX512_BF16, float32 elsewhere); validation, samples and the "
        "saved model are float32 either way"))

    @model_validator(mode="before")
    @classmethod
    def _stored_before_later_fields(cls, data):
        """A spec stored before a field existed (a queued job, a model's config) runs as it
        did then: before `lr_schedule`, the per-epoch decay without averaging; before
        `matmul_precision`, float32. Not field defaults, which a request's partial section
        would then carry over the preset's value."""
        if isinstance(data, dict):
            for field, before in STORED_BEFORE.items():
                if field not in data:
                    data = {**before, **data}
        return data


# For each field added later, what a spec stored before it ran with.
STORED_BEFORE = {
    "lr_schedule": {"lr_schedule": "epoch_decay", "warmup_steps": 0, "cooldown_fraction": 0.2,
                    "ema_decay": None},
    "matmul_precision": {"matmul_precision": "float32"},
}


class TrainSpec(BaseModel):
    """A whole training spec: what the worker runs and what is saved with the model."""

    model_config = STRICT

    preset: PresetName
    preprocessing: PreprocessingSpec
    model: ModelSpec
    training: TrainingSpec

    def with_training(self, **fields) -> "TrainSpec":
        """This spec with these training fields replaced (values already checked: a
        budget capped by the service, a resumed run's longer schedule)."""
        return self.model_copy(update={"training": self.training.model_copy(update=fields)})


def overrides_of(section):
    """A request's partial `section`: the same fields, ranges and descriptions, none required.

    A TypedDict, not a model with None defaults, so that a left-out field and an explicit
    null stay different: null is refused where the full spec does not allow it.
    """
    # Each field keeps its FieldInfo (type, constraints, validators, description) as is.
    fields = {name: Annotated[info.annotation, info]
              for name, info in section.model_fields.items()}
    partial = TypedDict(f"{section.__name__}Overrides", fields, total=False)
    partial.__pydantic_config__ = STRICT
    return partial


PreprocessingOverrides = overrides_of(PreprocessingSpec)
ModelOverrides = overrides_of(ModelSpec)
TrainingOverrides = overrides_of(TrainingSpec)
SECTIONS = ("preprocessing", "model", "training")


def resolve_train_spec(preset, overrides):
    """The preset named `preset` with `overrides` ({section: {field: value}}) applied."""
    base = PRESETS[preset]
    merged = {section: {**base[section], **(overrides.get(section) or {})}
              for section in SECTIONS}
    return TrainSpec.model_validate({"preset": preset, **merged})


Temperature = Annotated[float, Field(ge=0.0, le=10.0)]
MAX_TEMPERATURES = 16
MAX_SAMPLES = 64  # samples in one generation job, over every temperature: one batch's worth


def _temperature(value):
    """A temperature from 0 to 10, or a list of 1 to MAX_TEMPERATURES of them (strict: no
    strings, no booleans)."""
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not 1 <= len(value) <= MAX_TEMPERATURES:
        raise ValueError(f"a temperature list holds 1 to {MAX_TEMPERATURES} values")
    for item in values:
        if (isinstance(item, bool) or not isinstance(item, (int, float))
                or not 0.0 <= item <= 10.0):  # NaN fails the range too
            raise ValueError("a temperature is a number from 0 to 10")
    return [float(v) for v in value] if isinstance(value, list) else float(value)


class GenerateSpec(BaseModel):
    """A generation job's spec, defaults filled in; stored on the job as is."""

    model_config = STRICT

    model_id: Annotated[str, Field(min_length=1, max_length=100,
                                   description="the model to sample from")]
    prompt: Annotated[str, Field(max_length=10_000, description=(
        "text every sample starts with, prepared as the model's corpus was (lowercased "
        "for `seed` models, for instance); empty: from nothing"))] = ""
    length: Annotated[int, _field(1, 100_000, "tokens (characters, or words) to generate "
                                  "after the prompt, per sample")] = 200
    temperature: Annotated[
        float | list[float],
        # One validator for both shapes, so an error points at `temperature` itself, not at
        # a branch of the union; the schema still says what is accepted.
        PlainValidator(_temperature, json_schema_input_type=Temperature | Annotated[
            list[Temperature], Field(min_length=1, max_length=MAX_TEMPERATURES)]),
        Field(description="sampling temperature, 0 = greedy; a list (up to 16 values) gives "
                          "num_samples samples per value")] = 1.0
    top_k: Annotated[int, _field(0, 100_000, "sample only among the k likeliest "
                                 "(0: no limit)")] = 0
    top_p: Annotated[float, Field(gt=0.0, le=1.0, description=(
        "sample only within this cumulative probability (1: no limit)"))] = 1.0
    num_samples: Annotated[int, _field(1, 64, "samples per temperature, generated as one "
                                       "batch")] = 1
    seed: Annotated[int | None, _field(0, SEED_MAX, "random seed: same seed, same text "
                                       "(null: chosen and recorded)")] = None
    stop: Annotated[str | None, Field(min_length=1, max_length=100, description=(
        "a sample ends just before this string (null: never)"))] = None

    @field_validator("num_samples")
    @classmethod
    def _at_most_one_batch(cls, num_samples, info):
        temperatures = info.data.get("temperature")
        count = len(temperatures) if isinstance(temperatures, list) else 1
        if num_samples * count > MAX_SAMPLES:
            raise ValueError(f"num_samples x the number of temperatures must be at most "
                             f"{MAX_SAMPLES}")
        return num_samples

    @model_validator(mode="after")
    def _choose_seed(self):
        if self.seed is None:
            # Chosen here and stored with the job, so every result can be reproduced.
            self.seed = secrets.randbelow(SEED_MAX)
        return self

    @property
    def temperatures(self):
        """The temperatures to sample at, one batch of num_samples each."""
        return self.temperature if isinstance(self.temperature, list) else [self.temperature]
