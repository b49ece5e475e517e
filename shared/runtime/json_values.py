"""JSON that every client can parse: NaN and infinities (a diverged run's losses) become null."""

import math


def finite(obj):
    """`obj` with every non-finite float, at any depth, replaced by None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {key: finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(value) for value in obj]
    return obj
