"""Time and ids: one place that says how timestamps and ids look."""

import re
import secrets
from datetime import datetime, UTC

_ID_HEX_CHARS = 24  # new_id's 12 random bytes (96 bits), as lowercase hex


def utc_now_iso():
    """Now, as ISO 8601 in UTC with a Z suffix and millisecond precision."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_of_ms(ms):
    """Milliseconds since the epoch (Redis' TIME, say) as utc_now_iso() writes times."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def new_id(prefix):
    """A random id such as `job_3f9c...`: 96 random bits, safe in paths and URLs."""
    return f"{prefix}_{secrets.token_hex(_ID_HEX_CHARS // 2)}"


def id_pattern(prefix):
    """The regular expression of every id new_id(prefix) makes, and of nothing else."""
    return f"^{prefix}_[0-9a-f]{{{_ID_HEX_CHARS}}}$"


def is_id(value, prefix):
    """True for an id of this kind exactly as new_id makes it: a bare hex id, another
    kind's prefix or any other spelling is no id of ours (ids are looked up by key, and
    a model's key is derived from its job's, so a loose id could reach another record)."""
    return isinstance(value, str) and re.fullmatch(id_pattern(prefix), value) is not None
