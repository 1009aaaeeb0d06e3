"""The recording proxy: `mockserver record --target URL --out DIR`.

An ASGI application that sends every request on to the target unchanged (the application's key
included: it passes through and is never written anywhere) and every answer back unchanged, and
records the submissions, polls, cancels and deletes it sees (the contract's operations, as
`Recording.exchange` recognises them) into a `Recording`, written after every exchange. Anything
else (a result video, a content download, a list, other routes) is streamed through as it comes.
The answers of the recorded operations are asked for without compression, so the recorder can
read them.

A target that cannot be reached gets the application a 502 in the provider's error shape (504
when it did not answer in time), and the console says why.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from rich.markup import escape
from starlette.types import Receive, Scope, Send

from mockserver.errors import ApiError
from mockserver.record.model import Answer, Recording, kept_headers

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
     "transfer-encoding", "upgrade", "host", "content-length"}
)  # fmt: skip
BODY_LIMIT = 64 * 1024 * 1024
API_ANSWER_LIMIT = 4 * 1024 * 1024


def _error(status: int, message: str, code: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    response = ApiError(status, message, type="upstream_error", code=code).response()
    return status, list(response.raw_headers), bytes(response.body)


class RecordingProxy:
    def __init__(self, target: str, recording: Recording, say: Callable[[str], None], timeout: float = 120.0) -> None:
        self.target = target.rstrip("/")
        self.shown = recording.source  # the target without user, password or query
        self.recording = recording
        self.say = say
        # Without the URL's user and password: httpx would send them as Basic credentials in place
        # of the application's own Authorization.
        self.client = httpx.AsyncClient(base_url=recording.source, timeout=timeout, follow_redirects=False)
        self.lock = asyncio.Lock()  # one write of the folder at a time

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > BODY_LIMIT:
                await self._answer(
                    send, *_error(413, "The recorder takes request bodies up to 64 MiB.", "request_too_large")
                )
                return
            if not message.get("more_body"):
                break
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        headers = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
        for name, value in headers:  # the application's credentials: never written, scrubbed if echoed
            if name.lower() == "authorization":
                self.recording.secrets.add(value.partition(" ")[2].strip() or value.strip())
        query = scope.get("query_string", b"").decode("latin-1")
        raw_path = scope.get("raw_path") or path.encode()  # as sent: %2F stays %2F
        url = raw_path.decode("latin-1") + (f"?{query}" if query else "")
        exchange = self.recording.exchange(method, path)
        if exchange is not None:
            headers = [(k, v) for k, v in headers if k.lower() != "accept-encoding"] + [("accept-encoding", "identity")]
            content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
            await self._api(send, method, url, headers, bytes(body), (*exchange, path), content_type)
        else:
            await self._stream(send, method, url, headers, bytes(body))

    async def _answer(self, send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _unreachable(self, exc: Exception, method: str, url: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        where = f"{escape(method)} {escape(url)}"
        if isinstance(exc, httpx.TimeoutException):
            self.say(
                f"[red]The target did not answer {where} in time[/] ({type(exc).__name__}): the application got 504."
            )
            return _error(504, f"The recorder's target {self.shown} did not answer in time.", "target_timeout")
        reason = str(exc) or type(exc).__name__
        self.say(
            f"[red]Cannot reach the target {escape(self.shown)}[/] for {where}: {escape(reason)}. The application got 502."
        )
        return _error(502, f"The recorder cannot reach its target {self.shown}: {reason}.", "target_unreachable")

    async def _api(
        self,
        send: Send,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        exchange: tuple[str, str | None, str],
        content_type: str | None,
    ) -> None:
        sent = time.monotonic()
        try:
            answer = await self.client.request(method, url, headers=headers, content=body)
        except httpx.HTTPError as exc:
            received = time.monotonic()
            await self._answer(send, *self._unreachable(exc, method, url))
            await self._observe(exchange, body, content_type, Answer(sent, received, 0, kind="none"))
            return
        received = time.monotonic()
        out_headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in answer.headers.multi_items()  # each Set-Cookie on its own
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-encoding"  # the body goes out decoded
        ]
        if answer.status_code not in (204, 304):  # answers that have no body have no length either
            out_headers.append((b"content-length", str(len(answer.content)).encode()))
        await self._answer(send, answer.status_code, out_headers, answer.content)  # the application first
        content = answer.content[:API_ANSWER_LIMIT]
        kind = "empty" if not content.strip() else "json"
        parsed: Any = None
        if kind == "json":
            try:
                parsed = json.loads(content)
            except (ValueError, RecursionError):
                kind = "malformed"
                what = answer.headers.get("content-type", "no content type")
                self.say(
                    f"[yellow]The target answered {escape(method)} {escape(url)} with something other than JSON[/] "
                    f"({answer.status_code}, {escape(what)})."
                )
        observed = Answer(sent, received, answer.status_code, parsed, kind, kept_headers(answer.headers))
        await self._observe(exchange, body, content_type, observed)

    async def _observe(
        self, exchange: tuple[str, str | None, str], body: bytes, content_type: str | None, answer: Answer
    ) -> None:
        """Record an exchange, once its answer went back: recording never delays or breaks it."""
        try:
            await self._record(exchange, body, content_type, answer)
        except Exception as exc:  # noqa: BLE001 - the application's traffic goes on whatever happens here
            self.say(f"[red]Could not record an exchange[/]: {escape(type(exc).__name__)}: {escape(str(exc)[:300])}")

    async def _record(
        self, exchange: tuple[str, str | None, str], body: bytes, content_type: str | None, answer: Answer
    ) -> None:
        """`exchange`: what the request was (`Recording.exchange`) and its path."""
        recording = self.recording
        kind, task_id, path = exchange
        if kind == "submit":
            recorded = recording.submission(recording.request_body(content_type, body), answer, path)
            outcome = f"task {recorded.task_id}" if recorded.task_id else f"no task ({answer.status or 'no answer'})"
            self.say(f"submission {recorded.n}: {answer.status or 'no answer'} -> {escape(outcome)}")
        elif kind == "query":
            found = recording.poll(task_id or "", answer)
            if found is None:
                return  # a task this session did not submit
            recorded = found
            state = answer.body if isinstance(answer.body, dict) and 200 <= answer.status < 300 else {}
            shown = (
                f"{state.get(recording.reader.status)} {state.get('progress', '')}".strip()
                if state
                else str(answer.status or "no answer")
            )
            since = answer.sent - recorded.submit.sent
            self.say(f"  poll {len(recorded.polls)} of submission {recorded.n} at {since:.1f} s: {escape(shown)}")
        else:  # the application cancelled or deleted a task
            found = recording.action(kind, task_id or "", answer)
            if found is None:
                return
            recorded = found
            since = answer.sent - recorded.submit.sent
            self.say(f"  {kind} of submission {recorded.n} at {since:.1f} s: {answer.status or 'no answer'}")
        files = recording.files()  # made here, on the loop, where the recording changes
        async with self.lock:
            await asyncio.to_thread(recording.write, files)

    async def _stream(self, send: Send, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> None:
        try:
            request = self.client.build_request(method, url, headers=headers, content=body)
            answer = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            await self._answer(send, *self._unreachable(exc, method, url))
            return
        try:
            out_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.multi_items()
                           if k.lower() not in HOP_BY_HOP or k.lower() == "content-length"]  # fmt: skip
            await send({"type": "http.response.start", "status": answer.status_code, "headers": out_headers})
            async for chunk in answer.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except (httpx.HTTPError, OSError):
            pass  # the target or the application went away mid-stream: the connection ends
        finally:
            await answer.aclose()


def probe(target: str, timeout: float = 10.0) -> str | None:
    """None when the target answers HTTP at all; else why it cannot be reached."""
    try:
        httpx.get(target.rstrip("/") + "/", timeout=timeout)
    except httpx.HTTPError as exc:
        return str(exc) or type(exc).__name__
    return None


def serve(proxy: RecordingProxy, host: str, port: int) -> None:
    """Serve until Ctrl-C or SIGTERM (uvicorn's graceful shutdown: exchanges in flight finish)."""
    import signal

    import uvicorn

    # uvicorn raises the signal that stopped it again once it has shut down, to end the process
    # with it; the recorder still has its last write and its check to do, so it takes the signal
    # with a handler of its own for that moment.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        config = uvicorn.Config(
            proxy, host=host, port=port, log_level="warning", access_log=False, lifespan="on",
            server_header=False, date_header=False,  # the target's own go through
        )  # fmt: skip
        uvicorn.Server(config).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
