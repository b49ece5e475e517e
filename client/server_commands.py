"""The commands that run server code on this machine: `up` and `demo` (the local stack) and
`token create` (writes to the server's Redis). The server's modules are imported inside
them, so every other command runs without Redis or TensorFlow installed.
"""

import json
import os
import signal
import sys
import time

from client.cli_io import data_dir
from client.commands import EXIT_INTERRUPTED, EXIT_OK


class _Stopped(Exception):
    """Raised from the signal handler so that `finally` blocks stop the stack."""


def _raise_stopped(signum, frame):
    raise _Stopped(signal.Signals(signum).name)


def _stop_on_signals():
    # Ctrl-C and SIGTERM both stop the stack in order (client/stack.py), never halfway.
    signal.signal(signal.SIGTERM, _raise_stopped)
    signal.signal(signal.SIGINT, _raise_stopped)


def _stack_from_env():
    from client.stack import LocalStack  # the server's code: loaded only by up and demo

    return LocalStack(data_dir=data_dir(), port=int(os.environ.get("TEXTGEN_PORT", "8000")),
                      redis_url=os.environ.get("REDIS_URL") or None)


def up(args):
    from client.stack import StackError

    _stop_on_signals()
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
    except StackError as e:
        print(f"textgen: {e}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
    return EXIT_OK


def demo(args):
    from client.demo import run_demo
    from client.stack import StackError

    _stop_on_signals()
    try:
        return run_demo()
    except StackError as e:
        print(f"textgen: {e}", file=sys.stderr)
        return 1
    except _Stopped:
        return EXIT_INTERRUPTED


def token_create(args):
    """A new token for NAME, made where the server's Redis is reachable (REDIS_URL)."""
    from shared.services import Services
    from shared.settings import Settings

    services = Services.from_settings(Settings.from_env())
    token = services.tokens.create(args.name)
    secret = services.webhooks.secret(args.name)
    if args.json:
        print(json.dumps({"owner": args.name, "token": token, "webhook_secret": secret}))
        return EXIT_OK
    print(token)
    print(f"token for {args.name}, shown once: keep it secret", file=sys.stderr)
    print(f"webhook secret of {args.name} (it signs the webhooks sent for {args.name}'s "
          f"jobs: check webhook-signature with it): {secret}", file=sys.stderr)
    return EXIT_OK
