"""Downloads: stored files served without passing through API memory.

A file in a local store goes out by sendfile (Flask's send_file with a path: gunicorn
hands the open file to the kernel); a file in S3 is a redirect to a short-lived presigned
URL, so its bytes never reach the API at all (requests, curl -L and browsers follow it,
and drop our bearer token on the way, since the host differs). A zip of several files is
built while it is sent (zipstream-ng), each file read in bounded chunks: from disk, or by
ranged GETs from S3. Memory per download stays a chunk or so whatever the model's size.
Every download whose bytes pass through the API holds one of its owner's download slots
(api/download_slots.py) until it ends.
"""

from flask import Response, redirect, send_file
from werkzeug.http import dump_options_header
from zipstream import ZIP_STORED, ZipStream

from api.download_slots import hold_download

# How long a presigned URL may be used to start a download: a client follows the
# redirect at once; S3 checks this only when the GET starts, not while it runs.
PRESIGNED_URL_S = 60


def send_stored(stored, mimetype, download_name):
    """The response serving the StoredFile `stored` as an attachment `download_name`."""
    path = stored.local_path()
    if path is not None:
        hold_download()
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
    hold_download()
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
