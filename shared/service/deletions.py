"""Deleting what an owner keeps: each a step across the stores (the record in Redis, its
files in the artifact store, its bytes under the owner's storage quota), refused while
something still needs it.
"""

from shared.contracts.errors import ConflictError, InUseError
from shared.stores.jobs import JobStatus
from shared.sweeps.store import SweepStatus


def delete_corpus(svc, owner, corpus_id):
    """Delete the corpus (its text goes with the last corpus that has it)."""
    record = svc.corpora.get(corpus_id, owner)
    _refuse_if_in_use(svc, record, "corpus")
    svc.corpora.remove(record)


def delete_model(svc, owner, model_id):
    """Delete the model and its files."""
    record = svc.models.get(model_id, owner)
    _refuse_if_in_use(svc, record, "model")
    svc.models.delete(record)
    svc.artifacts.delete_model(model_id)
    svc.storage.release(record["owner"], f"model:{model_id}")


def delete_job(svc, owner, job_id):
    """Delete a finished job, its events and its checkpoints (its model stays)."""
    job = svc.jobs.get(job_id, owner)
    if not JobStatus(job["status"]).is_terminal:
        raise ConflictError(f"job {job_id} is {job['status']}; cancel it first")
    remove_finished_job(svc, job)


def remove_finished_job(svc, job):
    """A finished job's record, events and checkpoints, and their quota charge; here and
    in the retention sweep (shared/service/retention.py)."""
    svc.jobs.delete(job)
    svc.artifacts.delete_job_files(job["id"])
    svc.storage.release(job["owner"], f"checkpoints:{job['id']}")


def delete_sweep(svc, owner, sweep_id):
    """Delete a finished sweep and its study (its trials' jobs and models stay)."""
    sweep = svc.sweeps.get(sweep_id, owner)
    if not SweepStatus(sweep["status"]).is_terminal:
        raise ConflictError(f"sweep {sweep_id} is running; cancel it first")
    svc.sweeps.delete(sweep)


def _refuse_if_in_use(svc, record, kind):
    """InUseError (409) while a queued or running job uses the corpus or model `record`."""
    users = svc.jobs.active_using(record["owner"], record["id"])
    if users:
        raise InUseError(f"{kind} {record['id']} is used by queued or running job "
                         f"{', '.join(users)}; cancel it or wait until it ends",
                         extra={"jobs": users})
