"""Job specs: the presets, the fields a request may override, and their validation.

A training spec is a preset plus overrides, validated here once by the API and then used
as is by the worker and saved with the model. The field tables below are the single
definition of what a request may say; later the OpenAPI document is generated from them.
"""

import copy
import math
import secrets
from dataclasses import dataclass

from shared.errors import MalformedRequestError, ValidationError


@dataclass(frozen=True)
class Field:
    """One request field: its JSON type, its allowed range or choices, and what it means."""

    kind: type  # int, float, str or bool (a JSON int is accepted where a float is asked)
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple | None = None
    nullable: bool = False
    max_length: int | None = None  # for strings, in characters


PREPROCESSING_FIELDS = {
    "mode": Field(
        str,
        "'tutorial': lowercase, NLTK \\w+ tokens, English stopwords removed, joined by "
        "spaces; 'raw': the text as uploaded (case, punctuation, line breaks kept)",
        choices=("tutorial", "raw"),
    ),
    "level": Field(
        str,
        "'char': a token is a character; 'word': a word, punctuation mark or line break "
        "(regexp tokenizer, Treebank detokenizer), unknown words as <unk>",
        choices=("char", "word"),
    ),
    "max_vocab": Field(int, "word level: vocabulary size, <unk> included (the max_vocab - 1 "
                       "most frequent tokens are kept)", 2, 200_000),
}

MODEL_FIELDS = {
    "architecture": Field(
        str,
        "'tutorial': scaled-index input, stacked LSTM predicting the next character of a "
        "window; 'embedding_lstm': token embedding, stacked LSTM, a prediction at every step",
        choices=("tutorial", "embedding_lstm"),
    ),
    "units": Field(int, "LSTM units per layer (the tutorial's last layer has half)", 1, 4096),
    "layers": Field(int, "number of stacked LSTM layers", 1, 8),
    "dropout": Field(float, "dropout rate after each LSTM layer", 0.0, 0.9),
    "embedding_dim": Field(int, "embedding width (embedding_lstm only)", 1, 1024),
}

TRAINING_FIELDS = {
    "epochs": Field(int, "passes over the training text", 1, 10_000),
    "batch_size": Field(int, "windows per training step", 1, 4096),
    "seq_length": Field(int, "characters per window", 2, 2048),
    "learning_rate": Field(float, "Adam's initial learning rate", 1e-6, 1.0),
    "validation_fraction": Field(
        float, "share of the text, taken from its end, held out for validation", 0.0, 0.5
    ),
    "seed": Field(int, "seed for weights and data order: same seed, same run", 0, 2**31 - 1),
    "max_seconds": Field(
        float, "wall-clock budget; training stops at the next step once spent", 1.0, 7 * 86400,
        nullable=True,
    ),
    "clip_norm": Field(float, "gradient clipping by global norm (null: none)", 1e-3, 1e3,
                       nullable=True),
    "patience": Field(int, "epochs without a better val_loss before stopping (null: never)",
                      1, 1000, nullable=True),
    "lr_decay": Field(float, "learning rate multiplied by this after each epoch", 0.01, 1.0),
}

SECTIONS = {
    "preprocessing": PREPROCESSING_FIELDS,
    "model": MODEL_FIELDS,
    "training": TRAINING_FIELDS,
}

PRESETS = {
    # What a practitioner would use on a CPU: raw text, embedding, a loss on every step.
    # Sized for small CPU budgets (bench/quality_per_minute.py, 2 cores): 128 units run
    # ~35k target chars/s, where 256 run ~8k and learn less in the same minutes; a high
    # rate with clipping learns fastest (1e-2 beat 5e-3, 7e-3 and 2e-2); windows of 64
    # give more steps than 128 at the same loss.
    "default": {
        "preprocessing": {"mode": "raw", "level": "char", "max_vocab": 10000},
        "model": {"architecture": "embedding_lstm", "units": 128, "layers": 2, "dropout": 0.0,
                  "embedding_dim": 64},
        "training": {"epochs": 10, "batch_size": 64, "seq_length": 64, "learning_rate": 1e-2,
                     "validation_fraction": 0.1, "seed": 1, "max_seconds": None,
                     "clip_norm": 1.0, "patience": 3, "lr_decay": 0.95},
    },
    # The tutorial exactly: LSTM 256 -> 256 -> 128, dropout 0.2, batch 256, Adam at Keras'
    # default rate, windows of 100, no validation split, no clipping, no schedule.
    "seed": {
        "preprocessing": {"mode": "tutorial", "level": "char", "max_vocab": 10000},
        "model": {"architecture": "tutorial", "units": 256, "layers": 3, "dropout": 0.2,
                  "embedding_dim": 64},
        "training": {"epochs": 4, "batch_size": 256, "seq_length": 100, "learning_rate": 1e-3,
                     "validation_fraction": 0.0, "seed": 1, "max_seconds": None,
                     "clip_norm": None, "patience": None, "lr_decay": 1.0},
    },
}

GENERATE_FIELDS = {
    "model_id": Field(str, "the model to sample from", max_length=100),
    "prompt": Field(str, "text the samples start from (empty: from nothing)", max_length=10_000),
    "length": Field(int, "characters to generate per sample", 1, 100_000),
    "temperature": Field(float, "sampling temperature; 0 picks the likeliest (greedy)", 0.0, 10.0),
    "top_k": Field(int, "sample only among the k likeliest (0: no limit)", 0, 100_000),
    "top_p": Field(float, "sample only within this cumulative probability", 0.01, 1.0),
    "num_samples": Field(int, "independent samples, generated as one batch", 1, 64),
    "seed": Field(int, "random seed: same seed, same text (null: chosen and recorded)",
                  0, 2**31 - 1, nullable=True),
    "stop": Field(str, "stop a sample when this string appears (null: never)", max_length=100,
                  nullable=True),
}

GENERATE_DEFAULTS = {"prompt": "", "length": 200, "temperature": 1.0, "top_k": 0, "top_p": 1.0,
                     "num_samples": 1, "seed": None, "stop": None}


def _check_value(field, value, name):
    if value is None:
        if field.nullable:
            return None
        raise ValidationError(f"'{name}' may not be null", field=name)
    # bool is a subclass of int in Python; JSON true is never a number here.
    if isinstance(value, bool) and field.kind is not bool:
        raise ValidationError(f"'{name}' must be {_type_name(field.kind)}", field=name)
    if field.kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, field.kind):
        raise ValidationError(f"'{name}' must be {_type_name(field.kind)}", field=name)
    if field.kind is float and not math.isfinite(value):
        raise ValidationError(f"'{name}' must be a finite number", field=name)
    if field.choices is not None and value not in field.choices:
        raise ValidationError(f"'{name}' must be one of {', '.join(field.choices)}", field=name)
    if field.minimum is not None and value < field.minimum:
        raise ValidationError(f"'{name}' must be at least {field.minimum}", field=name)
    if field.maximum is not None and value > field.maximum:
        raise ValidationError(f"'{name}' must be at most {field.maximum}", field=name)
    if field.max_length is not None and len(value) > field.max_length:
        raise ValidationError(f"'{name}' must be at most {field.max_length} characters",
                              field=name)
    return value


def _type_name(kind):
    return {int: "an integer", float: "a number", str: "a string", bool: "a boolean"}[kind]


def _check_object(body, fields, prefix=""):
    """Validate the known keys of `body` against `fields`; unknown keys are errors."""
    if not isinstance(body, dict):
        raise ValidationError(f"'{prefix.rstrip('.') or 'body'}' must be an object",
                              field=prefix.rstrip(".") or None)
    out = {}
    for key, value in body.items():
        name = prefix + key
        if key not in fields:
            raise ValidationError(f"unknown field '{name}'", field=name)
        out[key] = _check_value(fields[key], value, name)
    return out


def require_object(body):
    if not isinstance(body, dict):
        raise MalformedRequestError("the request body must be a JSON object")
    return body


def validate_train_request(body):
    """Return (corpus_id, spec) from a POST /v1/train body, or raise ValidationError."""
    require_object(body)
    allowed = {"corpus_id", "preset", *SECTIONS}
    for key in body:
        if key not in allowed:
            raise ValidationError(f"unknown field '{key}'", field=key)
    corpus_id = body.get("corpus_id")
    if not isinstance(corpus_id, str) or not corpus_id:
        raise ValidationError("'corpus_id' is required and must be a string", field="corpus_id")
    preset = body.get("preset", "default")
    if preset not in PRESETS:
        raise ValidationError(f"'preset' must be one of {', '.join(PRESETS)}", field="preset")
    spec = copy.deepcopy(PRESETS[preset])
    for section, fields in SECTIONS.items():
        if section in body:
            spec[section].update(_check_object(body[section], fields, prefix=f"{section}."))
    spec["preset"] = preset
    return corpus_id, spec


def validate_generate_request(body):
    """Return the full generation spec (defaults filled in) from a POST /v1/generate body."""
    require_object(body)
    checked = _check_object(body, GENERATE_FIELDS)
    if not checked.get("model_id"):
        raise ValidationError("'model_id' is required", field="model_id")
    spec = {**GENERATE_DEFAULTS, **checked}
    if spec["seed"] is None:
        # Chosen here and stored with the job, so every result can be reproduced.
        spec["seed"] = secrets.randbelow(2**31)
    return spec
