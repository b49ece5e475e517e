"""`textgen presets` and `textgen whoami`: what the service offers, and what you may use
of it."""

from client.cli_io import client, emit, table
from client.commands import EXIT_OK

# Each per-owner quota and the usage counted against it (GET /v1/whoami); the other
# limits bind one job or one request, and have none.
_USAGE_OF = {"max_queued_jobs": "jobs_queued", "max_running_per_owner": "jobs_running",
             "max_streams_per_owner": "streams_open",
             "max_downloads_per_owner": "downloads_open"}
_MB = 1024 * 1024  # max_storage_mb's unit; usage comes in bytes


def presets(args):
    found = client(args).presets()
    emit(args, found, table(("PRESET", "DESCRIPTION"),
                            [(p["name"], p["description"]) for p in found]))
    return EXIT_OK


def whoami(args):
    me = client(args).whoami()
    usage = me["usage"]
    rows = [(name, _number(limit), _in_use(name, usage))
            for name, limit in me["quotas"].items()]
    emit(args, me, [f"owner: {me['owner']}", *table(("QUOTA", "LIMIT", "IN USE"), rows),
                    f"models: {usage['models']}, corpora: {usage['corpora']}, "
                    f"sweeps: {usage['sweeps']} ({usage['sweeps_running']} running)"])
    return EXIT_OK


def _in_use(quota, usage):
    if quota == "max_storage_mb":
        # Room held for queued and running training jobs counts against the quota too.
        held = usage["storage_reserved_bytes"]
        return (f"{usage['storage_bytes'] / _MB:,.1f}"
                + (f" (+{held / _MB:,.1f} reserved)" if held else ""))
    return _number(usage[_USAGE_OF[quota]]) if quota in _USAGE_OF else None


def _number(value):
    return f"{value:,}" if isinstance(value, int) else f"{value:,g}"
