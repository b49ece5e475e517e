"""Settings: the one frozen configuration object, read from the environment.

Built only in entry points (the API factory, the Celery worker, the command line) and
passed down. Hyperparameters are not settings: they are the job spec (shared/specs.py).
"""

import os
from dataclasses import dataclass
from pathlib import Path

from shared.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    redis_url: str  # broker and job store, e.g. redis://127.0.0.1:6379/0
    data_dir: Path  # artifact store root: corpora, models, checkpoints
    redis_prefix: str = "textgen:"  # every key we own starts with it (tests use their own)
    max_upload_bytes: int = 50 * 1024 * 1024  # corpus uploads above this answer 413
    max_train_memory_mb: float = 8192  # training jobs estimated above this answer 422
    progress_interval_s: float = 2.0  # how often a running job's progress is written
    log_level: str = "INFO"

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

        def number(name, default, kind, minimum):
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = kind(raw)
            except ValueError:
                problems.append(f"{name} must be a number, got {raw!r}")
                return default
            if value < minimum:
                problems.append(f"{name} must be at least {minimum}, got {raw!r}")
            return value

        max_upload_mb = number("TEXTGEN_MAX_UPLOAD_MB", 50, float, 0.001)
        progress_interval_s = number("TEXTGEN_PROGRESS_INTERVAL_S", 2.0, float, 0.05)
        max_train_memory_mb = number("TEXTGEN_MAX_TRAIN_MEMORY_MB", 8192, float, 1)
        prefix = env.get("TEXTGEN_REDIS_PREFIX", "textgen:")
        if not prefix:
            problems.append("TEXTGEN_REDIS_PREFIX may not be empty")
        log_level = env.get("TEXTGEN_LOG_LEVEL", "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            problems.append(f"TEXTGEN_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")

        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        return cls(
            redis_url=redis_url,
            data_dir=Path(env.get("TEXTGEN_DATA_DIR", "./data")).resolve(),
            redis_prefix=prefix,
            max_upload_bytes=int(max_upload_mb * 1024 * 1024),
            max_train_memory_mb=max_train_memory_mb,
            progress_interval_s=progress_interval_s,
            log_level=log_level,
        )
