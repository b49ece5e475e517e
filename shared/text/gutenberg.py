"""Fetching one Project Gutenberg book for POST /v1/corpora {"gutenberg_id": n}.

The user names a book number, never a URL: the URL comes from the operator's setting
(TEXTGEN_GUTENBERG_URL, Gutenberg's HTTPS mirror by default), so the server cannot be
turned against its own network. Each fetch is capped in size (the upload limit) and in
time; the header and licence that Gutenberg wraps every book in are stripped.
"""

import re
import time
import urllib.error
import urllib.request

from shared.contracts.errors import CorpusRejectedError, NotFoundError, ServiceUnavailableError

FRANKENSTEIN_EBOOK = 84
FETCH_TIMEOUT_S = 30.0  # the whole download: a request should not hang on a slow mirror
_CHUNK_BYTES = 64 * 1024

# Gutenberg wraps every book in "*** START OF THE PROJECT GUTENBERG EBOOK ... ***" and
# "*** END OF THE PROJECT GUTENBERG EBOOK ... ***" lines (older files say "THIS PROJECT").
_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.M | re.I)
_END = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.M | re.I)


def strip_gutenberg(text):
    """The book between Gutenberg's start and end markers (the whole text if none)."""
    start = _START.search(text)
    end = _END.search(text, start.end() if start else 0)
    body = text[start.end() if start else 0:end.start() if end else len(text)]
    return body.strip() + "\n"


def fetch_book(ebook, url_template, max_bytes, timeout_s=None):
    """The raw bytes of book `ebook`, at most `max_bytes`, within `timeout_s` in all
    (FETCH_TIMEOUT_S by default)."""
    timeout_s = timeout_s or FETCH_TIMEOUT_S
    url = url_template.format(n=int(ebook))
    deadline = time.monotonic() + timeout_s
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            chunks, size = [], 0
            while chunk := response.read1(_CHUNK_BYTES):  # what has arrived, not a full chunk
                size += len(chunk)
                if size > max_bytes:
                    raise CorpusRejectedError(
                        f"Gutenberg book {ebook} is larger than the upload limit of "
                        f"{max_bytes / 2**20:g} MB (TEXTGEN_MAX_UPLOAD_MB)",
                        field="gutenberg_id")
                if time.monotonic() > deadline:
                    raise ServiceUnavailableError(
                        f"Project Gutenberg did not send book {ebook} within "
                        f"{timeout_s:g} s; try again later")
                chunks.append(chunk)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise NotFoundError(f"Project Gutenberg has no book {ebook}",
                                field="gutenberg_id") from e
        raise ServiceUnavailableError(
            f"Project Gutenberg answered {e.code} for book {ebook}; try again later") from e
    except (urllib.error.URLError, OSError) as e:  # offline, DNS, refused, timed out
        raise ServiceUnavailableError(
            f"cannot reach Project Gutenberg to fetch book {ebook} (no network?); upload "
            "the text as a file instead") from e
    return b"".join(chunks)
