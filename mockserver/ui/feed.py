"""The live feed: one server-sent-events stream per open page (`/__admin/ui/events`), with the
fragments of its view, each rendered at most once per tick for every open page, sent when changed."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mockserver.intake import whole_number
from mockserver.journal import Entry, select
from mockserver.protocol import CONNECTION
from mockserver.state import StoreUnavailable
from mockserver.ui.base import JOURNAL_SHOWN, KEEP_ALIVE, LOG, STREAM_LIFETIME, TICK, entry_row
from mockserver.ui.views import Views


class EventStream:
    """A server-sent-events answer: sends what `events` yields until it ends, the client goes away
    or the server shuts down (the connection's `closing`, set by `protocol.MockHttpProtocol`)."""

    def __init__(self, events: Callable[[Callable[[], bool]], AsyncIterator[bytes]]) -> None:
        self.events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connection = scope.get(CONNECTION)
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.get_running_loop().create_task(watch())

        def over() -> bool:
            return gone.is_set() or bool(connection is not None and connection.closing)

        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),  # nginx: pass each event on at once
        ]
        stream = self.events(over)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            async for chunk in stream:
                if over():
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if not gone.is_set():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away mid-write
        finally:
            watcher.cancel()
            await stream.aclose()  # type: ignore[attr-defined]


_LINES = re.compile(r"\r\n|\r|\n")  # every line end a browser's EventSource knows


def _event(name: str, html: str, event_id: int | None = None) -> bytes:
    """One server-sent event. Text from clients (journal paths and bodies) may hold a bare CR,
    which ends a line for the browser too: split on every kind, so no client can add a field."""
    data = "".join(f"data: {line}\n" for line in _LINES.split(html))
    ident = f"id: {event_id}\n" if event_id is not None else ""
    return f"event: {name}\n{ident}{data}\n".encode()


class Feed(Views):
    """The live feed: one server-sent-events stream per open page."""

    async def events(self, request: Request) -> Response:
        if request.method == "HEAD":  # nothing to stream to a HEAD
            return Response(headers={"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store"})
        params = request.query_params
        view = params.get("view", "tasks")
        base_url = self.rt.base_url(request)
        status, scenario = self._task_filters(params)
        task_id = params.get("id", "")[:200]
        filters = self._journal_filters(params)
        # Where the page's journal stands: the browser says so when it reconnects (the id of the
        # last event it got); a new page, in the link it was given.
        resumed = whole_number(request.headers.get("last-event-id", "").strip())
        start = resumed if resumed is not None else whole_number(params.get("since", "0")) or 0

        async def clock() -> str:
            return self._fragment("_clock.html", top=await self._clock())

        async def tasks() -> str:
            return self._fragment("_tasks.html", tasks=await self._tasks(status, scenario))

        async def task() -> str:
            return self._fragment("_task.html", detail=await self._task_detail(task_id, base_url), task_id=task_id)

        async def pushed() -> str:
            return self._fragment("_pushed.html", top=await self._clock())

        async def overview() -> str:
            return self._fragment("_overview.html", overview=await self._overview())

        async def fragments() -> dict[str, str]:
            """This view's fragments, each rendered once per tick for every open page."""
            out = {"clock": await self._shared(("clock",), clock)}
            if view == "tasks":
                out["tasks"] = await self._shared(("tasks", status, scenario), tasks)
            elif view == "task":
                out["task"] = await self._shared(("task", task_id, base_url), task)
            elif view == "scenarios":
                out["pushed"] = await self._shared(("pushed",), pushed)
            elif view == "overview":
                out["overview"] = await self._shared(("overview",), overview)
            return out

        async def newest_entries() -> list[Entry]:
            return await self.rt.state.journal_entries(JOURNAL_SHOWN)

        async def stream(over: Callable[[], bool]) -> AsyncIterator[bytes]:
            sent: dict[str, str] = {}
            newest = start  # the id of the newest journal entry the page shows
            top = None  # the newest id in the whole journal at the last look (a drop means a reset)
            added = 0  # entries put on top of the page's list since it was last drawn whole
            began = last = time.monotonic()
            yield b"retry: 1000\n\n"
            while not over() and time.monotonic() - began < STREAM_LIFETIME:
                events: list[bytes] = []
                try:
                    for name, html in (await fragments()).items():
                        if sent.get(name) != html:
                            events.append(_event(name, html))
                            sent[name] = html
                    if view == "journal":
                        entries = await self._shared(("journal",), newest_entries)  # one look for every filter
                        latest = entries[0].id if entries else 0
                        shown = select(entries, *self._journal_args(filters))
                        reset = top is not None and (latest < top or (not entries and top))  # reset or emptied
                        fresh = [] if reset else [e for e in shown if e.id > newest]
                        if reset or added + len(fresh) > JOURNAL_SHOWN:  # drawn whole: the list stays bounded
                            listed = self._fragment("_journal.html", entries=[entry_row(e) for e in shown])
                            events.append(_event("journal-all", listed, latest))
                            added = 0
                        elif fresh:
                            listed = self._fragment("_entries.html", entries=[entry_row(e) for e in fresh])
                            events.append(_event("journal", listed, latest))
                            added += len(fresh)
                        newest = latest if reset else max(newest, latest)
                        top = latest
                except StoreUnavailable as exc:
                    events = [_event("clock", self._fragment("_down.html", reason=str(exc)))]
                    sent.pop("clock", None)
                except Exception as exc:  # noqa: BLE001  # a bug here ends this stream (the page reconnects), with no traceback
                    LOG.error("the dashboard's live feed failed (%s: %s); the page reconnects", type(exc).__name__, exc)
                    return
                if events:
                    last = time.monotonic()
                    yield b"".join(events)
                elif time.monotonic() - last > KEEP_ALIVE:
                    last = time.monotonic()
                    yield b": still here\n\n"
                await asyncio.sleep(TICK)

        return EventStream(stream)  # type: ignore[return-value]
