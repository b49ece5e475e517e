"""Fetching a Project Gutenberg book once and stripping its header and licence trailer."""

import re
import urllib.error
import urllib.request
from pathlib import Path

from shared.local_files import write_text_atomic

FRANKENSTEIN_EBOOK = 84
_URL = "https://www.gutenberg.org/cache/epub/{n}/pg{n}.txt"
_DOWNLOAD_TIMEOUT_S = 30

# Gutenberg wraps every book in "*** START OF THE PROJECT GUTENBERG EBOOK ... ***" and
# "*** END OF THE PROJECT GUTENBERG EBOOK ... ***" lines (older files say "THIS PROJECT").
_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.M | re.I)
_END = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.M | re.I)


class DownloadError(Exception):
    """Raised when a book cannot be fetched (no network, or Gutenberg unreachable)."""


def strip_gutenberg(text):
    """The book between Gutenberg's start and end markers (the whole text if none)."""
    start = _START.search(text)
    end = _END.search(text, start.end() if start else 0)
    body = text[start.end() if start else 0:end.start() if end else len(text)]
    return body.strip() + "\n"


def fetch_book(ebook, cache_dir):
    """Path of the stripped book, downloaded once into `cache_dir`."""
    path = Path(cache_dir) / f"gutenberg-{ebook}.txt"
    if path.exists():
        return path
    url = _URL.format(n=ebook)
    try:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            raw = response.read()
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"could not download {url}: {e}") from e
    write_text_atomic(path, strip_gutenberg(raw.decode("utf-8-sig").replace("\r\n", "\n")))
    return path
