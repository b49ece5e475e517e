"""The `textgen` command line: run the local stack, the demo, and talk to a running API.

    python -m client up                      the stack in the foreground (make up)
    python -m client demo                    upload, train, watch, generate (make demo)
    python -m client upload FILE             then: train CORPUS_ID, watch JOB_ID, generate MODEL_ID
"""

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from client.api_client import ApiError, Client
from client.progress import follow

DEFAULT_URL = "http://127.0.0.1:8000"


class _Stopped(Exception):
    """Raised from the signal handler so that `finally` blocks stop the stack."""


def _raise_stopped(signum, frame):
    raise _Stopped(signal.Signals(signum).name)


def _data_dir():
    return Path(os.environ.get("TEXTGEN_DATA_DIR", "./data"))


def _stack_from_env():
    from client.stack import LocalStack  # runs the server: loaded only by up and demo

    return LocalStack(data_dir=_data_dir(),
                      port=int(os.environ.get("TEXTGEN_PORT", "8000")),
                      redis_url=os.environ.get("REDIS_URL") or None)


def cmd_up(args):
    stack = _stack_from_env()
    try:
        stack.start()
        from shared.settings import redacted

        redis_note = ("embedded Redis" if "REDIS_URL" not in os.environ
                      else redacted(stack.redis_url))
        print(f"textgen API ready at {stack.url} ({redis_note}; data in {stack.data_dir}; "
              f"logs in {stack.log_dir}). Ctrl-C stops it.", flush=True)
        if stack.token_created:
            print(f"created a local API token, shown once (also in "
                  f"{stack.data_dir / 'token'}, mode 0600): {stack.token}", flush=True)
        elif stack.token:
            print(f"API token: in {stack.data_dir / 'token'}", flush=True)
        while True:  # the stack's supervisor restarts a child that dies
            time.sleep(1)
    except _Stopped:
        print("stopping textgen...", flush=True)
    finally:
        stack.stop()
    return 0


def cmd_demo(args):
    from client.demo import run_demo

    return run_demo()


def _token(args):
    """--token, else TEXTGEN_TOKEN, else the local stack's <data dir>/token."""
    if args.token:
        return args.token
    if os.environ.get("TEXTGEN_TOKEN"):
        return os.environ["TEXTGEN_TOKEN"]
    path = _data_dir() / "token"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def _client(args):
    return Client(args.url, token=_token(args))


def cmd_token_create(args):
    """A new token for NAME, made where the server's Redis is reachable (REDIS_URL)."""
    from shared.services import Services
    from shared.settings import Settings

    token = Services.from_settings(Settings.from_env()).tokens.create(args.name)
    print(token)
    print(f"token for {args.name}, shown once: keep it secret", file=sys.stderr)
    return 0


def cmd_upload(args):
    print(json.dumps(_client(args).upload_corpus(Path(args.file), args.name), indent=2))
    return 0


def cmd_train(args):
    training = {"epochs": args.epochs} if args.epochs else {}
    if args.max_seconds:
        training["max_seconds"] = args.max_seconds
    job = _client(args).train(args.corpus_id, args.preset, training=training)
    print(job["id"])
    return cmd_watch(argparse.Namespace(url=args.url, job_id=job["id"])) if args.watch else 0


def cmd_watch(args):
    job = follow(_client(args), args.job_id)
    print(json.dumps({k: job[k] for k in ("id", "status", "result", "error")}, indent=2))
    return 0 if job["status"] == "succeeded" else 1


def cmd_generate(args):
    client = _client(args)
    job = client.generate(args.model_id, prompt=args.prompt, length=args.length,
                          temperature=args.temperature, num_samples=args.num_samples)
    job = client.wait(job["id"], poll_s=0.3)
    if job["status"] != "succeeded":
        print(json.dumps(job["error"]), file=sys.stderr)
        return 1
    for sample in job["result"]["samples"]:
        print(sample["text"])  # the prompt, then what the model wrote
        print("---")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="textgen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("TEXTGEN_URL", DEFAULT_URL),
                        help="API base URL (TEXTGEN_URL)")
    parser.add_argument("--token", help="API token (TEXTGEN_TOKEN, else <data dir>/token)")
    sub = parser.add_subparsers(dest="command", required=True)
    token = sub.add_parser("token", help="manage API tokens (needs REDIS_URL)")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    p = token_sub.add_parser("create", help="create a token for NAME and print it once")
    p.add_argument("name")
    p.set_defaults(func=cmd_token_create)
    sub.add_parser("up", help="run the local stack until Ctrl-C").set_defaults(func=cmd_up)
    sub.add_parser("demo", help="train on a book and print generated text").set_defaults(
        func=cmd_demo)
    p = sub.add_parser("upload", help="upload a corpus")
    p.add_argument("file")
    p.add_argument("--name")
    p.set_defaults(func=cmd_upload)
    p = sub.add_parser("train", help="submit a training job")
    p.add_argument("corpus_id")
    p.add_argument("--preset", default="default", choices=("default", "seed"))
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-seconds", type=float)
    p.add_argument("--watch", action="store_true", help="follow its progress")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("watch", help="follow a job until it ends")
    p.add_argument("job_id")
    p.set_defaults(func=cmd_watch)
    p = sub.add_parser("generate", help="generate text from a model")
    p.add_argument("model_id")
    p.add_argument("--prompt", default="")
    p.add_argument("--length", type=int, default=300)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--num-samples", type=int, default=1)
    p.set_defaults(func=cmd_generate)
    return parser


def main(argv=None):
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_stopped)
    signal.signal(signal.SIGINT, _raise_stopped)
    try:
        return args.func(args)
    except ApiError as e:
        print(f"textgen: {e}", file=sys.stderr)
        return 1
    except _Stopped:
        return 130
