"""JSON that every client can parse: NaN and infinities (a diverged run's losses) become null."""

import json
import math

# Refuses NaN and infinities (a ValueError) instead of writing them as JavaScript does.
_STRICT = json.JSONEncoder(allow_nan=False)


def finite(obj):
    """`obj` with every non-finite float, at any depth, replaced by None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {key: finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(value) for value in obj]
    return obj


def finite_json(obj):
    """`obj` as JSON text, non-finite floats as null: `finite` walks it only when the
    encoder met one, which almost no value has (the walk was most of the cost of
    storing a job)."""
    try:
        return _STRICT.encode(obj)
    except ValueError:
        return _STRICT.encode(finite(obj))
