"""Who is calling: every /v1 request but the public ones carries `Authorization: Bearer`.

The owner found here is the only one whose records a request can read or change; the
stores answer another owner's ids as not found (shared/stores/records.py, shared/stores/jobs.py).
"""

from flask import g, request

from api.context import services
from shared.contracts.errors import UnauthorizedError

PUBLIC = {"/v1/health", "/v1/openapi.json"}


def require_token():
    """A before_request hook: sets g.owner, or answers 401."""
    if not request.path.startswith("/v1/") or request.path in PUBLIC:
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("send your API token as 'Authorization: Bearer <token>'")
    owner = services().tokens.owner_of(token.strip())
    if owner is None:
        raise UnauthorizedError("the token is not valid")
    g.owner = owner


def current_owner():
    return g.owner
