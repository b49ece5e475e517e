"""Settings: the one frozen configuration object, read from the environment.

Built only in entry points (the API factory, the Celery worker, the command line) and
passed down. Hyperparameters are not settings: they are the job spec (shared/contracts/specs.py).
"""

import hashlib
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from shared.contracts.errors import ConfigError

# An owner's name: it appears in paths of Redis keys and in logs, so a short safe alphabet.
OWNER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# "package.module:Name", as pkgutil.resolve_name reads it.
IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
GUTENBERG_URL = "https://www.gutenberg.org/cache/epub/{n}/pg{n}.txt"


def redacted(url):
    """`url` without its password, for logs and the terminal."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def parse_api_tokens(raw, problems):
    """TEXTGEN_API_TOKENS ("name:token,name:token") -> ((name, sha256 of token), ...).

    Only digests are kept, so Settings (and anything that prints it) holds no secret.
    """
    from shared.stores.auth import token_digest  # auth imports settings' OWNER_NAME

    pairs = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, token = item.partition(":")
        if not sep or not OWNER_NAME.match(name) or len(token) < 16:
            problems.append("TEXTGEN_API_TOKENS must be comma-separated name:token pairs, "
                            "names of letters, digits, '_', '.', '-', tokens of 16 or more "
                            f"characters (entry {len(pairs) + 1} is not)")
            continue
        pairs.append((name, token_digest(token)))
    return tuple(pairs)


MIB = 1024 * 1024


def number(env, default, kind=float, minimum=None, unit=1):
    """A numeric setting, declared once: Settings.from_env reads the variable `env` as
    `kind`, at least `minimum`, `default` when unset (None: none). With a `unit`, the
    variable counts units and the field whole bytes: TEXTGEN_MAX_UPLOAD_MB=0.5 is
    max_upload_bytes=524288."""
    return field(default=in_field(default, unit),
                 metadata={"env": env, "default": default, "kind": kind,
                           "minimum": minimum, "unit": unit})


def in_field(value, unit):
    """A variable's value as its field holds it."""
    if value is None or unit == 1:
        return value
    return int(value * unit)


def numeric_settings():
    """(field name, its metadata) of every numeric setting, in declaration order."""
    return [(f.name, f.metadata) for f in fields(Settings) if "env" in f.metadata]


@dataclass(frozen=True)
class Settings:
    redis_url: str  # broker and job store, e.g. redis://127.0.0.1:6379/0
    data_dir: Path  # local state: the default artifact store and scratch cache, logs
    redis_prefix: str = "textgen:"  # every key we own starts with it (tests use their own)
    # Corpus uploads above this answer 413.
    max_upload_bytes: int = number("TEXTGEN_MAX_UPLOAD_MB", 50, minimum=0.001, unit=MIB)
    # Training jobs estimated above this answer 422.
    max_train_memory_mb: float = number("TEXTGEN_MAX_TRAIN_MEMORY_MB", 8192, minimum=1)
    # How often a running job's progress is written: the pace of its `progress` events
    # (worker/runs.py PROGRESS_EVENT_S), so the record and the stream move together.
    progress_interval_s: float = number("TEXTGEN_PROGRESS_INTERVAL_S", 0.5, minimum=0.05)
    log_level: str = "INFO"
    api_tokens: tuple = ()  # ((owner, sha256 hex of the token), ...) from TEXTGEN_API_TOKENS
    # Runs of a job whose worker keeps dying, before it fails.
    max_attempts: int = number("TEXTGEN_MAX_ATTEMPTS", 3, int, 1)
    # A running job's lease: renewed every lease_s / 6 by its worker's heartbeat, so a few
    # missed beats (a long GC pause, a slow Redis) do not lose it; a dead worker's job is
    # handed on within lease_s + reap_interval_s.
    lease_s: float = number("TEXTGEN_LEASE_S", 30.0, minimum=1.0)
    # The nice value training workers run at (0 to 19; 0: as started). Training is batch
    # work: on a host it shares with the API and Redis, it takes the CPU those leave idle,
    # so submissions and reads answer first (worker/cpu_priority.py).
    worker_nice: int = number("TEXTGEN_WORKER_NICE", 10, int, 0)
    # The same for workers of the generate queue. Generations and evaluations are
    # interactive (a user watches the text come): niced, they waited for the CPU whenever
    # one owner's flood kept the API busy, and another owner's job took up to a minute to
    # start (bench.abuse, bench/README.md).
    generate_worker_nice: int = number("TEXTGEN_GENERATE_WORKER_NICE", 0, int, 0)
    # How often each worker looks for expired leases.
    reap_interval_s: float = number("TEXTGEN_REAP_INTERVAL_S", 5.0, minimum=0.1)
    # A released job that no worker started this long after its message was sent is sent
    # again (the send failed, a Redis error lost it, its worker died before starting it);
    # later re-sends wait longer (worker/reaper.py).
    lost_message_s: float = number("TEXTGEN_LOST_MESSAGE_S", 60.0, minimum=1.0)
    # A generation job's hard time limit.
    generation_max_s: float = number("TEXTGEN_GENERATION_MAX_S", 300.0, minimum=1.0)
    gutenberg_url: str = GUTENBERG_URL  # where POST /v1/corpora {"gutenberg_id"} fetches
    # An event stream ends after this; the client reconnects.
    sse_max_s: float = number("TEXTGEN_SSE_MAX_S", 600.0, minimum=1.0)
    # SHA-256 of TEXTGEN_METRICS_TOKEN, the bearer token /metrics answers (None: 404).
    metrics_token_digest: str | None = None
    # Finished jobs, their events and checkpoints are swept.
    retention_days: float = number("TEXTGEN_RETENTION_DAYS", 30.0, minimum=0.01)
    log_format: str = "text"  # "json": one JSON object per line, with job id, owner, attempt
    # Hosts (host or host:port) webhooks may reach over plain http; any other is https only.
    webhook_allow_hosts: tuple = ()
    # The first retry of a failed webhook; then doubling.
    webhook_retry_s: float = number("TEXTGEN_WEBHOOK_RETRY_S", 5.0, minimum=0.01)
    # Where corpora, models and checkpoints live (shared/stores/artifacts.py): file:///abs/path or
    # s3://bucket/prefix. None: file://<data_dir>, for one machine.
    artifacts_url: str | None = None
    # An S3-compatible server (MinIO) instead of AWS, from AWS_ENDPOINT_URL; credentials
    # and region are botocore's to find (AWS_ACCESS_KEY_ID, ... ): never kept here.
    s3_endpoint_url: str | None = None
    cache_dir: Path | None = None  # workers' scratch cache; None: <data_dir>/cache
    # The cache evicts least recently used above it.
    cache_max_bytes: int = number("TEXTGEN_CACHE_MB", 2048, minimum=1, unit=MIB)
    # Stuck steps and extra callbacks (issue 15, worker/stall.py). No training step ended for
    # stall_s: the worker gives the job up and exits. None: 10 x the slowest step so far,
    # at least 5 minutes.
    stall_s: float | None = number("TEXTGEN_STALL_S", None, minimum=0.5)
    # Keras callbacks added to every training run, as "module:Class" import paths, each
    # built without arguments: a profiler, or the stall test's stuck step.
    train_callbacks: tuple = ()
    # --- sizes of what is stored (issue 15: nothing big goes through memory) ---
    # The S3 endpoint as clients reach it, written into presigned download URLs, when it
    # is not AWS_ENDPOINT_URL (Compose: http://minio:9000 inside, 127.0.0.1:9000 outside).
    s3_public_url: str | None = None
    # A training job whose model (parameters x 4 bytes) is above this answers 422.
    max_model_mb: float = number("TEXTGEN_MAX_MODEL_MB", 512, minimum=0.001)
    # What one owner may keep: corpora, models and checkpoints; past it uploads and
    # training jobs answer 507. 10 GiB: a few hundred default models and their corpora.
    max_storage_mb: float = number("TEXTGEN_MAX_STORAGE_MB", 10240, minimum=0.001)
    # A generation job's samples, stored as one JSON artifact; a larger result fails.
    max_result_mb: float = number("TEXTGEN_MAX_RESULT_MB", 16, minimum=0.001)
    # --- held connections (issue 15: long connections don't starve short ones) ---
    # Event streams and Prefer: wait requests one owner may hold open at once; one more
    # stream answers 429, one more wait answers at once (docs/serving.md).
    max_streams_per_owner: int = number("TEXTGEN_MAX_STREAMS_PER_OWNER", 100, int, 1)
    # Downloads of model files and zips one owner may have going at once; one more answers
    # 429. On loopback a download runs as fast as the CPU lets it (a file ~0.2, a zip ~0.6
    # CPU-seconds a GB: docs/serving.md), so this bounds one owner's share of the API's CPU.
    max_downloads_per_owner: int = number("TEXTGEN_MAX_DOWNLOADS_PER_OWNER", 2, int, 1)
    # Each of those goes out no faster than this (the kernel paces its connection): a
    # gigabit link's worth, so that only a faster link or loopback lets a download take
    # more of the API's CPU than that (0.2-0.6 CPU-seconds a GB, as above).
    download_bytes_per_s: int = number("TEXTGEN_DOWNLOAD_MB_S", 100, minimum=0.001, unit=MIB)
    # Capacity and fair turns (docs/capacity.md). An owner may hold this many jobs waiting
    # for a worker; one more answers 429. High: a batch service takes a backlog.
    max_queued_jobs: int = number("TEXTGEN_MAX_QUEUED_JOBS", 1000, int, 1)
    # Jobs of one owner released to the workers of one queue at once; the rest wait their
    # turn. 8: never binds on a small deployment (a worker or two per queue), and on a
    # large one leaves workers for the others.
    max_running_per_owner: int = number("TEXTGEN_MAX_RUNNING_PER_OWNER", 8, int, 1)
    # The longest training budget (training.max_seconds) a job may have; a job that sets
    # none gets this one. 6 h: a long run on a CPU, and no job holds a worker for days.
    max_train_seconds: float = number("TEXTGEN_MAX_TRAIN_SECONDS", 6 * 3600.0, minimum=1.0)

    @classmethod
    def from_env(cls, environ=None):
        """Read REDIS_URL and TEXTGEN_* variables; raise one ConfigError listing every problem."""
        env = os.environ if environ is None else environ
        problems = []

        redis_url = env.get("REDIS_URL", "")
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            problems.append(
                "REDIS_URL must be set to a redis:// URL (the local stack, `make up`, "
                "starts an embedded Redis and sets it for you)"
            )
        problem = redis_tls_problem(redis_url)
        if problem:
            problems.append(problem)

        numbers = {name: read_number(env, meta, problems) for name, meta in numeric_settings()}
        prefix = env.get("TEXTGEN_REDIS_PREFIX", "textgen:")
        if not prefix:
            problems.append("TEXTGEN_REDIS_PREFIX may not be empty")
        api_tokens = parse_api_tokens(env.get("TEXTGEN_API_TOKENS", ""), problems)
        metrics_token = env.get("TEXTGEN_METRICS_TOKEN") or None
        if metrics_token is not None and len(metrics_token) < 16:
            problems.append("TEXTGEN_METRICS_TOKEN must be 16 or more characters")
        webhook_allow_hosts = tuple(h.strip() for h in
                                    env.get("TEXTGEN_WEBHOOK_ALLOW_HOSTS", "").split(",")
                                    if h.strip())
        train_callbacks = tuple(name.strip() for name in
                                env.get("TEXTGEN_TRAIN_CALLBACKS", "").split(",")
                                if name.strip())
        for name in train_callbacks:
            if not IMPORT_PATH.match(name):
                problems.append("TEXTGEN_TRAIN_CALLBACKS must be comma-separated "
                                f"module:Class import paths, got {name!r}")
        log_format = env.get("TEXTGEN_LOG_FORMAT", "text").lower()
        if log_format not in ("text", "json"):
            problems.append(f"TEXTGEN_LOG_FORMAT must be text or json, got {log_format!r}")
        gutenberg_url = env.get("TEXTGEN_GUTENBERG_URL", GUTENBERG_URL)
        if not gutenberg_url.startswith(("https://", "http://")) or "{n}" not in gutenberg_url:
            problems.append("TEXTGEN_GUTENBERG_URL must be an http(s) URL with {n} for the "
                            "book number")
        log_level = env.get("TEXTGEN_LOG_LEVEL", "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            problems.append("TEXTGEN_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, "
                            f"got {log_level!r}")

        data_dir = Path(env.get("TEXTGEN_DATA_DIR", "./data")).resolve()
        artifacts_url = env.get("TEXTGEN_ARTIFACTS_URL") or data_dir.as_uri()
        problem = artifacts_url_problem(artifacts_url)
        if problem:
            problems.append(f"TEXTGEN_ARTIFACTS_URL {problem}, got {artifacts_url!r}")
        s3_endpoint_url = env.get("AWS_ENDPOINT_URL") or None
        if s3_endpoint_url and not s3_endpoint_url.startswith(("http://", "https://")):
            problems.append(f"AWS_ENDPOINT_URL must be an http:// or https:// URL, "
                            f"got {s3_endpoint_url!r}")

        s3_public_url = env.get("TEXTGEN_S3_PUBLIC_URL") or None
        if s3_public_url and not s3_public_url.startswith(("http://", "https://")):
            problems.append(f"TEXTGEN_S3_PUBLIC_URL must be an http:// or https:// URL, "
                            f"got {s3_public_url!r}")
        from shared.contracts.specs import WEEK_S  # the budget a spec may hold at most

        if numbers["max_train_seconds"] > WEEK_S:
            problems.append(f"TEXTGEN_MAX_TRAIN_SECONDS may be at most {WEEK_S} (a week: "
                            f"the broker's redelivery horizon), got "
                            f"{numbers['max_train_seconds']:g}")

        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        return cls(
            **numbers,
            redis_url=redis_url,
            data_dir=data_dir,
            redis_prefix=prefix,
            log_level=log_level,
            api_tokens=api_tokens,
            gutenberg_url=gutenberg_url,
            metrics_token_digest=(None if metrics_token is None
                                  else hashlib.sha256(metrics_token.encode()).hexdigest()),
            log_format=log_format,
            webhook_allow_hosts=webhook_allow_hosts,
            artifacts_url=artifacts_url,
            s3_endpoint_url=s3_endpoint_url,
            cache_dir=Path(env.get("TEXTGEN_CACHE_DIR") or data_dir / "cache").resolve(),
            train_callbacks=train_callbacks,
            s3_public_url=s3_public_url,
        )


def read_number(env, meta, problems):
    """A numeric setting's variable as its field holds it; its default when unset, and
    when wrong (with the problem added to `problems`)."""
    name, raw = meta["env"], env.get(meta["env"])
    if raw is None or raw == "":
        return in_field(meta["default"], meta["unit"])
    try:
        value = meta["kind"](raw)
    except ValueError:
        kind = "a whole number" if meta["kind"] is int else "a number"
        problems.append(f"{name} must be {kind}, got {raw!r}")
        return in_field(meta["default"], meta["unit"])
    if meta["minimum"] is not None and value < meta["minimum"]:
        problems.append(f"{name} must be at least {meta['minimum']}, got {raw!r}")
    return in_field(value, meta["unit"])


def redis_tls_problem(redis_url):
    """What is wrong with a rediss:// URL's TLS options, or None."""
    from shared.runtime.redis_db import cert_reqs_name  # redis_db imports redis: only when asked

    parts = urlsplit(redis_url)
    if parts.scheme != "rediss":
        return None
    try:
        cert_reqs_name(dict(parse_qsl(parts.query)))
    except KeyError as e:
        return (f"REDIS_URL's ssl_cert_reqs must be none, optional or required, got "
                f"{e.args[0]!r}")
    return None


# S3's bucket naming rules, in short: 3-63 lowercase letters, digits, dots and hyphens.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def artifacts_url_problem(url):
    """What is wrong with an artifact store URL, or None when it is usable."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            return "must be file:///absolute/path"
    elif parts.scheme == "s3":
        if not _BUCKET.match(parts.netloc):
            return "must be s3://bucket/prefix with a valid bucket name"
        if ".." in parts.path.split("/"):
            return "may not contain '..'"
    else:
        return "must start with file:// or s3://"
    if parts.query or parts.fragment:
        return "may not have a query or fragment"
    return None
