"""What a training or generation job does, between its record and its result.

Each run takes the job record and the attempt it holds, does the work through the ML
pipeline, stores the artifacts, and returns (result, metrics) for tasks.py to record, or
None when the job stopped being this attempt's (cancelled meanwhile): then nothing is
registered.
"""

import logging
import time

from shared.clock import new_id, utc_now_iso
from worker.model_files import load_model, save_model
from worker.sampling import generate
from worker.training import TrainHooks, train

log = logging.getLogger(__name__)

EPOCH_SAMPLE_LENGTH = 200  # tokens of text in each epoch_end event: enough to read


class ProgressReporter:
    """Writes a running job's progress to its record; notices when the job is not ours."""

    def __init__(self, jobs, job_id, attempt):
        self.jobs = jobs
        self.job_id = job_id
        self.attempt = attempt
        self.lost = False  # set once the record refuses our writes (cancelled, reassigned)

    def on_progress(self, progress, metrics):
        if not self.jobs.report_progress(self.job_id, self.attempt, progress, metrics):
            self.lost = True

    def on_epoch_end(self, epoch, metrics, sample):
        log.info("job %s: epoch %d loss=%s val_loss=%s", self.job_id, epoch,
                 _fmt(metrics.get("loss")), _fmt(metrics.get("val_loss")))
        if not self.jobs.add_event(self.job_id, self.attempt, "epoch_end",
                                   {"epoch": epoch, **metrics, "sample": sample}):
            self.lost = True

    def should_stop(self):
        return self.lost


def _fmt(value):
    return "n/a" if value is None else f"{value:.4f}"


def run_training(svc, job, attempt):
    job_id = job["id"]
    corpus = svc.corpora.get(job["corpus_id"])
    text = svc.artifacts.read_corpus(corpus["sha256"])
    reporter = ProgressReporter(svc.jobs, job_id, attempt)
    hooks = TrainHooks(on_progress=reporter.on_progress, on_epoch_end=reporter.on_epoch_end,
                       should_stop=reporter.should_stop,
                       progress_interval_s=svc.settings.progress_interval_s,
                       sample_length=EPOCH_SAMPLE_LENGTH)
    started = time.monotonic()
    # resume: an attempt that finds this job's checkpoint continues from its last epoch.
    # (Handing a dead worker's job to another worker needs leases, not built yet; a job
    # runs once today, so this finds no checkpoint and starts afresh.)
    trained = train(job["spec"], text, svc.artifacts.checkpoints(job_id, attempt), hooks,
                    resume=True)
    if reporter.lost:
        log.info("job %s: no longer this attempt's; model not registered", job_id)
        return None

    model_id = new_id("mdl")
    lineage = {"job_id": job_id, "corpus_id": corpus["id"], "corpus_sha256": corpus["sha256"]}
    with svc.artifacts.scratch_dir() as local_dir:
        save_model(local_dir, trained, job["spec"], lineage)
        svc.artifacts.publish_model(model_id, attempt, local_dir)
    svc.models.put({  # the commit point: readers find the files through this record
        "id": model_id,
        "attempt": attempt,  # the files are under this attempt's prefix
        **lineage,
        "created_at": utc_now_iso(),
        "preset": job["spec"]["preset"],
        "config": job["spec"],
        "vocab_size": trained.vocab.size,
        "metrics": trained.metrics,
        "train_seconds": round(time.monotonic() - started, 3),
    })
    log.info("job %s: model %s registered", job_id, model_id)
    return {"model_id": model_id}, _job_metrics(trained.metrics)


def _job_metrics(metrics):
    return {key: metrics.get(key) for key in ("loss", "val_loss", "bits_per_char")}


def run_generation(svc, job, attempt, cache):
    spec = job["spec"]
    loaded = cache.get(spec["model_id"])
    samples = generate(loaded, prompt=spec["prompt"], length=spec["length"],
                       temperature=spec["temperature"], top_k=spec["top_k"],
                       top_p=spec["top_p"], num_samples=spec["num_samples"],
                       seed=spec["seed"], stop=spec["stop"])
    log.info("job %s: %d samples generated", job["id"], len(samples))
    return {"samples": samples}, None


def model_loader(svc):
    """model_id -> loaded model, from the artifact store only (safe mode; see model_files)."""
    def load(model_id):
        attempt = svc.models.get(model_id)["attempt"]
        return load_model(svc.artifacts.local_model_dir(model_id, attempt))
    return load
