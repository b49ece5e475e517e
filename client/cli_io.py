"""Where the command line connects and how it prints: the API's URL and token from the
options, the environment or the local stack's data directory; JSON or plain text."""

import json
import os
import sys
from pathlib import Path

from client.api_client import Client


def data_dir():
    return Path(os.environ.get("TEXTGEN_DATA_DIR", "./data"))


def api_url(args):
    """--url, else TEXTGEN_URL, else the local stack's port."""
    return (getattr(args, "url", None) or os.environ.get("TEXTGEN_URL")
            or f"http://127.0.0.1:{os.environ.get('TEXTGEN_PORT', '8000')}")


def api_token(args):
    """--token, else TEXTGEN_TOKEN, else the local stack's <data dir>/token."""
    if getattr(args, "token", None):
        return args.token
    if os.environ.get("TEXTGEN_TOKEN"):
        return os.environ["TEXTGEN_TOKEN"]
    path = data_dir() / "token"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def client(args):
    return Client(api_url(args), token=api_token(args))


def emit(args, value, lines):
    """`value` as JSON with --json, else `lines` (a string or a list of them)."""
    if args.json:
        print(json.dumps(value, indent=2, ensure_ascii=False))
    else:
        print(lines if isinstance(lines, str) else "\n".join(lines))


def note(text):
    """A remark for the person watching: stderr, so stdout stays the answer."""
    print(text, file=sys.stderr)


def table(rows):
    """Rows of cells as aligned columns (plain text: no box, no colour)."""
    rows = [["-" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            .rstrip() for row in rows]


def num(value, spec=".3f"):
    return None if value is None else format(value, spec)
