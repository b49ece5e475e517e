"""The API's gunicorn worker class: gthread, with the lingering close of a connection in a
pool thread instead of the worker's main loop.

gunicorn 27.0.1's gthread worker (26.2.0 is the same; no newer release) closes a connection
it does not keep alive (the client sent `Connection: close`; or no room to keep it: with
1,000 threads and 1,000 worker_connections there never is) in `finish_request`, on the main
thread, with `util.close_graceful`: shut down writes, then read up to 2 s until the client
hangs up (RFC 9112 section 9.6, added by benoitc/gunicorn#3590). While it reads, that
process accepts, dispatches and heartbeats nothing: one client that never hangs up costs
everyone 2 s, 15 in a row and the arbiter kills the process (bench/README.md, `--linger`).
No setting turns the linger off or shortens it, and no upstream issue reports it (searched
2026-12-01); the lingering pool beside the accept loop that upstream once designed
(benoitc/gunicorn#1025) is not in 27.0.1. Remove this class when gunicorn closes off its
main thread.
"""

from gunicorn.workers.gthread import ThreadWorker


class LingerOffLoopWorker(ThreadWorker):
    """`--worker-class api.gunicorn_worker.LingerOffLoopWorker`: the same close, in a pool
    thread. A lingering client holds one of the 1,000 threads for up to 2 s, as one that
    sends nothing already holds one for 5 s (gthread's DEFAULT_WORKER_DATA_TIMEOUT)."""

    def finish_request(self, conn, fs):
        # Kept alive, deferred to the poller (truthy results) or failed: gunicorn's own way.
        if not fs.cancelled() and (fs.exception() or fs.result()):
            return super().finish_request(conn, fs)
        self.nr_conns -= 1
        self.tpool.submit(conn.close, graceful=True)
