"""Metrics for operators: recorded in Redis by any process, exposed by the API at /metrics.

Jobs end in worker processes on any host, and the API that Prometheus scrapes is another
process: prometheus-client's in-process registry (or its multiprocess mode, one host's
files) cannot add them up. So each event increments counters and histogram buckets in one
Redis hash (HINCRBY, atomic), and the API's collector turns the hash into metric families
at scrape time, with the gauges read then (jobs waiting and active, live workers).
"""

import json
import time

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from shared.stores.jobs import JobStatus
from shared.runtime.queue import QUEUE_GENERATE, QUEUES

# Bucket bounds in seconds: a generation job takes ~0.1-60 s, a training job minutes to
# days; an epoch from under a second (tiny) to an hour (a big corpus on a CPU).
JOB_BUCKETS_S = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)
EPOCH_BUCKETS_S = (0.5, 1, 5, 15, 60, 300, 900, 3600)
# A worker reports at start and then each reaper pass (TEXTGEN_REAP_INTERVAL_S, 5 s): one
# silent for six passes counts as gone (a clean shutdown takes it out at once).
WORKER_SEEN_S = 30


class Metrics:
    def __init__(self, redis_client, keys, scheduler):
        self.redis = redis_client
        self.keys = keys
        self.scheduler = scheduler  # shared/stores/scheduler.py: what waits, what holds a slot

    # --- recording (workers) ----------------------------------------------------------

    def job_ended(self, job_type, status, seconds=None):
        """A job ended as `status`; `seconds` from its last attempt's start (None when it
        did not end in a run: cancelled while queued, failed by the reaper)."""
        pipe = self.redis.pipeline()
        pipe.hincrby(self.keys.metrics(), f"jobs_ended|{job_type}|{status}", 1)
        if seconds is not None:
            self._observe(pipe, "job_seconds", job_type, JOB_BUCKETS_S, seconds)
        pipe.execute()

    def epoch_ended(self, seconds, targets):
        pipe = self.redis.pipeline()
        self._observe(pipe, "epoch_seconds", "train", EPOCH_BUCKETS_S, seconds)
        pipe.hincrbyfloat(self.keys.metrics(), "trained_targets", targets)
        pipe.hincrbyfloat(self.keys.metrics(), "training_seconds", seconds)
        pipe.execute()

    def reaped(self, outcome):
        """outcome: 'requeued' (a lost run retried), 'exhausted', 'resent' (lost message)."""
        self.redis.hincrby(self.keys.metrics(), f"reaped|{outcome}", 1)

    def worker_alive(self, name, queues):
        """The worker's heartbeat; it also drops workers gone for long (crashed ones)."""
        now = time.time()
        pipe = self.redis.pipeline()
        pipe.zadd(self.keys.workers_seen(), {_worker_member(name, queues): now})
        # Long gone: a crashed worker's entry, which nothing else would ever remove.
        pipe.zremrangebyscore(self.keys.workers_seen(), "-inf", now - 10 * WORKER_SEEN_S)
        pipe.execute()

    def worker_gone(self, name, queues):
        self.redis.zrem(self.keys.workers_seen(), _worker_member(name, queues))

    def workers_seen(self):
        """[(name, queues, age in s)] of the workers that reported within WORKER_SEEN_S,
        freshest first: one read, so that health can answer from it on every call."""
        now = time.time()
        beats = self.redis.zrevrangebyscore(self.keys.workers_seen(), "+inf",
                                            now - WORKER_SEEN_S, withscores=True)
        return [(*json.loads(member), max(0.0, now - seen)) for member, seen in beats]

    def _observe(self, pipe, name, label, bounds, value):
        for bound in bounds:
            if value <= bound:
                pipe.hincrby(self.keys.metrics(), f"{name}|{label}|{bound}", 1)
        pipe.hincrby(self.keys.metrics(), f"{name}|{label}|+Inf", 1)
        pipe.hincrbyfloat(self.keys.metrics(), f"{name}|{label}|sum", value)

    # --- exposing (the API) -----------------------------------------------------------

    def collect(self):
        """The metric families, for a prometheus_client collector."""
        stored = self.redis.hgetall(self.keys.metrics())
        waiting = {queue: sum(self.scheduler.waiting_counts(queue).values())
                   for queue in QUEUES}
        yield self._active_jobs(waiting)
        ended = CounterMetricFamily("textgen_jobs_ended", "Jobs that ended, by type and status",
                                    labels=["type", "status"])
        reaped = CounterMetricFamily("textgen_jobs_reaped",
                                     "Lost jobs found by the reaper: requeued (retried), "
                                     "exhausted (failed) or resent (message lost)",
                                     labels=["outcome"])
        for key, value in sorted(stored.items()):
            kind, *labels = key.split("|")
            if kind == "jobs_ended":
                ended.add_metric(labels, float(value))
            elif kind == "reaped":
                reaped.add_metric(labels, float(value))
        yield ended
        yield reaped
        yield self._histogram(stored, "job_seconds", "textgen_job_duration_seconds",
                              "Time from start to end of a job's last attempt", "type",
                              JOB_BUCKETS_S)
        yield self._histogram(stored, "epoch_seconds", "textgen_epoch_duration_seconds",
                              "Time of one training epoch", "type", EPOCH_BUCKETS_S)
        yield CounterMetricFamily(
            "textgen_trained_targets", "Target tokens trained on (rate: training throughput)",
            value=float(stored.get("trained_targets", 0)))
        yield CounterMetricFamily(
            "textgen_training_seconds", "Seconds spent in training epochs",
            value=float(stored.get("training_seconds", 0)))
        depth = GaugeMetricFamily("textgen_queue_depth", "Jobs waiting for a worker of a "
                                  "queue: their turn, or on the broker", labels=["queue"])
        for queue in QUEUES:
            depth.add_metric([queue], waiting[queue] + self.redis.llen(self.keys.prefix + queue))
        yield depth
        yield self._workers()

    def _active_jobs(self, waiting):
        """Queued and running jobs by type, from the scheduler: the jobs holding a slot
        are read (a few per worker); those waiting for one are counted, not read."""
        gauge = GaugeMetricFamily("textgen_jobs_active", "Queued and running jobs",
                                  labels=["type", "status"])
        counts = {(t, s.value): 0 for t in ("train", "generate")
                  for s in (JobStatus.QUEUED, JobStatus.RUNNING)}
        for queue in QUEUES:
            job_type = "generate" if queue == QUEUE_GENERATE else "train"
            counts[(job_type, JobStatus.QUEUED.value)] += waiting[queue]
            released = list(self.scheduler.released(queue))
            pipe = self.redis.pipeline()
            for job_id in released:
                pipe.hget(self.keys.job(job_id), "status")
            for status in pipe.execute():
                key = (job_type, json.loads(status) if status else None)
                if key in counts:
                    counts[key] += 1
        for (job_type, status), count in counts.items():
            gauge.add_metric([job_type, status], count)
        return gauge

    def _workers(self):
        gauge = GaugeMetricFamily("textgen_workers_alive",
                                  f"Workers seen in the last {WORKER_SEEN_S} s, by queue",
                                  labels=["queue"])
        counts = dict.fromkeys(QUEUES, 0)
        for _, queues, _ in self.workers_seen():
            for queue in queues:
                counts[queue] = counts.get(queue, 0) + 1
        for queue, count in counts.items():
            gauge.add_metric([queue], count)
        return gauge

    @staticmethod
    def _histogram(stored, name, metric, doc, label_name, bounds):
        family = HistogramMetricFamily(metric, doc, labels=[label_name])
        labels = sorted({key.split("|")[1] for key in stored if key.startswith(name + "|")})
        for label in labels:
            buckets = [(str(float(b)), float(stored.get(f"{name}|{label}|{b}", 0)))
                       for b in bounds]
            buckets.append(("+Inf", float(stored.get(f"{name}|{label}|+Inf", 0))))
            family.add_metric([label], buckets,
                              sum_value=float(stored.get(f"{name}|{label}|sum", 0)))
        return family


def _worker_member(name, queues):
    return json.dumps([name, sorted(queues)])
