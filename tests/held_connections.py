"""Many long requests held open at once from one thread: raw sockets, not a thread each.

Used by tests/test_connections.py and bench/connections.py to hold hundreds of event
streams and `Prefer: wait` requests against a real API while other requests are timed.
A request is written whole and left unread (a `Prefer: wait` answer) or read up to the
end of its headers (an event stream that has started).
"""

import json
import os
import selectors
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit


class HeldRequests:
    def __init__(self, base_url, timeout_s=30.0):
        parts = urlsplit(base_url)
        self.address = (parts.hostname, parts.port)
        self.timeout_s = timeout_s
        self.sockets = []

    def send(self, method, path, headers, body=None):
        """Write one request on a connection of its own; the socket stays open."""
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.address[0]}:{self.address[1]}",
                 f"Content-Length: {len(payload)}", "Connection: close",
                 *(f"{name}: {value}" for name, value in headers.items())]
        if body is not None:
            lines.append("Content-Type: application/json")
        sock = socket.create_connection(self.address, timeout=self.timeout_s)
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        self.sockets.append(sock)
        return sock

    def stream(self, job_id, token):
        """Open a job's event stream; returns its socket once the 200 has arrived."""
        sock = self.send("GET", f"/v1/jobs/{job_id}/events",
                         {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"})
        status = read_status(sock, self.timeout_s)
        if status != 200:
            raise AssertionError(f"event stream of {job_id} answered {status}")
        return sock

    def unanswered(self, socks):
        """Those of `socks` on which no byte of an answer has arrived yet."""
        with selectors.DefaultSelector() as selector:
            for sock in socks:
                selector.register(sock, selectors.EVENT_READ)
            ready = {key.fileobj for key, _ in selector.select(timeout=0)}
        return [sock for sock in socks if sock not in ready]

    def close(self):
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()


def read_status(sock, timeout_s):
    """The status code of the answer on `sock`, reading up to the end of its headers."""
    deadline = time.monotonic() + timeout_s
    received = b""
    while b"\r\n\r\n" not in received:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/") else None


def api_worker_pids(stack):
    """The pids of the local stack's gunicorn workers (the children of its master)."""
    master = stack.processes["api"].pid
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue  # a process that just ended
        if stat and int(stat.rsplit(")", 1)[1].split()[1]) == master:
            pids.append(int(entry.name))
    return pids


def tcp_connections_to(pids, port):
    """How many TCP connections to `port` (Redis') the processes `pids` hold."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue  # closed meanwhile
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()  # local address, remote address (hex ip:port), ... inode
            if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                count += 1
    return count


def port_of(url):
    return urlsplit(url).port
