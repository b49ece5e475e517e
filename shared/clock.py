"""Time and ids: one place that says how timestamps and ids look."""

import secrets
from datetime import datetime, timezone


def utc_now_iso():
    """Now, as ISO 8601 in UTC with a Z suffix and millisecond precision."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_of_ms(ms):
    """Milliseconds since the epoch (Redis' TIME, say) as utc_now_iso() writes times."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def new_id(prefix):
    """A random id such as `job_3f9c...`: 96 random bits, safe in paths and URLs."""
    return f"{prefix}_{secrets.token_hex(12)}"
