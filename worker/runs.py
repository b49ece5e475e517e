"""What a training, generation or evaluation job does, between its record and its result.

Each run takes the job record and the lease its attempt holds, does the work through the
ML pipeline, stores the artifacts, and returns the fields tasks.py records on success
(result, metrics, the model record, stopped_reason), or None when the job stopped being
this attempt's (cancelled, or handed on): then nothing is registered.
"""

import logging
import math
import pkgutil
import time

import redis

from shared.runtime.clock import utc_now_iso
from shared.contracts.errors import JobFailedError, TrainingDivergedError
from shared.contracts.evaluations import EvaluateSpec, overlaps_training, tail_start
from shared.stores.jobs import StoppedReason
from shared.runtime.queue import queue_of
from shared.runtime.redis_db import model_id_of
from shared.stores.results import encode_samples, result_summary
from shared.contracts.specs import GenerateSpec, TrainSpec
from shared.text.textprep import prepare_text
from shared.sizing.throughput import reference_chars_per_s
from worker.evaluation import score_text
from worker.model_files import load_model, save_model
from worker.sampling import generate
from worker.stall import StepPulse
from worker.sweep_trial import PruneTrial
from worker.text_stream import TextStream, with_prompt
from worker.training import TrainHooks, train
from worker.vocab import CHAR

log = logging.getLogger(__name__)

EPOCH_SAMPLE_LENGTH = 200  # tokens of text in each epoch_end event: enough to read
# Between two `progress` events: twice a second at most, whatever TEXTGEN_PROGRESS_INTERVAL_S
# (the record's own pace), so a bar following the stream moves smoothly and a long run
# takes ~40 minutes to reach the job's cap of streamed events (shared/stores/jobs.py).
PROGRESS_EVENT_S = 0.5


class GenerationTimeLimitError(JobFailedError):
    """Raised when a generation job runs past TEXTGEN_GENERATION_MAX_S."""

    code = "time_limit"
    title = "Generation time limit"


class _NoLongerOurs(Exception):
    """Raised inside sampling when the job was cancelled or handed on."""


class ProgressReporter:
    """Writes a running job's progress and events under its attempt's fence.

    A report that comes PROGRESS_EVENT_S or more after the last `progress` event sends one
    with it, in the same step: the record's progress and the running loss. Redis may be
    away for a while (a restart): training goes on. Progress is dropped (the next report
    replaces it); an epoch's event is kept and sent with the next one, so the stream still
    has every epoch once.
    """

    def __init__(self, svc, job, attempt, spec: TrainSpec):
        self.jobs = svc.jobs
        self.metrics = svc.metrics
        self.webhooks = svc.webhooks
        self.throughput = svc.throughput
        self.job = job
        self.job_id = job["id"]
        self.attempt = attempt
        self.spec = spec
        self.unsent = []  # (event type, data, epoch) that Redis did not take yet
        self.last_epoch_end = time.monotonic()
        self.next_progress_event = 0.0  # monotonic time; the first report sends one

    def on_progress(self, progress, metrics):
        now = time.monotonic()
        event = ({**progress, "loss": metrics.get("loss")}
                 if now >= self.next_progress_event else None)
        try:
            self.jobs.report_progress(self.job_id, self.attempt, progress, metrics,
                                      event=event)
        except redis.RedisError as e:
            log.warning("job %s: progress not recorded (%s)", self.job_id, type(e).__name__)
            return
        if event is not None:
            self.next_progress_event = now + PROGRESS_EVENT_S

    def on_epoch_end(self, epoch, metrics, sample):
        log.info("job %s: epoch %d loss=%s val_loss=%s", self.job_id, epoch,
                 _fmt(metrics.get("loss")), _fmt(metrics.get("val_loss")))
        # Once per epoch over every attempt: a resumed attempt redoes the epoch its
        # predecessor died in, and reports it only if that one had not.
        self._send("epoch_end", {"epoch": epoch, **metrics, "sample": sample}, epoch)
        now = time.monotonic()
        try:
            self.metrics.epoch_ended(now - self.last_epoch_end,
                                     (metrics.get("targets_per_s") or 0)
                                     * (metrics.get("train_seconds") or 0))
        except redis.RedisError:
            pass  # a metric lost to an outage is not worth a retry
        self._record_throughput(metrics)
        self.last_epoch_end = now

    def _record_throughput(self, metrics):
        """This host's speed, for the sizing rule of later jobs on this queue."""
        figure = reference_chars_per_s(self.spec, metrics.get("targets_per_s"))
        if figure is None:
            return
        try:
            self.throughput.record(queue_of(self.job), figure)
        except redis.RedisError:
            pass  # as a metric: the next epoch's figure will do

    def on_resume(self, epoch, history):
        log.info("job %s: attempt %d resumes after epoch %d", self.job_id, self.attempt, epoch)
        self._send("resumed", {"attempt": self.attempt, "epoch": epoch})
        # Epochs a predecessor finished but could not report (Redis was away, or it died
        # between its checkpoint and its event): their metrics are in the checkpoint. The
        # job store skips the ones already reported.
        for entry in history:
            self._send("epoch_end", {**entry, "sample": None}, entry["epoch"])

    def _send(self, event_type, data, epoch=None):
        self.unsent.append((event_type, data, epoch))
        try:
            while self.unsent:
                event_type, data, epoch = self.unsent[0]
                appended = self.jobs.add_event(self.job_id, self.attempt, event_type, data,
                                               epoch=epoch)
                self.unsent.pop(0)
                if appended and event_type == "epoch_end":
                    # Once per epoch, as the event: a redone epoch is not sent again.
                    self.webhooks.notify(self.job, "epoch_end", data)
        except redis.RedisError as e:
            log.warning("job %s: %d events wait for Redis (%s)", self.job_id,
                        len(self.unsent), type(e).__name__)


def _stop_if_lost(lease):
    """A should_stop hook that ends training by raising: checked after every step, so a
    cancelled or handed-on run stops within one step, skipping the validation pass and
    epoch sample Keras would run for a step-stopped epoch."""
    def should_stop():
        if not lease.still_ours():
            raise _NoLongerOurs
        return False
    return should_stop


def _stored_bytes_recorder(svc, job, kind):
    """on_change for a store of the job's: its owner's quota counts the bytes it holds.
    Training goes on through a Redis outage; the next change records the total again."""
    item = f"{kind}:{job['id']}"

    def record(stored_bytes):
        try:
            svc.storage.record(job["owner"], item, stored_bytes)
        except redis.RedisError as e:
            log.warning("job %s: stored bytes not counted (%s)", job["id"], type(e).__name__)
    return record


def _fmt(value):
    return "n/a" if value is None else f"{value:.4f}"


def run_training(svc, job, lease):
    job_id = job["id"]
    spec = TrainSpec.model_validate(job["spec"])  # typed from here to the last callback
    corpus = svc.corpora.get(job["corpus_id"])
    text = svc.artifacts.read_corpus(corpus["sha256"])
    init = None
    if job.get("init_from_model"):
        init = model_loader(svc)(job["init_from_model"])
    reporter = ProgressReporter(svc, job, lease.attempt, spec)
    # A trial reports to its study; a sweep's final phase (sweep_final) is no trial.
    pruning = PruneTrial(svc, job) if job.get("sweep_id") and not job.get("sweep_final") \
        else None
    hooks = TrainHooks(on_progress=reporter.on_progress, on_epoch_end=reporter.on_epoch_end,
                       on_resume=reporter.on_resume, should_stop=_stop_if_lost(lease),
                       progress_interval_s=svc.settings.progress_interval_s,
                       sample_length=EPOCH_SAMPLE_LENGTH,
                       callbacks=[StepPulse(lease.watchdog),
                                  *(pkgutil.resolve_name(name)()
                                    for name in svc.settings.train_callbacks),
                                  *([pruning] if pruning else [])])
    started = time.monotonic()
    try:
        # An attempt that finds this job's checkpoint continues from its last complete
        # epoch.
        checkpoints = svc.artifacts.checkpoints(
            job_id, lease.attempt, on_change=_stored_bytes_recorder(svc, job, "checkpoints"))
        trained = train(spec, text, checkpoints, hooks, resume=True, init=init)
    except _NoLongerOurs:
        log.info("job %s: no longer attempt %d's (cancelled or handed on); stopped, "
                 "nothing registered", job_id, lease.attempt)
        return None

    diverged = [h["epoch"] for h in trained.history
                if h["loss"] is None or not math.isfinite(h["loss"])]
    if diverged:
        raise TrainingDivergedError(
            f"the training loss was not a number from epoch {diverged[0]} on; try a lower "
            "learning_rate or a clip_norm (the last good epoch's checkpoint is kept)")
    model_id = model_id_of(job_id)
    lineage = {"job_id": job_id, "corpus_id": corpus["id"], "corpus_sha256": corpus["sha256"],
               "init_from_model": job.get("init_from_model"), "sweep_id": job.get("sweep_id")}
    with svc.artifacts.scratch_dir() as local_dir:
        save_model(local_dir, trained, spec, lineage)
        # Each attempt publishes under its own prefix: an attempt that lost its lease can
        # never overwrite the files another one registers.
        svc.artifacts.publish_model(model_id, lease.attempt, local_dir)
    # Counted from now (the job reserved the room); uncounted if the job's end refuses it.
    svc.storage.record(job["owner"], f"model:{model_id}",
                       svc.artifacts.model_bytes(model_id, lease.attempt))
    # A pruned trial keeps its model (its best epoch so far), as any stopped run does.
    stopped = (StoppedReason.PRUNED if pruning and pruning.pruned
               else trained.stop_reason).value
    # The commit point: tasks.py writes this record in the step that marks the job
    # succeeded; readers find the files through it.
    model = {
        "id": model_id,
        "attempt": lease.attempt,  # the files are under this attempt's prefix
        "owner": job["owner"],
        **lineage,
        "created_at": utc_now_iso(),
        "preset": spec.preset,
        "config": spec.model_dump(),
        "vocab_size": trained.vocab.size,
        "alphabet": "".join(trained.vocab.tokens) if trained.vocab.level == CHAR else None,
        "metrics": trained.metrics,
        "best_epoch": trained.metrics["epoch"],
        "stopped_reason": stopped,
        "train_seconds": round(time.monotonic() - started, 3),
    }
    log.info("job %s: model %s saved; registering", job_id, model_id)
    return {"result": {"model_id": model_id, "best_epoch": trained.metrics["epoch"]},
            "metrics": _job_metrics(trained.metrics), "model": model,
            "stopped_reason": stopped}


def _job_metrics(metrics):
    # bits_per_token: word level only (bits_per_char there spreads it over the characters)
    keys = ("loss", "val_loss", "bits_per_char") + (
        ("bits_per_token",) if "bits_per_token" in metrics else ())
    return {key: metrics.get(key) for key in keys}


def run_generation(svc, job, lease, cache):
    spec = GenerateSpec.model_validate(job["spec"])
    loaded = cache.get(spec.model_id)
    # The prompt is prepared as the model's corpus was (lowercased, stopwords removed for
    # tutorial preprocessing); every sample begins with it.
    prompt = prepare_text(spec.prompt, loaded.spec.preprocessing.mode) if spec.prompt else ""
    check = _within_limits(svc, lease, "generation", "ask for fewer tokens or samples")
    stream = TextStream(loaded.vocab, prompt, spec.stop,
                        spec.num_samples * len(spec.temperatures), spec.length,
                        _text_sender(svc, job["id"], lease.attempt), job["id"])
    samples = []
    try:
        for temperature in spec.temperatures:
            texts = generate(loaded, prompt=prompt, length=spec.length,
                             temperature=temperature, top_k=spec.top_k, top_p=spec.top_p,
                             num_samples=spec.num_samples, seed=spec.seed, stop=spec.stop,
                             check=check, watch=stream.batch(spec.num_samples))
            texts = [with_prompt(loaded.vocab, prompt, text) for text in texts]
            stream.finish(texts, spec.length)
            samples += [{"text": text, "temperature": temperature} for text in texts]
    except _NoLongerOurs:
        log.info("job %s: cancelled while sampling", job["id"])
        return None
    log.info("job %s: %d samples generated", job["id"], len(samples))
    # The samples go to the artifact store; the record keeps a preview and the link.
    data = encode_samples(samples, int(svc.settings.max_result_mb * 1024 * 1024))
    svc.artifacts.put_result(job["id"], lease.attempt, data)
    return {"result": result_summary(job["id"], lease.attempt, samples, len(data))}


def _text_sender(svc, job_id, attempt):
    """TextStream's `send`: the deltas and the progress in one fenced step."""
    def send(data, progress, final):
        return svc.jobs.add_event(job_id, attempt, "text", data, progress=progress,
                                  capped=not final)
    return send


def _within_limits(svc, lease, what, advice):
    """check() for a job of the generate queue: raises _NoLongerOurs once the job is not
    this attempt's, GenerationTimeLimitError past TEXTGEN_GENERATION_MAX_S."""
    limit_s = svc.settings.generation_max_s
    deadline = time.monotonic() + limit_s

    def check():
        if not lease.still_ours():
            raise _NoLongerOurs
        if time.monotonic() > deadline:
            raise GenerationTimeLimitError(
                f"{what} ran past its limit of {limit_s:g} s (TEXTGEN_GENERATION_MAX_S); "
                f"{advice}")
    return check


def run_evaluation(svc, job, lease, cache):
    """Score each model of the spec on its text (worker/evaluation.py): the result is the
    table, small enough for the record."""
    spec = EvaluateSpec.model_validate(job["spec"])
    corpus = None
    text = spec.text
    if spec.corpus_id is not None:
        corpus = svc.corpora.get(spec.corpus_id)
        text = svc.artifacts.read_corpus(corpus["sha256"])
        if spec.part == "held_out":
            text = text[tail_start(len(text), spec.holdout_fraction):]
    check = _within_limits(svc, lease, "evaluation", "evaluate fewer models or a shorter text")
    rows = []
    try:
        for model_id in spec.model_ids:
            loaded = cache.get(model_id)
            row = score_text(loaded, prepare_text(text, loaded.spec.preprocessing.mode), check)
            rows.append({"model_id": model_id, **row, "overlaps_training": overlaps_training(
                svc.models.get(model_id), corpus, spec)})
    except _NoLongerOurs:
        log.info("job %s: cancelled while scoring", job["id"])
        return None
    log.info("job %s: %d models scored on %d characters", job["id"], len(rows), len(text))
    return {"result": {"chars": len(text), "models": rows}}


def model_loader(svc):
    """model_id -> loaded model, from the artifact store only (safe mode; see model_files)."""
    def load(model_id):
        attempt = svc.models.get(model_id)["attempt"]
        return load_model(svc.artifacts.local_model_dir(model_id, attempt))
    return load
