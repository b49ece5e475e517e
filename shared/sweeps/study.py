"""A sweep's Optuna study: its storage on our Redis, its sampler and its pruner.

Every process opens the same study from the sweep record: the API that creates it, the
worker whose trial reports each epoch, whoever advances the sweep (shared/sweeps/runner.py). The
storage is Optuna's journal on the service's Redis, under the sweep's own key; the sampler
and the pruner are built from the record, so they are the same wherever they are built.
"""

import functools
import logging
import warnings

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages.journal import JournalRedisBackend
from optuna.trial import TrialState as OptunaState

from shared.sweeps.space import distinct, grid, grid_size
from shared.sweeps.store import TrialState

# ASHA's reduction factor: a trial goes on past a rung only if it is in the best third of
# the trials that reached it. Rungs are epochs reported: 1, 3, 9, 27 ... (min_resource 1),
# so a time budget of a few epochs has its first cut after one.
REDUCTION_FACTOR = 3

OPTUNA_STATES = {TrialState.COMPLETE: OptunaState.COMPLETE,
                 TrialState.PRUNED: OptunaState.PRUNED,
                 TrialState.FAILED: OptunaState.FAIL}


def _quiet_optuna():
    """Optuna's lines (a trial finished, ...) go through our logging, at warnings only,
    instead of its own handler on stderr."""
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    logging.getLogger("optuna").setLevel(logging.WARNING)


@functools.lru_cache(maxsize=64)
def storage(redis_url, key):
    """The study's storage, one per process: it keeps a Redis connection pool and the
    journal replayed so far (each later read fetches only what is new), and it is
    thread-safe (Optuna locks it), so a worker's reaper and its training share it."""
    _quiet_optuna()
    with warnings.catch_warnings():
        # "experimental" since Optuna 3.1: its interface may change; the version is pinned.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        backend = JournalRedisBackend(redis_url, prefix=key)
    return optuna.storages.JournalStorage(backend)


def create(redis_url, key, sweep_id):
    """The sweep's new study (named as the sweep), minimizing the objective."""
    optuna.create_study(study_name=sweep_id, storage=storage(redis_url, key),
                        direction="minimize", load_if_exists=True)


def open_study(redis_url, key, sweep):
    """The sweep's study with its pruner, and a sampler seeded anew for the next ask: a
    sampler built in another process would otherwise start from the same seed and draw
    the same settings again."""
    study = optuna.load_study(study_name=sweep["id"], storage=storage(redis_url, key),
                              pruner=optuna.pruners.SuccessiveHalvingPruner(
                                  min_resource=1, reduction_factor=REDUCTION_FACTOR))
    seed = sweep["seed"] + len(study.get_trials(deepcopy=False))
    if grid_size(sweep["space"]) is not None:
        study.sampler = _GridSampler(grid(sweep["space"]), seed=seed)
    else:
        study.sampler = optuna.samplers.TPESampler(seed=seed)
    return SweepStudy(study)


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid without its study.stop() once every point is told: that stop is for
    study.optimize, which we never run, so it raised RuntimeError from the step that told
    the last trial (after storing it), and the sweep ended only at the next reaper pass.
    The runner makes no more trials than the grid has points (grid_size)."""

    def after_trial(self, study, trial, state, values):
        pass


class SweepStudy:
    """What a sweep does with its Optuna study: ask, tell, report."""

    def __init__(self, study):
        self.study = study

    def ask(self, space):
        """A new trial: (its id in the storage, its number in the study, {field: value}).
        report() needs the id (Optuna's Trial takes nothing else); tell() the number."""
        trial = self.study.ask({name: _distribution(entry) for name, entry in space.items()})
        return trial._trial_id, trial.number, trial.params

    def tell(self, number, state, value=None):
        """Close trial `number` as `state` (a TrialState; complete with its value), once.
        Optuna takes a pruned trial's value from its last report."""
        state = TrialState(state)
        self.study.tell(number, value if state is TrialState.COMPLETE else None,
                        state=OPTUNA_STATES[state], skip_if_finished=True)

    def report(self, trial_id, step, value):
        """The trial's objective at `step` (an epoch); True when it should be pruned."""
        trial = optuna.Trial(self.study, trial_id)
        trial.report(value, step)
        return trial.should_prune()


def _distribution(entry):
    if isinstance(entry, list):
        return CategoricalDistribution(distinct(entry))
    kind = IntDistribution if isinstance(entry["low"], int) else FloatDistribution
    return kind(entry["low"], entry["high"], log=entry["log"])
