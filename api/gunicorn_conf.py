"""How gunicorn serves the API, for `make up` (shared/stack/runner.py) and Compose alike:
`gunicorn --config python:api.gunicorn_conf --bind HOST:PORT api.wsgi:app`.
docs/serving.md: why threads (gevent breaks the S3 store), and what was measured.
"""

import os

# Processes. bench.load on 2 cores (2026-12-07, bench/README.md): 2 took about 450
# submissions/s (p99 about 115 ms), 3 about 530/s (p99 about 100 ms), 4 about 420/s. A
# request spends most of its time waiting on Redis and its client; a third process keeps
# the cores busy meanwhile, a fourth adds only switching. WEB_CONCURRENCY, gunicorn's own
# variable for it, sets another number (a host with more cores).
workers = int(os.environ.get("WEB_CONCURRENCY", 3))
# gthread, closing connections off its main loop (api/gunicorn_worker.py: why).
worker_class = "api.gunicorn_worker.LingerOffLoopWorker"
# Threads of each process (3,000 in all): an open event stream or Prefer: wait holds one
# while it waits, idle (no Redis connection: api/event_hub.py); the rest serve short
# requests.
threads = 1000
# Connections each process holds, busy or idle between requests. gthread keeps a
# connection alive only while fewer than worker_connections - threads are idle: at its
# default (1,000 beside 1,000 threads) none was, so every request opened and closed a TCP
# connection, and its close lingered on a thread until the client hung up.
worker_connections = 3000
accesslog = "-"
# gunicorn 27's control socket (gunicornc) is one path per user, $HOME/.gunicorn: every API
# on a host (a test's stack beside `make up`) would share it. Nothing here uses it.
control_socket_disable = True
