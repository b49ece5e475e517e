"""API tokens: who is calling, and so whose corpora, jobs and models a request may see.

A token's name is its owner. Tokens come from TEXTGEN_API_TOKENS (Settings keeps only
their SHA-256) and from `textgen token create NAME`, which stores the SHA-256 in Redis and
shows the token once. A token itself is never stored or logged; the first characters of
its SHA-256 (its fingerprint) name it in `textgen token revoke`.

`textgen token rotate NAME --grace 1h` makes a new token and moves NAME's others to keys
that Redis expires when the grace period ends: clients move over in that time, and no
clock of ours has to remember to end it.
"""

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from shared.contracts.errors import ValidationError
from shared.runtime.settings import OWNER_NAME

TOKEN_PREFIX = "tg_"  # makes a leaked token easy to recognise (and to scan for)
_TOKEN_BYTES = 32  # 256 random bits
# Hex characters of the SHA-256 that name a token: 48 bits, so two tokens of one owner
# never share one in practice, and too few to help guess the token.
FINGERPRINT_CHARS = 12
LOCAL_OWNER = "local"  # the owner of the token `make up` creates when none is configured
TOKEN_FILE = "token"  # <data dir>/token: the local token, mode 0600


def token_digest(token):
    return hashlib.sha256(token.encode("utf-8", errors="surrogatepass")).hexdigest()


def fingerprint(token):
    return token_digest(token)[:FINGERPRINT_CHARS]


def check_owner_name(name):
    if not OWNER_NAME.match(name or ""):
        raise ValidationError("a token name is 1 to 64 letters, digits, '_', '.' or '-', "
                              "starting with a letter or digit", field="name")
    return name


class TokenStore:
    def __init__(self, redis_client, keys, configured=()):
        self.redis = redis_client
        self.keys = keys
        self.configured = tuple(configured)  # ((owner, digest), ...) from the environment

    def owner_of(self, token):
        """The owner of `token`, or None when it is not a token we know."""
        if not token:
            return None
        digest = token_digest(token)
        owner = None
        # Every configured digest is compared, in constant time, whichever matches.
        for name, known in self.configured:
            if hmac.compare_digest(known, digest):
                owner = name
        if owner is None:
            # A lookup by the digest: what it costs depends on the digest, which an
            # attacker cannot steer towards a valid token, not on the token's characters.
            owner = (self.redis.hget(self.keys.tokens(), digest)
                     or self.redis.get(self.keys.token_grace(digest)))
        return owner

    def is_configured(self, name):
        """True when `name` has a token in TEXTGEN_API_TOKENS (configuration, which no
        command can change)."""
        return any(owner == name for owner, _ in self.configured)

    def revoke(self, name, prefix=""):
        """Revoke `name`'s tokens in Redis (only those whose fingerprint starts with
        `prefix`, when given), in their grace period or not; their fingerprints."""
        digests = [d for d in self._current(name) if d.startswith(prefix)]
        grace_keys = {key: key.rsplit(":", 1)[1] for key in self._in_grace(name)
                      if key.rsplit(":", 1)[1].startswith(prefix)}
        pipe = self.redis.pipeline()
        for digest in digests:
            pipe.hdel(self.keys.tokens(), digest)
        for key in grace_keys:
            pipe.delete(key)
        pipe.execute()
        return sorted(d[:FINGERPRINT_CHARS] for d in digests + list(grace_keys.values()))

    def rotate(self, name, grace_s):
        """A new token for `name`; its others keep working for `grace_s`, then expire.
        Returns (the new token, the fingerprints of the tokens now in their grace)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
        old = self._current(check_owner_name(name))
        pipe = self.redis.pipeline()  # MULTI: never a moment with neither token working
        for digest in old:
            pipe.hdel(self.keys.tokens(), digest)
            if grace_s > 0:
                pipe.set(self.keys.token_grace(digest), name, ex=max(1, round(grace_s)))
        pipe.hset(self.keys.tokens(), token_digest(token), name)
        pipe.execute()
        return token, sorted(d[:FINGERPRINT_CHARS] for d in old)

    def _current(self, name):
        return [digest for digest, owner in self.redis.hscan_iter(self.keys.tokens())
                if owner == name]

    def _in_grace(self, name):
        # A scan of the key space: tokens in their grace are few and short-lived, and this
        # is an operator's command, not a request's path.
        keys = self.redis.scan_iter(match=self.keys.token_grace("*"), count=1000)
        return [key for key in keys if self.redis.get(key) == name]

    def create(self, name):
        """A new token for `name`: stored as its digest, returned once."""
        check_owner_name(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
        self.redis.hset(self.keys.tokens(), token_digest(token), name)
        return token

    def register(self, name, token):
        """Accept an existing `token` for `name` (the local token, after a Redis reset)."""
        self.redis.hset(self.keys.tokens(), token_digest(token), check_owner_name(name))

    def any_configured(self):
        return bool(self.configured) or self.redis.hlen(self.keys.tokens()) > 0


def local_token(tokens, data_dir):
    """The local stack's token: read from <data dir>/token, or created there (mode 0600).

    Returns (token, created): the caller prints a created token once. The token is
    registered again each time, so it survives a Redis that lost its data.
    """
    path = Path(data_dir) / TOKEN_FILE
    if path.is_file():
        token = path.read_text(encoding="utf-8").strip()
        tokens.register(LOCAL_OWNER, token)
        return token, False
    token = tokens.create(LOCAL_OWNER)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL with the mode set at creation: the token is never readable by others, not
    # even between a write and a chmod.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token, True
