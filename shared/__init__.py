"""Code shared by the API and the workers, in plain Python: nothing here imports Flask or
TensorFlow. One subpackage a kind of thing (docs/architecture.md has the map):

- contracts/: what a request may hold and what an answer looks like: specs, API bodies,
  the one error tree.
- service/: the rules a request meets before it becomes a job (views call these).
- stores/: Redis records with their atomic steps (jobs, turns, corpora, tokens) and the
  artifact store (files on disk or S3).
- sizing/: the model described once, and what it will cost: size, memory, time.
- sweeps/: hyperparameter sweeps: the request, the Optuna study, the store, the runner.
- text/: turning uploads into corpus text, and text into what a model reads.
- webhooks/: where a webhook may go, and the outbox that delivers it.
- runtime/: plumbing every process wires up once: settings, Redis, the Celery queue, logs,
  metrics, clock.
- stack/: the whole server on one machine (`make up`, `make demo`).
"""
