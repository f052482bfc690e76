"""What keeps other web sites and oversized requests from driving ``piaa collect``.

A page on another site can make the person's browser send requests here. It cannot read the answers,
but a GET (a link, an ``<img>``) or a "simple" POST (a form: text/plain, urlencoded) still runs. So
every request that changes anything is a POST with a JSON body (which needs a CORS preflight we never
answer) and, where the browser says where it comes from (``Origin``), from this very host. Bodies are
capped (``MAX_BODY_BYTES``) and names quoted back in errors are clipped (``ECHO_CHARS``): a 100 MB
name once gave a 105 MB answer.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ECHO_CHARS", "MAX_BODY_BYTES", "BodyLimit", "clip_name", "same_origin"]

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


def same_origin(request: Request) -> bool:
    """No ``Origin`` (not a browser, or a same-origin GET), or one naming this very host and port."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()
