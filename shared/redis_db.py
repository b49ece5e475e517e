"""Redis access: the client factory, the key names, and JSON-valued hashes.

Every key textgen owns is built by `Keys`, so the layout is written down exactly once and
every key carries the configured prefix (tests run under their own prefix).
"""

import json

import redis

from shared.json_values import finite


def connect(settings):
    """A client for settings.redis_url; str in and out (we store JSON text only)."""
    return redis.Redis.from_url(settings.redis_url, decode_responses=True,
                                health_check_interval=30)


class Keys:
    def __init__(self, prefix):
        self.prefix = prefix

    def job(self, job_id):
        return f"{self.prefix}job:{job_id}"

    def jobs_index(self):
        """Sorted set of job ids scored by creation time in ms: newest-first listing."""
        return f"{self.prefix}jobs"

    def events(self, job_id):
        """Stream of one job's events (status changes, epoch ends, warnings)."""
        return f"{self.prefix}events:{job_id}"

    def corpus(self, corpus_id):
        return f"{self.prefix}corpus:{corpus_id}"

    def model(self, model_id):
        return f"{self.prefix}model:{model_id}"


def encode_fields(mapping):
    """Hash fields are stored as JSON text so that numbers, nulls and objects survive;
    NaN and infinities (a diverged run) are stored as null, which every client parses."""
    return {key: json.dumps(finite(value), allow_nan=False) for key, value in mapping.items()}


def decode_fields(raw):
    return {key: json.loads(value) for key, value in raw.items()}
