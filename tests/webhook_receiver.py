"""Webhook receivers on 127.0.0.1 for the tests: one that records each delivery and answers
with the statuses it is told to (then 200), and hostile ones (an endless body, no answer)."""

import http.server
import json
import socket
import threading
import time


def queue_delivery(webhooks, owner, url, n):
    """Queue an epoch_end delivery to `url`, as a running job of `owner` does."""
    job = {"id": f"job_{owner}{n}", "owner": owner, "webhook": url,
           "webhook_events": ["epoch_end"]}
    return webhooks.notify(job, "epoch_end", {"epoch": n})


class Receiver:
    def __init__(self, statuses=(), held=False):
        self.deliveries = []  # (headers, body as JSON, the status answered)
        self.statuses = list(statuses)  # answered in turn before 200s
        # Held: a delivery is answered only after release(), a receiver as slow as the test
        # needs it to be, without a fixed delay.
        self._answer = threading.Event()
        if not held:
            self._answer.set()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver._answer.wait()
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.deliveries.append((dict(self.headers), body, status))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def acknowledged(self):
        return [(headers, json.loads(body)) for headers, body, status in self.deliveries
                if 200 <= status < 300]

    def release(self):
        self._answer.set()

    def close(self):
        self.release()  # no request left waiting
        self.server.shutdown()


class HostileReceiver:
    """A receiver on 127.0.0.1 that misbehaves: "endless" answers 500 and then streams a
    body for ever (CHUNK bytes every PAUSE_S, until the sender hangs up), "silent" reads
    the request and never answers. Counts connections and the bytes each one took."""

    def __init__(self, mode, chunk_bytes=64 * 1024, pause_s=0.002):
        self.mode = mode
        # By default ~30 MB/s: a sender that keeps it all grows that fast.
        self.chunk_bytes = chunk_bytes
        self.pause_s = pause_s
        self.connections = 0
        self.bytes_sent = []  # per connection, once the sender hung up
        self._closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        sent = 0
        with conn:
            conn.settimeout(1.0)
            try:
                conn.recv(65536)  # the request (small): what it says does not matter
                if self.mode == "silent":
                    self._closing.wait()
                    return
                conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\n"
                             b"Content-Type: text/plain\r\n\r\n")
                while not self._closing.is_set():
                    conn.sendall(b"x" * self.chunk_bytes)
                    sent += self.chunk_bytes
                    time.sleep(self.pause_s)
            except OSError:  # the sender hung up (or the send timed out): what we wait for
                self.bytes_sent.append(sent)

    def close(self):
        self._closing.set()
        self._listener.close()
