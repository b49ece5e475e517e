"""One webhook POST that no receiver can stretch: one total deadline, a byte cap on the
reply, and a connection to the address that was checked (shared/webhooks/targets.py).

Hand-written around the standard library's http.client, for want of a library that does
all three: requests' timeout is per socket operation (a receiver that trickles a byte at
a time, or streams an endless body, holds the sender for ever, and an unstreamed body fills
memory), and pycurl, which has all three, cannot be loaded beside TensorFlow (its own
libcurl clashes with TensorFlow's). So: we open the socket ourselves, to the checked
address, and wrap it in TLS for the URL's name (SNI and the certificate check use the name);
http.client writes the request (Host header: the name) and parses the reply from a reader
that refuses to take more than MAX_REPLY_BYTES; a timer shuts the socket at the deadline.
"""

import http.client
import io
import os
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

import certifi

# GitHub's limit for a delivery: a receiver answers within 10 s or the attempt failed.
DEADLINE_S = 10.0
# The reply's headers and body together: enough for any status page, and a receiver's
# body is not used (only the status counts), so reading more would only cost memory.
MAX_REPLY_BYTES = 64 * 1024


class PostError(Exception):
    """Raised when a POST got no status: it could not connect, or the deadline passed."""


def post(target, url, body, headers, deadline_s=DEADLINE_S, max_reply_bytes=MAX_REPLY_BYTES):
    """POST `body` to `url` at one of `target.addresses`; the HTTP status the receiver sent.

    A status that arrived counts even when the body then passed the cap or the deadline.
    """
    deadline = time.monotonic() + deadline_s
    sock = _connect(target, deadline)
    # Given a socket, http.client never connects or resolves.
    conn = http.client.HTTPConnection(target.host, target.port)
    conn.sock = sock
    parts = urlsplit(url)
    conn.response_class = _capped_response(max_reply_bytes)
    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _cut, (sock,))
    watchdog.start()
    status = response = None
    try:
        conn.request("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                     body=body, headers={"Host": parts.netloc, **headers})
        response = conn.getresponse()
        status = response.status
        # The body to its end (a receiver that is told nothing may log an error), unless
        # the cap or the deadline comes first; the bytes themselves are dropped.
        while response.read(16 * 1024):
            pass
        return status
    except (OSError, http.client.HTTPException, _TooLargeError) as e:
        if status is not None:
            return status
        if time.monotonic() >= deadline:
            raise PostError(f"no answer within {deadline_s:.0f} s") from e
        raise PostError(f"{type(e).__name__}: {e}") from e
    finally:
        watchdog.cancel()
        conn.close()
        # A reply cut short (the cap, the deadline) holds the socket's last reference:
        # http.client closes it only at the body's end, so close it here, not at GC.
        if response is not None:
            response.close()


def _connect(target, deadline):
    """A socket to the first of the checked addresses that answers; TLS for https."""
    error = None
    for address in target.addresses:
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            break
        try:
            sock = socket.create_connection((address, target.port), timeout=remaining_s)
        except OSError as e:
            error = e
            continue
        if target.scheme != "https":
            return sock
        # The handshake as a whole is bounded by the socket's timeout (CPython's ssl
        # module counts it down across the handshake's reads).
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        context = ssl.create_default_context(cafile=certifi.where())
        try:
            return context.wrap_socket(sock, server_hostname=target.host)
        except (OSError, ssl.SSLError) as e:
            sock.close()
            raise PostError(f"TLS with {target.host} failed: {e}") from e
    raise PostError(f"could not connect to {target.label()}: {error or 'deadline passed'}")


def _cut(sock):
    """At the deadline: shut the connection, so whatever read or write waits on it ends.
    Through a duplicate of its descriptor: the TLS layer's state is the reader's alone."""
    try:
        with socket.socket(fileno=os.dup(sock.fileno())) as duplicate:
            duplicate.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: the POST ended as the timer fired


class _TooLargeError(Exception):
    """Raised by the reply's reader once the receiver sent more than the cap."""


class _CappedReader(io.RawIOBase):
    """The socket's reader (http.client's own, which keeps the socket open for as long as
    the response reads), taking no more than `max_bytes` in all."""

    def __init__(self, raw, max_bytes):
        self.raw = raw
        self.left = max_bytes

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.left <= 0:
            raise _TooLargeError("the reply passed its size cap")
        n = self.raw.readinto(memoryview(buffer)[:min(len(buffer), self.left)])
        self.left -= n or 0
        return n

    def close(self):
        self.raw.close()
        super().close()


def _capped_response(max_bytes):
    class CappedResponse(http.client.HTTPResponse):
        """Reads the status, headers and body through a _CappedReader."""

        def __init__(self, sock, *args, **kwargs):
            super().__init__(sock, *args, **kwargs)
            self.fp = io.BufferedReader(_CappedReader(self.fp.detach(), max_bytes))

    return CappedResponse
