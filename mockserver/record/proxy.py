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

Callbacks: where the contract documents a callback URL (`contract.shapes.callbacks.url`) and a
submission gives one, the recorder puts an endpoint of its own in its place
(`<callback base>/__record/callbacks/<unguessable token>`, one per submission) before the
submission goes on. Each delivery the target makes there is forwarded to the application's URL
unchanged (method, body bytes, headers: the `webhook-*` signature included) and the target gets
the application's answer (its status and body; a 502 when the application cannot be reached).
Then the delivery's time and what it showed are recorded against the task's polls (`Recording`
makes it `callbacks: {late | early | duplicate | lost}`); no header of it is kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
from rich.markup import escape
from starlette.types import Receive, Scope, Send

from mockserver.errors import ApiError
from mockserver.record.model import Answer, Callback, Recorded, Recording, _at, kept_headers

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
     "transfer-encoding", "upgrade", "host", "content-length"}
)  # fmt: skip
BODY_LIMIT = 64 * 1024 * 1024
API_ANSWER_LIMIT = 4 * 1024 * 1024
CALLBACK_PATH = "/__record/callbacks/"
CALLBACK_ANSWER_LIMIT = 64 * 1024  # of the application's answer to a callback, passed back to the target


def _error(status: int, message: str, code: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    response = ApiError(status, message, type="upstream_error", code=code).response()
    return status, list(response.raw_headers), bytes(response.body)


class _Hook:
    """Where one submission's callbacks go: the application's URL (never written, never shown),
    the submission once its answer came (deliveries that come before wait in `waiting`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.recorded: Recorded | None = None
        self.waiting: list[Callback] = []


class RecordingProxy:
    def __init__(
        self,
        target: str,
        recording: Recording,
        say: Callable[[str], None],
        timeout: float = 120.0,
        callback_base: str | None = None,
    ) -> None:
        self.target = target.rstrip("/")
        self.shown = recording.source  # the target without user, password or query
        self.recording = recording
        self.say = say
        # Without the URL's user and password: httpx would send them as Basic credentials in place
        # of the application's own Authorization.
        self.client = httpx.AsyncClient(base_url=recording.source, timeout=timeout, follow_redirects=False)
        self.lock = asyncio.Lock()  # one write of the folder at a time
        # Callbacks: where the target reaches the recorder (None: the contract documents none)
        self.spec = recording.shapes.callbacks
        self.callback_base = callback_base.rstrip("/") if callback_base and self.spec is not None else None
        self.hooks: dict[str, _Hook] = {}  # token -> where its deliveries go
        self.forwarder = httpx.AsyncClient(
            timeout=self.spec.timeout if self.spec is not None else 10.0, follow_redirects=False, trust_env=False
        )  # a callback goes where the application said, as the target sent it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.client.aclose()
                    await self.forwarder.aclose()
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
        if path.startswith(CALLBACK_PATH) and self.callback_base is not None:
            await self._callback(send, method, path[len(CALLBACK_PATH) :], headers, bytes(body))
            return
        exchange = self.recording.exchange(method, path)
        if exchange is not None:
            headers = [(k, v) for k, v in headers if k.lower() != "accept-encoding"] + [("accept-encoding", "identity")]
            content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
            sent_body, token = bytes(body), None
            if exchange[0] == "submit" and self.callback_base is not None:
                sent_body, token = self._rewrite(sent_body, content_type)
            await self._api(send, method, url, headers, sent_body, (*exchange, path), content_type, token)
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
        token: str | None = None,
    ) -> None:
        sent = time.monotonic()
        try:
            answer = await self.client.request(method, url, headers=headers, content=body)
        except httpx.HTTPError as exc:
            received = time.monotonic()
            await self._answer(send, *self._unreachable(exc, method, url))
            await self._observe(exchange, body, content_type, Answer(sent, received, 0, kind="none"), token)
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
        await self._observe(exchange, body, content_type, observed, token)

    async def _observe(
        self,
        exchange: tuple[str, str | None, str],
        body: bytes,
        content_type: str | None,
        answer: Answer,
        token: str | None = None,
    ) -> None:
        """Record an exchange, once its answer went back: recording never delays or breaks it."""
        try:
            await self._record(exchange, body, content_type, answer, token)
        except Exception as exc:  # noqa: BLE001 - the application's traffic goes on whatever happens here
            self.say(f"[red]Could not record an exchange[/]: {escape(type(exc).__name__)}: {escape(str(exc)[:300])}")

    async def _record(
        self,
        exchange: tuple[str, str | None, str],
        body: bytes,
        content_type: str | None,
        answer: Answer,
        token: str | None = None,
    ) -> None:
        """`exchange`: what the request was (`Recording.exchange`) and its path; `token`: the
        recorder's callback endpoint the submission was given instead of the application's."""
        recording = self.recording
        kind, task_id, path = exchange
        if kind == "submit":
            recorded = recording.submission(recording.request_body(content_type, body), answer, path, token is not None)
            outcome = f"task {recorded.task_id}" if recorded.task_id else f"no task ({answer.status or 'no answer'})"
            hook = self.hooks.get(token) if token is not None else None
            if hook is not None:
                hook.recorded = recorded
                for callback in hook.waiting:  # delivered before the submission's answer came back
                    recording.delivered(recorded, callback)
                hook.waiting.clear()
                outcome += ", callbacks through the recorder"
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

    def _rewrite(self, body: bytes, content_type: str | None) -> tuple[bytes, str | None]:
        """A submission's JSON body with the recorder's callback endpoint in place of the
        application's URL (and the token that names it), or as it came when it gives none."""
        assert self.spec is not None and self.callback_base is not None
        if content_type is not None and "json" not in content_type.lower():
            return body, None  # a form: passed on as it is (its callbacks are not recorded)
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            return body, None
        *parents, name = self.spec.url
        holder = _at(parsed, tuple(parents)) if parents else parsed
        if not isinstance(holder, dict) or not isinstance(holder.get(name), str) or not holder[name].strip():
            return body, None
        token = secrets.token_urlsafe(24)
        self.hooks[token] = _Hook(holder[name])
        self.recording.secrets.add(token)  # a target that echoes the URL in an error: scrubbed
        holder[name] = f"{self.callback_base}{CALLBACK_PATH}{token}"
        return json.dumps(parsed, ensure_ascii=False).encode(), token

    async def _callback(self, send: Send, method: str, token: str, headers: list[tuple[str, str]], body: bytes) -> None:
        """A delivery of the target to the recorder's endpoint: forwarded to the application's URL as
        it came, the application's answer passed back, then recorded."""
        hook = self.hooks.get(token)
        if hook is None:
            await self._answer(send, *_error(404, "No such callback endpoint.", "not_found"))
            return
        received = time.monotonic()
        status = 0
        try:
            request = self.forwarder.build_request(method, hook.url, headers=headers, content=body)
            answer = await self.forwarder.send(request, stream=True)
            try:
                kept = bytearray()
                async for chunk in answer.aiter_bytes():
                    kept += chunk[: CALLBACK_ANSWER_LIMIT - len(kept)]
                    if len(kept) >= CALLBACK_ANSWER_LIMIT:
                        break
            finally:
                await answer.aclose()
            status = answer.status_code
            out = (
                [(b"content-type", answer.headers["content-type"].encode("latin-1"))]
                if "content-type" in answer.headers
                else []
            )
            await self._answer(send, status, out + [(b"content-length", str(len(kept)).encode())], bytes(kept))
        except httpx.HTTPError as exc:
            reason = f"{type(exc).__name__}: {str(exc)[:200]}" if str(exc) else type(exc).__name__
            self.say(f"[red]Cannot forward a callback to the application[/]: {escape(reason)}. The target got 502.")
            await self._answer(
                send, *_error(502, "The recorder cannot reach the application's callback URL.", "callback_unreachable")
            )
        try:
            parsed: Any = json.loads(body) if body.strip() else None
        except (ValueError, RecursionError):
            parsed = None
        webhook_id = next((v for k, v in headers if k.lower() == "webhook-id"), None)
        key = webhook_id or hashlib.sha256(body).hexdigest()
        callback = Callback(received, status, parsed, key)
        try:
            await self._delivered(hook, callback)
        except Exception as exc:  # noqa: BLE001 - the delivery went through whatever happens here
            self.say(f"[red]Could not record a callback[/]: {escape(type(exc).__name__)}: {escape(str(exc)[:300])}")

    async def _delivered(self, hook: _Hook, callback: Callback) -> None:
        recorded = hook.recorded
        if recorded is None:
            hook.waiting.append(callback)
            return
        self.recording.delivered(recorded, callback)
        found = self.recording.callback_phase(callback.body)
        shown = str(found[1].get(self.recording.reader.status)) if found else "a body the recorder cannot read"
        since = callback.received - recorded.submit.sent
        self.say(
            f"  callback {len(recorded.callbacks)} of submission {recorded.n} at {since:.1f} s: {escape(shown)} "
            f"-> the application answered {callback.status or 'nothing'}"
        )
        files = self.recording.files()
        async with self.lock:
            await asyncio.to_thread(self.recording.write, files)

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
