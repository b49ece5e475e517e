"""OutcomeRecorder: how a run ended, written once and told.

Success and the model's registration are one fenced step; an error of ours fails the job
with its code; anything else is the worker boundary, the one place that catches broadly,
so that no job is ever left running after an error. Then the duration metric and the
`completed` webhook, or, for a job deleted while it ran, the removal of what it wrote.
"""

import logging
import time

from shared.contracts.errors import InternalError, NotFoundError, TextgenError
from shared.stores.jobs import JobStatus, JobType

log = logging.getLogger(__name__)

UNEXPECTED_MESSAGE = ("the worker hit an unexpected error; its details are in the worker's "
                      "log (job {job_id}, attempt {attempt}). Retrying may help; if it "
                      "happens again, tell the operator")


class OutcomeRecorder:
    """`with OutcomeRecorder(svc, job, attempt) as outcome:` around the work, which sets
    `outcome.fields`: the job fields to write on success (worker/runs.py), or None when
    the job stopped being this attempt's."""

    def __init__(self, svc, job, attempt):
        self.svc = svc
        self.job = job
        self.attempt = attempt
        self.fields = None
        self.ended = None  # the status this attempt wrote, if it ended the job

    def __enter__(self):
        self.started = time.monotonic()
        return self

    def __exit__(self, exc_type, error, traceback):
        job_id = self.job["id"]
        if error is None:
            self._succeed()
        elif isinstance(error, TextgenError):
            log.warning("job %s: failed: %s: %s", job_id, error.code, error.message)
            self._fail(error.code, error.message)
        elif isinstance(error, Exception):  # the worker boundary: never leave it running
            log.error("job %s: failed unexpectedly", job_id, exc_info=error)
            # The user sees a stable code and this message; the exception's own text may
            # hold paths, hosts or secrets, so it stays in the worker's log with its trace.
            self._fail(InternalError.code,
                       UNEXPECTED_MESSAGE.format(job_id=job_id, attempt=self.attempt))
        else:
            return False  # the process is stopping (SystemExit, KeyboardInterrupt)
        if self.ended is not None:
            self.svc.metrics.job_ended(self.job["type"], self.ended.value,
                                       time.monotonic() - self.started)
            self.svc.webhooks.notify(self.svc.jobs.get(job_id), "completed")
        elif self._deleted():
            self._remove_files()
        return True

    def _succeed(self):
        svc, job, outcome = self.svc, self.job, self.fields
        if outcome is None:
            return  # no longer this attempt's: it stopped and wrote nothing
        # A job cancelled or handed on meanwhile registers nothing.
        if svc.jobs.succeed(job["id"], self.attempt, **outcome):
            log.info("job %s: succeeded", job["id"])
            self.ended = JobStatus.SUCCEEDED
            return
        log.info("job %s: ended meanwhile (cancelled?); its result is dropped", job["id"])
        if outcome.get("model"):
            svc.artifacts.discard_model_attempt(outcome["model"]["id"], self.attempt)
            svc.storage.release(job["owner"], f"model:{outcome['model']['id']}")
        elif job["type"] == JobType.GENERATE:
            svc.artifacts.discard_result(job["id"], self.attempt)

    def _fail(self, code, message):
        if self.svc.jobs.fail(self.job["id"], self.attempt, code, message):
            self.ended = JobStatus.FAILED

    def _deleted(self):
        try:
            self.svc.jobs.get(self.job["id"])
        except NotFoundError:
            return True
        return False

    def _remove_files(self):
        """Deleted while this attempt ran: the API removed the job's files, and files this
        attempt wrote after that (a commit under way when the job was deleted) go too."""
        job_id = self.job["id"]
        log.info("job %s: deleted while attempt %d ran; removing what it wrote", job_id,
                 self.attempt)
        self.svc.artifacts.delete_job_files(job_id)
        self.svc.storage.release(self.job["owner"], f"checkpoints:{job_id}")  # what it counted
