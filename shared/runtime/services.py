"""Wiring: the stores an entry point needs, built once from Settings."""

from dataclasses import dataclass

from shared.stores.artifacts import ArtifactStore, open_artifact_store
from shared.stores.auth import TokenStore
from shared.stores.corpus_store import CorpusStore
from shared.stores.jobs import JobStore
from shared.runtime.metrics import Metrics
from shared.runtime.queue import make_celery
from shared.stores.records import RecordStore, model_records
from shared.runtime.redis_db import Keys, connect
from shared.stores.scheduler import Scheduler
from shared.runtime.settings import Settings
from shared.stores.storage_quota import StorageQuota
from shared.sweeps.store import SweepStore
from shared.sizing.throughput import Throughput
from shared.webhooks.outbox import Webhooks


@dataclass
class Services:
    settings: Settings
    redis: object  # redis.Redis
    keys: Keys
    jobs: JobStore
    corpora: CorpusStore
    models: RecordStore
    artifacts: ArtifactStore
    tokens: TokenStore
    metrics: Metrics
    webhooks: Webhooks
    throughput: Throughput
    celery: object  # celery.Celery
    storage: StorageQuota
    sweeps: SweepStore

    @classmethod
    def from_settings(cls, settings, celery=None):
        client = connect(settings)
        keys = Keys(settings.redis_prefix)
        scheduler = Scheduler(client, keys, settings.max_running_per_owner)
        jobs = JobStore(client, keys, scheduler)
        artifacts = open_artifact_store(settings)
        storage = StorageQuota(client, keys, int(settings.max_storage_mb * 1024 * 1024))
        return cls(
            settings=settings,
            redis=client,
            keys=keys,
            jobs=jobs,
            corpora=CorpusStore(client, keys, artifacts, storage),
            models=model_records(client, keys),
            artifacts=artifacts,
            tokens=TokenStore(client, keys, settings.api_tokens),
            metrics=Metrics(client, keys, scheduler),
            webhooks=Webhooks(client, keys, settings.webhook_retry_s),
            throughput=Throughput(client, keys),
            celery=celery or make_celery(settings),
            storage=storage,
            sweeps=SweepStore(client, keys),
        )
