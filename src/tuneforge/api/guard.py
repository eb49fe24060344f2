"""The server's front door, checked before any route runs or any body byte is read.

A loopback server is reachable by every web page the user opens: a DNS-rebinding page talks to it under
its own host name, and a cross-site form or `fetch` can POST to it without a CORS preflight. So every
request passes, in order:

1. Host allow-list: loopback names, the address the connection arrived on, and `allowed_hosts`.
2. Origin check (browsers only): a cross-site page may not change state, nor read a server without keys.
3. Size limit: a declared `Content-Length` over the limit is refused at once; a streamed body is
   counted as it arrives.
4. Authentication of `/v1` requests (before the body is parsed), and the bind rule: a request that
   arrived on a non-loopback address needs a key even while none exist, however the app was started.

Every response also gets the security headers a web app needs (no framing, no sniffing).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tuneforge.api.auth import authenticate, bearer_secret
from tuneforge.api.errors import APIError, error_response
from tuneforge.api.uploads import FRAMING_ALLOWANCE, too_large
from tuneforge.settings import Settings

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Upload endpoints stream large bodies: refused here by declared size, counted by api/uploads.py.
UPLOAD_PATHS = ("/v1/files", "/v1/uploads")
PUBLIC_V1_PATHS = frozenset({"/v1/health"})

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
     b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
]


def host_name(value: str) -> str:
    """The host part of a Host header or URL netloc, lower-case, without port or IPv6 brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def is_loopback_name(name: str) -> bool:
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class RequestGuard:
    """Pure ASGI middleware (it must act before FastAPI reads the body, which a route dependency cannot)."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings
        self.extra_hosts = {host_name(h) for h in settings.allowed_hosts if h != "*"}
        self.any_host = "*" in settings.allowed_hosts
        self.extra_origins = {o.rstrip("/").lower() for o in settings.allowed_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(send)
        try:
            receive = await self._admit(scope, receive)
        except APIError as err:
            await error_response(err)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _admit(self, scope: Scope, receive: Receive) -> Receive:
        headers = Headers(scope=scope)
        server_host = (scope.get("server") or ("", 0))[0] or ""
        self._check_host(headers, server_host)
        path, method = scope["path"], scope["method"]
        needs_auth = path.startswith("/v1/") and path not in PUBLIC_V1_PATHS and method != "OPTIONS"
        open_server = False
        if needs_auth:
            state = scope["app"].state
            network = bool(server_host) and not is_loopback_name(host_name(server_host))
            caller = await run_in_threadpool(authenticate, state, bearer_secret(headers),
                                             require_keys=network or getattr(state, "require_keys", False))
            scope.setdefault("state", {})["project"] = caller.project
            open_server = caller.open_server
        # Without keys a page's cross-site GET would read data; with keys it lacks the key anyway.
        self._check_origin(headers, method, server_host, reads_open=open_server)
        return await self._limit_body(headers, path, receive)

    # ---- 1. Host -----------------------------------------------------------------------------------
    def _allowed_host(self, name: str, server_host: str) -> bool:
        return (self.any_host or is_loopback_name(name) or name in self.extra_hosts
                or name == host_name(server_host))

    def _check_host(self, headers: Headers, server_host: str) -> None:
        raw = headers.get("host")
        if raw is None:  # HTTP/1.0 without Host: nothing a browser page can forge
            return
        if not self._allowed_host(host_name(raw), server_host):
            raise APIError(400, f"Host header {raw[:100]!r} is not allowed: this server answers to loopback "
                                f"names and the address it listens on. If you serve tuneforge under this "
                                f"name, add it to TUNEFORGE_ALLOWED_HOSTS (comma-separated).",
                           param="Host", code="invalid_host")

    # ---- 2. Origin ---------------------------------------------------------------------------------
    def _allowed_origin(self, origin: str, server_host: str) -> bool:
        if origin.rstrip("/").lower() in self.extra_origins:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and bool(parts.hostname) \
            and self._allowed_host(host_name(parts.netloc), server_host)

    def _check_origin(self, headers: Headers, method: str, server_host: str, *, reads_open: bool) -> None:
        """Browsers label every request with Origin and/or Sec-Fetch-Site; other clients send neither."""
        if method in SAFE_METHODS and not reads_open:
            return
        origin = headers.get("origin")
        if origin is not None:
            blocked = not self._allowed_origin(origin, server_host)
        else:
            # No Origin (some GETs): a top-level navigation is the user opening a link, which is fine.
            blocked = headers.get("sec-fetch-site") == "cross-site" and not (
                method in SAFE_METHODS and headers.get("sec-fetch-mode") == "navigate")
        if blocked:
            raise APIError(403, f"Cross-origin request refused: a web page from {origin or 'another site'} "
                                f"may not use this tuneforge server. Use the web app on this server, or add "
                                f"the page's origin to TUNEFORGE_ALLOWED_ORIGINS.",
                           param="Origin", code="cross_origin_request_blocked")

    # ---- 3. Size -----------------------------------------------------------------------------------
    async def _limit_body(self, headers: Headers, path: str, receive: Receive) -> Receive:
        """Refuse a body over the limit. Uploads stream (their route stops at the limit as it writes);
        any other body is read here, counted, and replayed: FastAPI would turn an error raised while it
        reads into a generic 400."""
        upload = path.startswith(UPLOAD_PATHS)
        settings = self.settings
        limit = settings.max_upload_bytes + FRAMING_ALLOWANCE if upload else settings.max_request_bytes
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise APIError(400, f"Content-Length {declared[:40]!r} is not a byte count.",
                               param="Content-Length")
            if int(declared) > limit:
                raise too_large(self.settings.max_upload_bytes) if upload else _too_large(limit)
        if upload:
            return receive
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it
                return _replay([message], receive)
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                raise _too_large(limit)
        return _replay([{"type": "http.request", "body": bytes(body), "more_body": False}], receive)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()

    return replayed


def _too_large(limit: int) -> APIError:
    return APIError(413, f"The request body is larger than this server's limit of {limit} bytes. Send "
                         f"less (uploads go to /v1/files), or raise the limit with "
                         f"TUNEFORGE_MAX_REQUEST_BYTES.", code="request_too_large")


def _with_security_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            message["headers"] = [*message.get("headers", []),
                                  *((k, v) for k, v in SECURITY_HEADERS if k not in present)]
        await send(message)

    return wrapped
