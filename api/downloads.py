"""Downloads: stored files served without passing through API memory.

A file in a local store goes out by sendfile (Flask's send_file with a path: gunicorn
hands the open file to the kernel); a file in S3 is a redirect to a short-lived presigned
URL, so its bytes never reach the API at all (requests, curl -L and browsers follow it,
and drop our bearer token on the way, since the host differs). A zip of several files is
built while it is sent (zipstream-ng), each file read in bounded chunks: from disk, or by
ranged GETs from S3. Memory per download stays a chunk or so whatever the model's size.
Every download whose bytes pass through the API holds one of its owner's download slots
(api/download_slots.py) until it ends, and goes out no faster than TEXTGEN_DOWNLOAD_MB_S:
the kernel paces its connection (SO_MAX_PACING_RATE, TCP's own pacing), sendfile too, so
pacing costs no CPU; the pace is lifted once the body is sent, since gunicorn keeps the
connection for the client's next request.
"""

import functools
import logging
import socket
import struct

from flask import Response, redirect, request, send_file
from werkzeug.http import dump_options_header
from zipstream import ZIP_STORED, ZipStream

from api.after_body import call_after_body
from api.context import services
from api.download_slots import hold_download

log = logging.getLogger(__name__)

# How long a presigned URL may be used to start a download: a client follows the
# redirect at once; S3 checks this only when the GET starts, not while it runs.
PRESIGNED_URL_S = 60
# Linux's socket option (asm-generic/socket.h), which Python's socket module does not name.
SO_MAX_PACING_RATE = getattr(socket, "SO_MAX_PACING_RATE", 47)
_UNPACED = 2**64 - 1  # ~0UL: no pace, a socket's default


def send_stored(stored, mimetype, download_name):
    """The response serving the StoredFile `stored` as an attachment `download_name`."""
    path = stored.local_path()
    if path is not None:
        _start_download()
        # conditional: Range requests resume a cut-off download; ETag and Last-Modified.
        return send_file(path, mimetype=mimetype, as_attachment=True,
                         download_name=download_name, conditional=True)
    url = stored.presigned_url(
        PRESIGNED_URL_S, ResponseContentType=mimetype,
        ResponseContentDisposition=_attachment(download_name))
    return redirect(url, 302)


def send_inline(stored, mimetype):
    """The response with the StoredFile `stored` as its body (a generation result: JSON a
    page or a client reads). From S3 it streams through the API rather than redirecting,
    so a browser page needs no CORS rule on the bucket; such files are capped in size."""
    path = stored.local_path()
    if path is not None:
        return send_file(path, mimetype=mimetype, conditional=True)
    return Response(stored.chunks(), mimetype=mimetype,
                    headers={"Content-Length": str(stored.size)})


def send_zip(entries, download_name):
    """A zip of `entries` ((name in the zip, StoredFile), ...), sent as it is built.

    Files are stored, not compressed (model.keras is a zip itself; the JSON files are
    small), so the zip's length is known up front and sent as Content-Length.
    """
    _start_download()
    archive = ZipStream(compress_type=ZIP_STORED, sized=True)
    for name, stored in entries:
        path = stored.local_path()
        if path is not None:
            archive.add_path(path, name)
        else:
            archive.add(stored.chunks(), name, size=stored.size)
    return Response(archive, mimetype="application/zip", headers={
        "Content-Length": str(len(archive)),
        "Content-Disposition": _attachment(download_name)})


def _attachment(download_name):
    """Content-Disposition as send_file writes it, so both backends answer alike."""
    return dump_options_header("attachment", {"filename": download_name})


def _start_download():
    """Hold one of the owner's download slots and pace this response's connection."""
    hold_download()
    sock = request.environ.get("gunicorn.socket")  # absent under another server
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        _pace(sock, services().settings.download_bytes_per_s)
    except OSError as e:  # not Linux: the download goes unpaced
        log.debug("download not paced: %s", e)
        return
    call_after_body(functools.partial(_pace, sock, _UNPACED))


def _pace(sock, bytes_per_s):
    if sock.fileno() != -1:  # not closed yet (by a client's hang-up)
        sock.setsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE, struct.pack("=Q", bytes_per_s))
