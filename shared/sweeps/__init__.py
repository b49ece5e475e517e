"""Hyperparameter sweeps: the request and search space (space.py), the Optuna study on our
Redis (study.py), sweep records (store.py), how the API shows one (schemas.py), and the
runner that submits trials as ordinary training jobs (runner.py)."""
