"""What keeps other web sites and oversized requests from driving ``piaa collect``.

A page on another site can make the person's browser send requests here. It cannot read the answers,
but a GET (a link, an ``<img>``) or a "simple" POST (a form: text/plain, urlencoded) still runs. So
every request that changes anything is a POST with a JSON body (which needs a CORS preflight we never
answer) and, where the browser says where it comes from (``Origin``), from this very host. Bodies are
capped (``MAX_BODY_BYTES``) and names quoted back in errors are clipped (``ECHO_CHARS``): a 100 MB
name once gave a 105 MB answer.

A foreign page could also embed ``/img/...`` and learn from load events and sizes which names the album
holds: requests the browser marks as coming from another site (``Sec-Fetch-Site``, Fetch Metadata) are
refused outside the page itself, and images carry ``Cross-Origin-Resource-Policy: same-origin``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.trustedhost import TrustedHostMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "ECHO_CHARS", "LOCAL_HOSTS", "MAX_BODY_BYTES", "BodyLimit", "clip_name", "cross_site", "harden",
    "same_origin",
]  # fmt: skip

LOCAL_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]

MAX_BODY_BYTES = 64 * 1024  # a judgement is two names: a few hundred bytes
ECHO_CHARS = 200  # of a name quoted back in an error message


def clip_name(name: str) -> str:
    """A name as quoted in an error: repr'd (odd characters visible), at most ``ECHO_CHARS`` long."""
    text = repr(name)
    return text if len(text) <= ECHO_CHARS else f"{text[:ECHO_CHARS]}... ({len(name)} characters)"


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes with 413, whether announced by
    ``Content-Length`` or streamed (chunked) past it, before they are buffered.

    A streamed overflow is answered from inside ``receive``: the 413 goes out at once, the app is told
    the client disconnected (so it stops reading), and whatever it sends afterwards is dropped.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body over {self.limit // 1024} KiB"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._refuse(send)
            return
        received = 0
        started = refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused = True
                    if not started:
                        await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, watched_send)


DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_key(scheme: str, netloc: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) with the scheme's default port filled in; None if it cannot be parsed."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    return scheme.lower(), host, port if port is not None else DEFAULT_PORTS.get(scheme.lower())


def same_origin(request: Request) -> bool:
    """No ``Origin`` (not a browser, or a same-origin GET), or one with this server's scheme, host and
    port: ``https://127.0.0.1:8765`` or ``http://127.0.0.1:9999`` is another origin."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    theirs = _origin_key(parts.scheme, parts.netloc) if parts.scheme and parts.netloc else None
    ours = _origin_key(request.url.scheme, request.headers.get("host", ""))
    return theirs is not None and theirs == ours


def cross_site(request: Request) -> bool:
    """True when the browser says the request comes from another origin (``Sec-Fetch-Site``:
    ``cross-site``, or ``same-site``, which covers another port of this host). ``same-origin``,
    ``none`` (typed into the address bar) and no header (not a browser, or an old one) pass."""
    return request.headers.get("sec-fetch-site", "").lower() in ("cross-site", "same-site")


def harden(app: FastAPI, host: str, allowed_hosts: list[str] | None = None) -> None:
    """Every protection above on one app (the collect page and the review page alike): local host names
    only when bound locally (DNS rebinding), no cross-site use outside the page itself, same-origin JSON
    POSTs only (cross-site forms), bodies capped, short validation and store errors."""
    from piaa.errors import one_line
    from piaa.preferences import PreferenceError

    if allowed_hosts is None:  # a page on another site cannot reach us by DNS rebinding
        local = host in LOCAL_HOSTS or host.startswith("127.")
        allowed_hosts = [*LOCAL_HOSTS, host] if local else ["*"]
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)

    @app.middleware("http")
    async def json_posts_only(request: Request, call_next: Callable) -> Response:
        """Cross-site forms can post text/plain without asking; only same-origin scripts send JSON.
        Another site's page may link to the app, but not embed its images or call its API."""
        path = request.url.path
        if cross_site(request) and not (path == "/" or path.startswith("/static/")):
            return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
        if request.method == "POST":
            if not same_origin(request):
                return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
            if not request.headers.get("content-type", "").startswith("application/json"):
                return JSONResponse({"detail": "expected application/json"}, status_code=415)
        return await call_next(request)

    app.add_middleware(BodyLimit)  # outermost: before anything reads the body

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        """One short line, without echoing the input back (FastAPI's default quotes it whole)."""
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return JSONResponse({"detail": f"invalid request: {where}: {first.get('msg', 'invalid')}"}, 422)

    @app.exception_handler(PreferenceError)
    async def store_unusable(_: Request, exc: PreferenceError) -> JSONResponse:
        """A locked or full store: the page shows this line and the person can try again."""
        return JSONResponse({"detail": one_line(exc)}, status_code=503)
