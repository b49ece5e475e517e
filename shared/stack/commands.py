"""The `textgen` commands that run server code on this machine: `up` and `demo` (the local
stack) and `token ...` (writes to the server's Redis). client/cli.py declares them and
loads this module by name when one runs: a client installed alone has none of it.
"""

import json
import os
import signal
import sys
import time

import redis

from client.cli_io import data_dir
from client.commands import EXIT_INTERRUPTED, EXIT_OK
from client.errors import ClientError
from shared.stores.auth import fingerprint
from shared.contracts.errors import ConfigError, ValidationError
from shared.runtime.services import Services
from shared.runtime.settings import Settings, redacted
from shared.stack.demo import run_demo
from shared.stack.runner import STOP_GRACE_S, LocalStack, StackError, running_stack


class _Stopped(Exception):
    """Raised from the signal handler so that `finally` blocks stop the stack."""


def _raise_stopped(signum, frame):
    # Said at once, before the stop that may take seconds; a further Ctrl-C only says it
    # again: cutting the stop short would leave processes behind.
    signal.signal(signal.SIGTERM, _still_stopping)
    signal.signal(signal.SIGINT, _still_stopping)
    print(f"stopping textgen (within {STOP_GRACE_S:.0f} s; a job still running resumes "
          "from its last checkpoint when the stack runs again)...", flush=True)
    raise _Stopped(signal.Signals(signum).name)


def _still_stopping(signum, frame):
    print("still stopping...", flush=True)


def _stop_on_signals():
    # Ctrl-C and SIGTERM both stop the stack in order (shared/stack/runner.py), never halfway.
    signal.signal(signal.SIGTERM, _raise_stopped)
    signal.signal(signal.SIGINT, _raise_stopped)


def _stack_from_env():
    return LocalStack(data_dir=data_dir(), port=int(os.environ.get("TEXTGEN_PORT", "8000")),
                      redis_url=os.environ.get("REDIS_URL") or None)


def up(args):
    _stop_on_signals()
    stack = _stack_from_env()
    try:
        stack.start()
        redis_note = ("embedded Redis" if "REDIS_URL" not in os.environ
                      else redacted(stack.redis_url))
        print(f"textgen API ready at {stack.url} ({redis_note}; data in {stack.data_dir}; "
              f"logs in {stack.log_dir}). Ctrl-C stops it.", flush=True)
        if stack.token_created:
            print(f"created a local API token, shown once (also in "
                  f"{stack.data_dir / 'token'}, mode 0600): {stack.token}", flush=True)
        elif stack.token:
            print(f"API token: in {stack.data_dir / 'token'}", flush=True)
        print(f"dashboard: {stack.url}/; in another terminal: .venv/bin/textgen --help "
              "(a token for someone else: .venv/bin/textgen token create NAME)", flush=True)
        while True:  # the stack's supervisor restarts a child that dies
            time.sleep(1)
    except _Stopped:
        pass  # said so in _raise_stopped; `finally` stops the stack
    except StackError as e:
        print(f"textgen: {e}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
    return EXIT_OK


def demo(args):
    _stop_on_signals()
    try:
        return run_demo()
    except StackError as e:
        print(f"textgen: {e}", file=sys.stderr)
        return 1
    except _Stopped:
        return EXIT_INTERRUPTED


def _services():
    """The server's Services for a command that writes to its Redis: REDIS_URL's, else
    that of the local stack running on the data directory (`make up` says where in
    <data dir>/stack.json). Raises ClientError, in one line, when neither is there."""
    env = dict(os.environ)
    if not env.get("REDIS_URL"):
        stack = running_stack(data_dir())
        if stack is None:
            raise ClientError(f"no local stack runs on {data_dir().resolve()} and REDIS_URL "
                              "is not set: start one (make up), run this in the directory "
                              "you ran it from (or set TEXTGEN_DATA_DIR to its data), or set "
                              "REDIS_URL to the server's Redis")
        env["REDIS_URL"] = stack["redis_url"]
        if stack.get("redis_prefix"):
            env.setdefault("TEXTGEN_REDIS_PREFIX", stack["redis_prefix"])
    try:
        services = Services.from_settings(Settings.from_env(env))
        services.redis.ping()
    except ConfigError as e:
        raise ClientError(str(e)) from e
    except redis.RedisError as e:
        raise ClientError(f"cannot reach the server's Redis at {redacted(env['REDIS_URL'])} "
                          f"({type(e).__name__}); is the stack running?") from e
    return services


def _configured_note(name):
    return (f"{name} has a token in TEXTGEN_API_TOKENS: that one is configuration, which "
            f"no command can change. Remove (or replace) {name}'s entry there, then restart "
            "the API")


def token_create(args):
    """A new token for NAME, made in the server's Redis (_services)."""
    services = _services()
    token = services.tokens.create(args.name)
    secret = services.webhooks.secret(args.name)
    if args.json:
        print(json.dumps({"owner": args.name, "token": token, "fingerprint": fingerprint(token),
                          "webhook_secret": secret}))
        return EXIT_OK
    print(token)
    print(f"token for {args.name} (fingerprint {fingerprint(token)}), shown once: keep it "
          "secret", file=sys.stderr)
    print(f"webhook secret of {args.name} (it signs the webhooks sent for {args.name}'s "
          f"jobs: check webhook-signature with it): {secret}", file=sys.stderr)
    return EXIT_OK


def token_revoke(args):
    """Revoke NAME's tokens in Redis, or the one whose fingerprint starts with FINGERPRINT."""
    services = _services()
    prefix = (args.fingerprint or "").lower()
    revoked = services.tokens.revoke(args.name, prefix)
    configured = services.tokens.is_configured(args.name)
    if args.json:
        print(json.dumps({"owner": args.name, "revoked": revoked,
                          "configured_token_remains": configured}))
    else:
        for item in revoked:
            print(item)
        print(f"revoked {len(revoked)} token(s) of {args.name}", file=sys.stderr)
    if configured and not prefix:
        raise ClientError(_configured_note(args.name))
    if not revoked:
        which = f"whose fingerprint starts with {prefix}" if prefix else "in Redis"
        raise ClientError(f"{args.name} has no token {which}")
    return EXIT_OK


def token_rotate(args):
    """A new token for NAME; NAME's other tokens keep working for --grace, then expire."""
    services = _services()
    if services.tokens.is_configured(args.name):
        raise ClientError(_configured_note(args.name) + f" (an entry {args.name}:NEW beside "
                          "the old one lets both work while clients move)")
    try:
        token, old = services.tokens.rotate(args.name, args.grace)
    except ValidationError as e:
        raise ClientError(e.message) from e
    if args.json:
        print(json.dumps({"owner": args.name, "token": token, "fingerprint": fingerprint(token),
                          "grace_s": args.grace, "old": old}))
        return EXIT_OK
    print(token)
    print(f"new token for {args.name} (fingerprint {fingerprint(token)}), shown once: keep it "
          f"secret; the old one(s) ({', '.join(old) or 'none'}) work for "
          f"{_duration_text(args.grace)} more", file=sys.stderr)
    return EXIT_OK


def rotate_webhook_secret(args):
    """A new webhook signing secret for NAME; both sign deliveries for --grace."""
    services = _services()
    secret = services.webhooks.rotate_secret(args.name, args.grace)
    if args.json:
        print(json.dumps({"owner": args.name, "webhook_secret": secret, "grace_s": args.grace}))
        return EXIT_OK
    print(secret)
    print(f"new webhook secret of {args.name}; for {_duration_text(args.grace)} "
          "webhook-signature carries a signature by the old secret too (space-separated): "
          "a receiver that accepts either moves over without missing a delivery",
          file=sys.stderr)
    return EXIT_OK


def _duration_text(seconds):
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:g}s"
