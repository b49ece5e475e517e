"""Redis access: the client factory, the key names, and JSON-valued hashes.

Every key textgen owns is built by `Keys`, so the layout is written down exactly once and
every key carries the configured prefix (tests run under their own prefix).

Keys that one script touches together share a hash tag (the part in braces), so those
scripts could run on a Redis that shards by slot: a job's record, its event stream and its
model are tagged with the job id; an owner's indexes with the owner. The scheduler's
scripts (shared/stores/scheduler.py) reach across owners and jobs, so textgen needs one Redis
node, as Celery's Redis transport does anyway.
A model id is its job's id with another prefix (`mdl_<hex>` for `job_<hex>`) for that
reason: the fenced step that marks a job succeeded also writes its model record.
"""

import json
import ssl
from urllib.parse import parse_qsl, urlsplit

import redis

from shared.runtime.json_values import finite_json

# A request must answer 503 within 3 s when Redis is down or unreachable: a second to
# connect, two for a command. Blocking reads (event streams) block for less than that.
CONNECT_TIMEOUT_S = 1.0
COMMAND_TIMEOUT_S = 2.0


# rediss:// URLs: the certificate check as the URL's ssl_cert_reqs says (redis-py's names).
CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
             "required": ssl.CERT_REQUIRED}
_TLS_FILES = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")


def tls_options(redis_url):
    """A rediss:// URL's TLS options as Celery's broker_use_ssl takes them (None for
    redis://): what redis-py reads from the URL's query, with the server's certificate
    checked unless it says ssl_cert_reqs=none. kombu, given only the URL, connects over
    TLS without checking the certificate at all."""
    parts = urlsplit(redis_url)
    if parts.scheme != "rediss":
        return None
    query = dict(parse_qsl(parts.query))
    options = {"ssl_cert_reqs": CERT_REQS[cert_reqs_name(query)]}
    options.update((key, query[key]) for key in _TLS_FILES if key in query)
    return options


def cert_reqs_name(query):
    """ssl_cert_reqs of a URL's query as a key of CERT_REQS ("CERT_NONE" and "none" alike;
    "required" when absent); KeyError names what is not one."""
    name = query.get("ssl_cert_reqs", "required").lower().removeprefix("cert_")
    if name not in CERT_REQS:
        raise KeyError(name)
    return name


# Connections one process opens at most. In the API (3 x 1,000 threads, docs/serving.md)
# every request in a Redis round trip holds one, so a burst of a few hundred requests
# would open as many, up to redis-py's own limit of 100, past which it fails (503s). With
# a cap, a request that finds every connection busy waits for one, up to the command
# timeout; 32 round trips at once are far more than one process' CPU can feed.
MAX_CONNECTIONS = 32


def connect(settings):
    """A client for settings.redis_url; str in and out (we store JSON text only)."""
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=MAX_CONNECTIONS, timeout=COMMAND_TIMEOUT_S,
        decode_responses=True, health_check_interval=30,
        socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=COMMAND_TIMEOUT_S)
    return redis.Redis(connection_pool=pool)


def model_id_of(job_id):
    """The id of the model a training job registers: at most one per job, any attempt."""
    return "mdl_" + job_id.removeprefix("job_")


def job_id_of(model_id):
    return "job_" + model_id.removeprefix("mdl_")


class Keys:
    def __init__(self, prefix):
        self.prefix = prefix

    def job(self, job_id):
        return f"{self.prefix}{{{job_id}}}:job"

    def events(self, job_id):
        """Stream of one job's events (status changes, epoch ends, warnings)."""
        return f"{self.prefix}{{{job_id}}}:events"

    def model(self, model_id):
        return f"{self.prefix}{{{job_id_of(model_id)}}}:model"

    def corpus(self, corpus_id):
        return f"{self.prefix}{{{corpus_id}}}:corpus"

    def sweep(self, sweep_id):
        """Hash of one sweep and its trials (shared/sweeps/store.py)."""
        return f"{self.prefix}{{{sweep_id}}}:sweep"

    def sweep_events(self, sweep_id):
        """Stream of one sweep's events (a trial started, pruned, ended; the sweep ended)."""
        return f"{self.prefix}{{{sweep_id}}}:events"

    def sweep_study(self, sweep_id):
        """Prefix of the keys of the sweep's Optuna journal (shared/sweeps/study.py)."""
        return f"{self.prefix}{{{sweep_id}}}:study"

    def sweep_advance_lock(self, sweep_id):
        """Held while one process advances the sweep (shared/sweeps/runner.py)."""
        return f"{self.prefix}{{{sweep_id}}}:advance-lock"

    def sweeps_running(self):
        """Set of the ids of sweeps still running: the reaper advances each."""
        return f"{self.prefix}sweeps-running"

    def owner_index(self, owner, kind):
        """Sorted set of an owner's `kind` ("jobs", "corpora", "models", "sweeps") ids,
        scored by creation time in ms: newest-first listing, one owner's records only."""
        return f"{self.prefix}owner:{{{owner}}}:{kind}"

    def owner_active(self, owner):
        """Set of the owner's queued and running job ids: the quota counts it."""
        return f"{self.prefix}owner:{{{owner}}}:active"

    def tokens(self):
        """Hash: SHA-256 of an API token (hex) -> its owner's name. Tokens themselves are
        never stored."""
        return f"{self.prefix}tokens"

    def corpus_refs(self, sha256):
        """Set of corpus ids whose text is the file of this hash: the file goes with the last."""
        return f"{self.prefix}corpus-refs:{sha256}"

    def corpus_lock(self, sha256):
        """Lock held while the text of this hash is written or deleted (shared/corpus_store)."""
        return f"{self.prefix}corpus-lock:{sha256}"

    def metrics(self):
        """Hash of counters and histogram buckets (shared/runtime/metrics.py)."""
        return f"{self.prefix}metrics"

    def throughput(self, queue):
        """List of the training throughput figures measured on `queue`, newest first
        (shared/sizing/throughput.py)."""
        return f"{self.prefix}throughput:{queue}"

    def workers_seen(self):
        """Sorted set of [worker name, its queues] scored by when it last reported."""
        return f"{self.prefix}workers"

    def gpu_workers(self):
        """Set of the names of workers that ever consumed the GPU training queue."""
        return f"{self.prefix}gpu-workers"

    def owners(self):
        """Set of every owner that ever submitted a job: the retention sweep's list."""
        return f"{self.prefix}owners"

    def sweep_lock(self):
        return f"{self.prefix}sweep-lock"

    def webhook_secrets(self):
        """Hash: owner -> the secret their webhooks are signed with."""
        return f"{self.prefix}webhook-secrets"

    def webhook_secret_previous(self, owner):
        """String: the owner's secret before the last rotation, expiring when the grace
        period of that rotation ends; webhooks are signed with both until then."""
        return f"{self.prefix}owner:{{{owner}}}:webhook-secret-previous"

    # The webhook queue's keys share one hash tag: its scripts touch an owner's due set and
    # the set of owners together (shared/webhooks/outbox.py).

    def webhook(self, delivery_id):
        """Hash of one queued webhook delivery (shared/webhooks/outbox.py)."""
        return f"{self.prefix}{{webhooks}}:delivery:{delivery_id}"

    def webhooks_due(self, owner):
        """Sorted set of an owner's delivery ids scored by when each is due (or claimed
        until)."""
        return f"{self.prefix}{{webhooks}}:due:{owner}"

    def webhook_owners(self):
        """Sorted set of owners with deliveries, scored by their earliest one's score."""
        return f"{self.prefix}{{webhooks}}:owners"

    def token_grace(self, digest):
        """String: the owner of a rotated-out token (by SHA-256), expiring when its grace
        period ends (shared/stores/auth.py)."""
        return f"{self.prefix}token-grace:{digest}"

    def storage_items(self, owner):
        """Hash: what the owner stores ("corpus:<id>", "model:<id>", "checkpoints:<job
        id>") -> its bytes (shared/stores/storage_quota.py)."""
        return f"{self.prefix}owner:{{{owner}}}:storage-items"

    def storage_used(self, owner):
        """The sum of storage_items, kept beside it in the same atomic steps."""
        return f"{self.prefix}owner:{{{owner}}}:storage-used"

    def storage_reserved(self, owner):
        """Hash: training job id (or "pending:<token>" while it is being created) -> the
        bytes it may still store."""
        return f"{self.prefix}owner:{{{owner}}}:storage-reserved"

    def idempotency(self, owner, key_digest):
        return f"{self.prefix}owner:{{{owner}}}:idempotency:{key_digest}"

    def stream_slots(self, owner):
        """Sorted set of the owner's held connections (event streams, waits), scored by
        when each expires unless renewed (shared/stores/owner_slots.py)."""
        return f"{self.prefix}owner:{{{owner}}}:stream-slots"

    def download_slots(self, owner):
        """Sorted set of the owner's downloads under way, as stream_slots are held
        (api/download_slots.py)."""
        return f"{self.prefix}owner:{{{owner}}}:download-slots"

    def event_hub_wake(self, process_id):
        """Stream an API process's event reader also waits on, to be woken (api/event_hub.py)."""
        return f"{self.prefix}event-hub:{process_id}"

    # --- fair turns (shared/stores/scheduler.py) ---

    def sched(self, queue, part):
        """One of the scheduler's keys of `queue`: owners, released, running, served,
        workers, slots (shared/stores/scheduler.py says what each holds)."""
        return f"{self.prefix}sched:{queue}:{part}"

    def waiting(self, queue, owner):
        """Sorted set of the owner's jobs waiting for a worker of `queue`, by turn."""
        return f"{self.prefix}sched:{queue}:waiting:{owner}"

    def sched_seq(self):
        """The turn counter: one number per job queued and per release."""
        return f"{self.prefix}sched:seq"


def encode_fields(mapping):
    """Hash fields are stored as JSON text so that numbers, nulls and objects survive;
    NaN and infinities (a diverged run) are stored as null, which every client parses."""
    return {key: finite_json(value) for key, value in mapping.items()}


def decode_fields(raw):
    return {key: json.loads(value) for key, value in raw.items()}
