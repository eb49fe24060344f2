"""API-key authentication and the rule that an open server (no keys) stays on loopback.

- No active keys: every caller is in the `default` project; any Bearer key, or none, is accepted.
- Once `tuneforge keys create` has made a key: every /v1 request needs `Authorization: Bearer <key>`
  with an active key, and the caller sees only its key's project (others' objects answer 404).
- A request that arrives on a non-loopback address needs a key even while none exist (checked per
  request in `api/guard.py`, so the app run under plain uvicorn is as closed as `tuneforge serve`);
  `app.state.require_keys` forces the same for every request.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Request
from fastapi.security import HTTPBearer

from tuneforge.api.errors import APIError
from tuneforge.store.keys import KeyStore, mask_key

DEFAULT_PROJECT = "default"

# Declared as a security scheme so the OpenAPI schema (and /docs) show how to authenticate.
bearer_scheme = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`. Any value "
                           "works while no keys exist (`tuneforge keys create` makes the first).")


def _unauthorized(message: str) -> APIError:
    return APIError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


@dataclass(frozen=True)
class Caller:
    project: str
    open_server: bool  # no active keys: any key (or none) is accepted


def bearer_secret(headers: Mapping[str, str]) -> str:
    """The key of an `Authorization: Bearer KEY` header ("" when absent or of another scheme)."""
    scheme, _, secret = headers.get("authorization", "").strip().partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def authenticate(state, secret: str, *, require_keys: bool = False) -> Caller:
    """The caller's project, or a 401 in OpenAI's shape. `require_keys`: the request arrived on a
    network address, so an open (key-less) server refuses it instead of serving the default project."""
    keys = KeyStore(state.db)
    project = keys.project_for(secret) if secret else None
    if project is not None:
        return Caller(project, open_server=False)
    if keys.any_active():
        if not secret:
            raise _unauthorized("You didn't provide an API key. Send it in an Authorization header "
                                "using Bearer auth (Authorization: Bearer YOUR_KEY). Keys come from "
                                "`tuneforge keys create --project NAME`.")
        raise _unauthorized(f"Incorrect API key provided: {mask_key(secret)}. It is unknown or "
                            f"revoked; list valid keys with `tuneforge keys list`.")
    if require_keys:
        raise _unauthorized("This server listens on a network address and has no active API keys, so "
                            "it accepts no requests. Create one with `tuneforge keys create --project "
                            "NAME`.")
    return Caller(DEFAULT_PROJECT, open_server=True)


def reject_nul_bytes(request: Request) -> None:
    """400 for a NUL byte (`%00`) in the path or query: no id or parameter holds one, and PostgreSQL
    refuses them in queries, which would otherwise surface as a 500."""
    if "\x00" in request.url.path:
        raise APIError(400, f"The request path contains a NUL byte (%00): {request.url.path!r}. Ids never "
                            f"contain one; check how the id was built.", param="id")
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise APIError(400, f"Query parameter {name!r} contains a NUL byte (%00); remove it.", param=name)


def _first_nul_field(value: object, where: str = "") -> str | None:
    if isinstance(value, str):
        return (where or "body") if "\x00" in value else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return None
    for key, item in items:
        path = f"{where}.{key}" if where else str(key)
        if "\x00" in str(key):
            return path
        found = _first_nul_field(item, path)
        if found:
            return found
    return None


async def reject_nul_in_json(request: Request) -> None:
    """400 for a NUL character (`\\u0000`) in a JSON body, naming the field. The body is read only when
    it is JSON (FastAPI caches it for the route); uploads stay streamed."""
    if "json" not in request.headers.get("content-type", ""):
        return
    body = await request.body()
    if b"\\u0000" not in body:  # the only way JSON can spell NUL
        return
    try:
        field = _first_nul_field(json.loads(body))
    except (ValueError, RecursionError):
        return  # not valid JSON: the route's own validation answers
    if field:
        raise APIError(400, f"Invalid value for '{field}': it contains a NUL character (\\u0000), which "
                            f"no tuneforge field accepts. Remove it.", param=field)


def is_loopback_host(host: str) -> bool:
    """True if every address `host` names is a loopback address (127.0.0.0/8, ::1)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def bind_refusal(host: str, keys_configured: bool) -> str | None:
    """Why the server must not listen on `host`, or None if it may."""
    if keys_configured or is_loopback_host(host):
        return None
    return (f"refusing to listen on {host}: no API keys are configured, so anyone who can reach this "
            f"address could use the server, read your files and train on your machine. Create a key "
            f"first (`tuneforge keys create --project NAME`) or serve on 127.0.0.1.")
