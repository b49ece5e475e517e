"""Where the command line connects and how it prints: the API's URL and token from the
options, the environment or the local stack's data directory; JSON or plain text."""

import json
import os
import sys
from pathlib import Path

from client.api_client import Client


def data_dir():
    return Path(os.environ.get("TEXTGEN_DATA_DIR", "./data"))


# <data dir>/stack.json: what a running `make up` says of itself (written by
# shared/stack/runner.py, which the client never imports: the file is the contract).
STACK_FILE = "stack.json"


def api_url(args):
    """--url, else TEXTGEN_URL, else the local stack: on TEXTGEN_PORT, else where the one
    running on the data directory said it listens, else on port 8000."""
    if getattr(args, "url", None) or os.environ.get("TEXTGEN_URL"):
        return getattr(args, "url", None) or os.environ["TEXTGEN_URL"]
    if not os.environ.get("TEXTGEN_PORT"):
        try:
            return json.loads((data_dir() / STACK_FILE).read_text(encoding="utf-8"))["url"]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no stack runs here (or an old file): the default port
    return f"http://127.0.0.1:{os.environ.get('TEXTGEN_PORT', '8000')}"


def token_file():
    return data_dir() / "token"


def api_token(args):
    """(token, where it came from): --token, else TEXTGEN_TOKEN, else the local stack's
    <data dir>/token; (None, None) when none of them has one."""
    if getattr(args, "token", None):
        return args.token, "--token"
    if os.environ.get("TEXTGEN_TOKEN"):
        return os.environ["TEXTGEN_TOKEN"], "TEXTGEN_TOKEN"
    path = token_file()
    if path.is_file():
        return path.read_text(encoding="utf-8").strip(), str(path)
    return None, None


def token_hint(args):
    """What to tell a user whose request was refused as unauthorized: where the token was
    looked for, and how to set one."""
    token, source = api_token(args)
    how = ("set TEXTGEN_TOKEN (export TEXTGEN_TOKEN=$(cat DATA_DIR/token) for a local "
           "stack's) or pass --token")
    if token is None:
        return (f"no token found in --token, TEXTGEN_TOKEN or {token_file().resolve()} "
                f"(the local stack's; TEXTGEN_DATA_DIR sets its directory): {how}")
    return f"the token from {source} was refused: {how} with a valid one"


def client(args):
    return Client(api_url(args), token=api_token(args)[0])


def emit(args, value, lines):
    """`value` as JSON with --json, else `lines` (a string or a list of them)."""
    if args.json:
        print(json.dumps(value, indent=2, ensure_ascii=False))
    else:
        print(lines if isinstance(lines, str) else "\n".join(lines))


def note(text):
    """A remark for the person watching: stderr, so stdout stays the answer."""
    print(text, file=sys.stderr)


def table(header, rows):
    """A header row, then rows of cells, as aligned columns (plain text: no box, no
    colour); no rows, no header either."""
    if not rows:
        return []
    rows = [["-" if cell is None else str(cell) for cell in row]
            for row in [header, *rows]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            .rstrip() for row in rows]


def confirm(question):
    """On a terminal, ask `question` and return True for yes; off one, True (scripts
    that pipe stdin have no one to answer, and say what they mean)."""
    if not sys.stdin.isatty():
        return True
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def num(value, spec=".3f"):
    return None if value is None else format(value, spec)
