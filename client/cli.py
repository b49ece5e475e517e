"""The `textgen` command line: talks to any textgen API and, in a checkout, runs the local
stack.

    textgen train book.txt --epochs 5 --follow     upload (or reuse), train, watch it
    textgen generate mdl_... --prompt "The " --num-samples 3
    textgen generate mdl_... --prompt "The " --stream   print the text as it comes
    textgen jobs | models | corpora | status JOB | events JOB | plot JOB -o loss.png
    textgen presets | whoami                       the recipes offered; your quotas

The API is --url, else TEXTGEN_URL, else the local stack (port TEXTGEN_PORT, else the one a
running `make up` noted in <data dir>/stack.json, else 8000); the token is --token, else
TEXTGEN_TOKEN, else <data dir>/token (the local stack's; TEXTGEN_DATA_DIR, ./data by
default). Every command takes --json. Only `up`, `demo` and `token ...` load the
server's code (shared/stack/commands.py), and only when run: a client installed alone
(`pip install .`) has none of it, and those three say how to get it.
"""

import argparse
import codecs
import importlib
import sys
from pathlib import Path

from client import about, commands, evaluate, sweep
from client.cli_io import token_hint
from client.errors import ApiError, ClientError

EXIT_FAILED = 1  # the API refused, or the job did not succeed
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report it


def backslash_escapes(text):
    """`--stop '\\n\\n'` as a shell passes it (backslash, n) means a blank line, as printf
    reads it. Python's own escape codec does the decoding; `backslashreplace` first writes
    any non-Latin-1 character as an escape that the codec turns back into itself."""
    return codecs.decode(text.encode("latin-1", "backslashreplace"), "unicode_escape")


# A grace period: a number with a unit (s, m, h, d), or seconds; at most 30 days, past
# which a rotated-out token would be a second token in all but name.
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_GRACE_S = 30 * 86400


def grace_period(text):
    """argparse type: "90s", "30m", "1h", "2d" or seconds -> seconds."""
    unit = text[-1:].lower() if text[-1:].isalpha() else "s"
    number = text[:-1] if text[-1:].isalpha() else text
    try:
        seconds = float(number) * _UNITS_S[unit]
    except (KeyError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r}: a duration such as 90s, 30m, 1h or 2d") from None
    if not 0 <= seconds <= MAX_GRACE_S:
        raise argparse.ArgumentTypeError(f"{text!r}: from 0 to 30 days")
    return seconds


# The module of the commands that run the server's code. Named, never imported: the client
# carries none of the server, whose code a checkout's `make` puts beside it in .venv.
SERVER_COMMANDS = "shared.stack.commands"


def server_command(name):
    """The command `name` of SERVER_COMMANDS, loaded when it runs; where the server's code
    is missing, a ClientError that says how to get it."""
    def run(args):
        try:
            module = importlib.import_module(SERVER_COMMANDS)
        except ModuleNotFoundError as e:
            what = " ".join(filter(None, (args.command, getattr(args, "token_command", None))))
            if e.name is not None and f"{SERVER_COMMANDS}.".startswith(f"{e.name}."):
                raise ClientError(
                    f"`textgen {what}` runs the server's code, which this installation (the "
                    "client alone) does not have: clone the textgen repository and run "
                    "`make up` (or `make demo`) there; then `.venv/bin/textgen token ...` "
                    "works in that checkout") from None
            raise ClientError(f"`textgen {what}` needs the server's dependencies (no module "
                              f"named {e.name}): run `make` in the checkout, which installs "
                              "them into .venv") from None
        return getattr(module, name)(args)
    return run


def _common_options():
    # SUPPRESS: the options may come before or after the command without one hiding the
    # other (argparse would otherwise let the subcommand's default overwrite it).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS,
                        help="the API (TEXTGEN_URL; default the local stack)")
    common.add_argument("--token", default=argparse.SUPPRESS,
                        help="API token (TEXTGEN_TOKEN, else <data dir>/token)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON (a stream of events: one JSON object a line)")
    return common


def build_parser():
    common = _common_options()
    parser = argparse.ArgumentParser(prog="textgen", description=__doc__, parents=[common],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, func, help_text, **kwargs):
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common],
                           **kwargs)
        p.set_defaults(func=func)
        return p

    command("up", server_command("up"), "run the local stack (API, workers, Redis) until Ctrl-C")
    command("demo", server_command("demo"), "the whole loop on the local stack: a book, "
            "training, text")
    token = command("token", None, "manage API tokens (server side: REDIS_URL, else the "
                    "running make up's Redis)")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    p = token_sub.add_parser("create", parents=[common], help="create a token for NAME "
                             "and print it once, with NAME's webhook signing secret")
    p.add_argument("name")
    p.set_defaults(func=server_command("token_create"))
    p = token_sub.add_parser("revoke", parents=[common], help="revoke NAME's tokens, or the "
                             "one whose fingerprint (shown when it was made) starts so")
    p.add_argument("name")
    p.add_argument("fingerprint", nargs="?")
    p.set_defaults(func=server_command("token_revoke"))
    grace = {"type": grace_period, "default": "1h", "metavar": "DURATION",
             "help": "how long the old one keeps working: 90s, 30m, 1h, 2d, 0 (default 1h)"}
    p = token_sub.add_parser("rotate", parents=[common], help="a new token for NAME, printed "
                             "once; NAME's other tokens work for --grace, then expire")
    p.add_argument("name")
    p.add_argument("--grace", **grace)
    p.set_defaults(func=server_command("token_rotate"))
    p = token_sub.add_parser("rotate-webhook-secret", parents=[common], help="a new webhook "
                             "signing secret for NAME; deliveries carry both signatures "
                             "for --grace")
    p.add_argument("name")
    p.add_argument("--grace", **grace)
    p.set_defaults(func=server_command("rotate_webhook_secret"))

    command("health", commands.health, "is the API up, and how many workers answer")
    command("presets", about.presets, "the training presets and what each is for "
            "(--json: their full specs)")
    command("whoami", about.whoami, "your owner name, your quotas and what you use of them")
    p = command("upload", commands.upload, "upload a text file (or reuse the corpus of the "
                "same bytes) and print the corpus id")
    p.add_argument("file", type=Path)
    p.add_argument("--name", help="the corpus's name (default: the file's)")

    p = command("train", commands.train, "train a model on a file or a corpus; print the "
                "job id (--follow: watch it)")
    p.add_argument("source", metavar="FILE_OR_CORPUS_ID")
    p.add_argument("--preset", default="default", choices=("default", "seed"))
    p.add_argument("--epochs", type=int)
    p.add_argument("--units", type=int, help="LSTM units per layer")
    p.add_argument("--layers", type=int, help="stacked LSTM layers")
    p.add_argument("--seq-length", type=int, help="tokens per training window")
    p.add_argument("--max-seconds", type=float, help="wall-clock budget for training")
    p.add_argument("--init-from", metavar="MODEL", help="continue training this model")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="any other spec field, VALUE as JSON: --set training.batch_size=16")
    p.add_argument("--follow", action="store_true", help="show progress until it ends")

    p = command("jobs", commands.jobs, "list your jobs, newest first")
    p.add_argument("--status", choices=("queued", "running", "succeeded", "failed",
                                        "cancelled"))
    p.add_argument("--type", choices=("train", "generate", "evaluate"))
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p = command("status", commands.status, "show a job (--follow: watch it until it ends)")
    p.add_argument("job_id", metavar="JOB")
    p.add_argument("--follow", action="store_true")
    p = command("events", commands.events, "print a job's events (--follow: live, until "
                "the job ends)")
    p.add_argument("job_id", metavar="JOB")
    p.add_argument("--follow", action="store_true")
    p = command("samples", commands.samples, "print every sample of a generation job "
                "that succeeded")
    p.add_argument("job_id", metavar="JOB")
    p = command("cancel", commands.cancel, "cancel a queued or running job")
    p.add_argument("job_id", metavar="JOB")

    for name, func, what in (("models", commands.models, "models"),
                             ("corpora", commands.corpora, "corpora")):
        p = command(name, func, f"list your {what}, newest first")
        p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p = command("download", commands.download, "download a model's files into a directory")
    p.add_argument("model_id", metavar="MODEL")
    p.add_argument("-o", "--output", type=Path, metavar="DIR",
                   help="where to put them (default ./MODEL)")
    p = command("delete", commands.delete, "delete a corpus, a model or a finished job "
                "(its id says which: cor_, mdl_, job_); asks first on a terminal")
    p.add_argument("target", nargs="+", metavar="[KIND] ID",
                   help="the id, or the kind (corpus, model, job) and then the id")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask")

    p = command("generate", commands.generate, "generate text from a model and print it")
    p.add_argument("model_id", metavar="MODEL")
    p.add_argument("--prompt", help="text every sample starts with")
    p.add_argument("--length", type=int, help="characters (or words) after the prompt")
    p.add_argument("--temperature", type=float, nargs="+", metavar="T",
                   help="one or more (num-samples samples each); 0 is greedy")
    p.add_argument("--top-k", type=int, metavar="K",
                   help="sample only from the K likeliest next characters")
    p.add_argument("--top-p", type=float, metavar="P",
                   help="sample only from the likeliest characters whose chances add up "
                        "to P (nucleus sampling)")
    p.add_argument("--stop", metavar="TEXT", type=backslash_escapes,
                   help="end a sample where TEXT first appears; \\n and \\t are a newline "
                        "and a tab, as printf reads them (--stop '\\n\\n': a blank line)")
    p.add_argument("--num-samples", type=int, help="samples per temperature")
    p.add_argument("--seed", type=int, help="same seed, same text")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--stream", action="store_true", help="print the text as it is "
                     "generated, one sample after another")
    how.add_argument("--no-wait", action="store_true", help="print the job id and return")

    p = command("evaluate", evaluate.evaluate, "score models side by side on a corpus or "
                "a file: bits per character, what was scored, what they never saw")
    p.add_argument("model_ids", metavar="MODEL", nargs="+")
    text = p.add_mutually_exclusive_group(required=True)
    text.add_argument("--corpus", metavar="CORPUS", help="a corpus id: its held-out tail "
                      "(--all: all of it)")
    text.add_argument("--file", type=Path, help="a text file: uploaded as a corpus (or the "
                      "same bytes' corpus reused) and scored whole")
    p.add_argument("--all", action="store_true", help="with --corpus: the whole corpus")
    p.add_argument("--holdout", type=float, metavar="FRACTION",
                   help="with --corpus: the share of its end to score")

    p = command("sweep", sweep.sweep, "search spec fields for the lowest validation loss: "
                "textgen sweep CORPUS --set model.units=64,128 --set "
                "training.learning_rate=log:1e-3:3e-2; textgen sweep status|cancel SWEEP")
    p.add_argument("target", nargs="+", metavar="TARGET", help="a file or a corpus id to "
                   "sweep on; or status SWEEP, cancel SWEEP")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUES",
                   help="a field to sweep: a,b,c (a choice), log:LOW:HIGH or range:LOW:HIGH")
    p.add_argument("--base", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="a field of the base spec, VALUE as JSON: --base model.layers=1")
    p.add_argument("--preset", choices=("default", "seed"))
    p.add_argument("--trials", type=int, help="trials to run (default 10)")
    p.add_argument("--trial-seconds", type=float, default=60.0,
                   help="each trial's training budget (default 60)")
    p.add_argument("--budget-seconds", type=float, help="the whole sweep's budget")
    p.add_argument("--final-fraction", type=float, help="the budget's share kept to continue "
                   "the best trial alone, once the trials are done (default 0.5; 0: none)")
    p.add_argument("--parallel", type=int, help="trials queued or running at once "
                   "(default 2)")
    p.add_argument("--follow", action="store_true", help="print the table of trials as "
                   "they move, until the sweep ends")

    p = command("plot", commands.plot, "plot a training job's losses per epoch as a PNG")
    p.add_argument("job_id", metavar="JOB")
    p.add_argument("-o", "--output", type=Path, default=Path("loss.png"), metavar="PNG")
    return parser


def main(argv=None):
    # Text the API returns (samples, names) is printed as is; an unencodable character
    # must not end the command.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    args.json = getattr(args, "json", False)
    try:
        return args.func(args)
    except ApiError as e:
        hint = f"; {token_hint(args)}" if e.status == 401 else ""
        print(f"textgen: {e}{hint}", file=sys.stderr)
        return EXIT_FAILED
    except ClientError as e:
        print(f"textgen: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `textgen jobs | head`: the reader left, nothing to say
        sys.stderr.close()
        return EXIT_FAILED
