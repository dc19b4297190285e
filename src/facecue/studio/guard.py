"""Who may talk to the studio: the page's own origin, on an expected host, with the token.

The studio holds a camera, a microphone and uploaded files, so another web page must not be
able to use it: every request must name an expected ``Host`` (a page on another domain that
re-points its name at 127.0.0.1, DNS rebinding, is refused), the WebSocket and upload
endpoints also need an ``Origin`` equal to the page's own (another site's script is refused),
and when the studio listens beyond loopback every request needs the token printed with its
URL, given once as ``?token=`` and then kept in a cookie, as Jupyter does.
"""

from __future__ import annotations

import ipaddress
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

COOKIE = "facecue_studio_token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address to bind to) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token(host: str) -> str | None:
    """A fresh token when binding to ``host`` exposes the studio beyond this machine."""
    return None if is_loopback(host) else secrets.token_urlsafe(24)


def _host_name(host_header: str) -> str:
    """``[::1]:8000`` -> ``::1``; ``localhost:8000`` -> ``localhost``."""
    return urlsplit(f"//{host_header}").hostname or ""


class Guard:
    """The checks for one server: the host names it answers to and its token (None: none
    needed, loopback only)."""

    def __init__(self, bind_host: str, token: str | None):
        self.token = token
        wildcard = bind_host.strip("[]") in ("0.0.0.0", "::", "")
        self.hosts = None if wildcard else {*LOOPBACK_NAMES, bind_host.strip("[]").lower()}

    def host_ok(self, headers: dict[str, str]) -> bool:
        """The ``Host`` header names this server (any name when bound to every address:
        the token guards it then)."""
        return self.hosts is None or _host_name(headers.get("host", "")).lower() in self.hosts

    def origin_ok(self, headers: dict[str, str]) -> bool:
        """The request comes from a page this server served: ``Origin`` is present and its
        host and port are the ``Host`` the request was sent to."""
        origin = headers.get("origin")
        if not origin:
            return False
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc == headers.get("host")

    def token_given(self, query_string: bytes, headers: dict[str, str]) -> tuple[bool, bool]:
        """(allowed, from the URL): the token is not needed, or given in the query or the
        cookie; from the URL means the response should set the cookie."""
        if self.token is None:
            return True, False
        query = parse_qs(query_string.decode("latin-1")).get("token", [""])[0]
        if query and secrets.compare_digest(query, self.token):
            return True, True
        cookie = SimpleCookie(headers.get("cookie", ""))
        given = cookie[COOKIE].value if COOKIE in cookie else ""
        return bool(given) and secrets.compare_digest(given, self.token), False

    def cookie_header(self) -> tuple[bytes, bytes]:
        """The ``Set-Cookie`` header keeping the token for the page's later requests."""
        return (b"set-cookie",
                f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode())


class GuardMiddleware:
    """ASGI middleware applying :class:`Guard`'s host and token checks to every HTTP request
    and WebSocket (the origin check is the endpoints' own: pages and files are fetched by
    plain navigation, which sends no ``Origin``)."""

    def __init__(self, app, guard: Guard):
        self.app, self.guard = app, guard

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        allowed, from_url = self.guard.token_given(scope.get("query_string", b""), headers)
        why = None
        if not self.guard.host_ok(headers):
            why = f"this studio does not answer to host {headers.get('host', '')!r}"
        elif not allowed:
            why = ("this studio needs its token: open the URL `facecue studio` printed "
                   "(with ?token=...)")
        if why is not None:
            await _refuse(scope, receive, send, why)
            return
        if not from_url or scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  self.guard.cookie_header()]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def _refuse(scope, receive, send, why: str) -> None:
    """403 for HTTP; a WebSocket is closed before it is accepted (the browser sees 403)."""
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008, "reason": why[:120]})
        return
    body = why.encode()
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
