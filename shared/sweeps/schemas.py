"""A sweep as the API shows it: built from its record and its trials' jobs, never returned
as stored (the Optuna trial ids and the advance bookkeeping stay inside)."""

from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.stores.jobs import JobStatus, StoppedReason
from shared.runtime.redis_db import model_id_of
from shared.contracts.schemas import OUT, JobError
from shared.sweeps.store import FINAL_FIELD, SweepStatus, TrialState, best_of, trials_of


class SweepTrial(BaseModel):
    model_config = OUT

    number: int = Field(description="its number in the study, from 0")
    params: dict[str, Any] = Field(description="the swept fields' values")
    job_id: str | None = Field(description="its training job (null: refused at submission)")
    status: Literal["queued", "running", "succeeded", "failed", "cancelled", "pruned"] = \
        Field(description="its job's status; pruned: stopped at a rung by the pruner")
    rung: int = Field(description="epochs reported to the study (ASHA's rungs: 1, 3, 9 ...)")
    best_val_loss: float | None = Field(description="the lowest validation loss reported")
    error: JobError | None = Field(None, description="why it was refused at submission")


class SweepBest(BaseModel):
    model_config = OUT

    number: int = Field(description="the trial (or the trial the final phase continued)")
    job_id: str
    model_id: str = Field(description="its model: `sweep_id` in the model's lineage")
    val_loss: float
    params: dict[str, Any]
    final: bool = Field(False, description=(
        "the final phase's model: trial `number` continued, with a lower validation loss"))


class SweepFinal(BaseModel):
    model_config = OUT

    number: int = Field(description="the best trial it continues, from that trial's model")
    job_id: str | None = Field(description="its training job (null: refused at submission)")
    max_seconds: float = Field(description="its budget: what was left of budget_seconds")
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    val_loss: float | None = Field(description="its job's best validation loss")
    error: JobError | None = Field(None, description="why it was refused at submission")


class SweepSummary(BaseModel):
    model_config = OUT

    id: str
    status: SweepStatus
    corpus_id: str
    created_at: str
    finished_at: str | None
    max_trials: int = Field(description="trials it runs at most (a grid: at most its size)")
    trials_made: int
    best: SweepBest | None = Field(description=(
        "the trial with the lowest validation loss among those that ran to their end, so "
        "far; or the final phase's job, once it ended lower"))

    @classmethod
    def of(cls, record):
        return cls.model_validate(_common(record, trials_of(record)))


class Sweep(SweepSummary):
    preset: str
    overrides: dict[str, dict[str, Any]] = Field(description="the base spec's sections")
    space: dict[str, Any]
    trial_seconds: float
    budget_seconds: float
    final_fraction: float = Field(0.0, description="budget_seconds' share for the final phase")
    final: SweepFinal | None = Field(None, description=(
        "the final phase, once the trials are done: the best trial continued"))
    parallel: int
    objective: Literal["val_loss"]
    sampler: Literal["grid", "tpe"] = Field(description="grid: every field a list; else TPE")
    trials: list[SweepTrial]

    @classmethod
    def of(cls, record, jobs):
        """`jobs`: {job id: its record} of the sweep's trials (deleted ones absent)."""
        trials = trials_of(record)
        final = record.get(FINAL_FIELD)
        if final is not None:
            job = jobs.get(final["job_id"])
            final = {**final, "status": job["status"] if job else _trial_status(final, None),
                     "val_loss": ((job or {}).get("metrics") or {}).get("val_loss",
                                                                       final["value"])}
        return cls.model_validate({**_common(record, trials), "final": final, "trials": [
            {**trial, "status": _trial_status(trial, jobs.get(trial["job_id"]))}
            for trial in trials]})


def _common(record, trials):
    best = best_of(trials, record.get(FINAL_FIELD))
    if best is not None:
        best = {**best, "val_loss": best["value"], "model_id": model_id_of(best["job_id"])}
    return {**record, "max_trials": record["trials"], "trials_made": len(trials),
            "best": best}


def _trial_status(trial, job):
    if job is not None:
        return "pruned" if job.get("stopped_reason") == StoppedReason.PRUNED else job["status"]
    # Refused at submission, or its job deleted since (by you, or by retention): as told.
    return {TrialState.COMPLETE: JobStatus.SUCCEEDED.value,
            TrialState.PRUNED: "pruned"}.get(trial["state"], JobStatus.FAILED.value)
