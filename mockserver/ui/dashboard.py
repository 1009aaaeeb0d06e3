"""The dashboard at `/__admin/ui`: live tasks on their timelines, one-click failure states, the
clock, the scenarios and the journal, for QA, served by the fake itself.

Pages are Jinja2 templates rendered on the server; forms post to the routes here, which call the
same run-time controls as the admin API (`Runtime`) and redirect back (post, redirect, get). The
live parts arrive as HTML fragments over one server-sent-events stream per page
(`/__admin/ui/events`), which htmx (vendored in `static/`, with its SSE extension) swaps in:
no build step, nothing fetched from outside the fake.

The feed is pushed by the fake: each open stream wakes every `TICK` seconds, and the fragments
of one view are rendered at most once per tick whatever the number of open dashboards (a shared
cache), from the newest `SCAN` tasks only, so a dashboard costs the provider API little however
many tasks the store holds. A fragment is sent only when it changed.

Who may see it is `AdminGuard`'s business (open on loopback; off loopback, the admin token or the
session cookie that the sign-in form sets). Every form that changes state carries a token that
must match a SameSite=Strict cookie (a double-submit token), and the guard refuses cross-site
requests, so another site cannot drive the fake through a tester's browser.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode

import jinja2
import yaml
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from contracts._vocabulary import PHASES
from mockserver import lifecycle
from mockserver.admin import SESSION_COOKIE, SESSION_SECONDS, UI, VERSION, session_value
from mockserver.callbacks.plan import events as callback_events
from mockserver.callbacks.plan import reached
from mockserver.clock import ClockError
from mockserver.errors import ApiError
from mockserver.incoming import Incoming
from mockserver.intake import read_body, whole_number
from mockserver.journal import Entry, redact_url, select
from mockserver.protocol import CONNECTION
from mockserver.runtime import Runtime
from mockserver.scenarios import Scenario
from mockserver.state import Found, StoreUnavailable
from mockserver.state.base import Attempt, Delivery
from mockserver.state.task import Task

HERE = Path(__file__).parent
LOG = logging.getLogger("mockserver.ui")
TICK = 0.5  # seconds between two looks at the store, per open view
SCAN = 2000  # the newest tasks a view looks at (filters apply within them)
SCAN_SHARED = 500  # with a shared store: fewer, since each look is one script that Redis runs alone
MARKS = 400  # poll marks drawn on a timeline, at most (one per pixel column anyway)
SHOWN = 200  # rows in the task table
JOURNAL_SHOWN = 200
STREAM_LIFETIME = 300.0  # seconds; then the browser's EventSource reconnects (a bounded stream)
KEEP_ALIVE = 15.0  # seconds of silence before a comment line keeps proxies from closing the stream
FORM_LIMIT = 16 * 1024
CALLBACKS_SHOWN = 100  # a task's newest callback attempts listed and marked, at most
REDELIVER_WAIT = 2.0  # real seconds Redeliver waits for the attempt, to say how it went
CSRF_COOKIE = "mockserver_csrf"
# The catalogue's groups, as the README and docs/qa.md name them, by shipped file.
GROUPS = {
    "default.yaml": "Success",
    "fast.yaml": "Success",
    "submit-errors.yaml": "Submit errors",
    "task-failures.yaml": "Task failures",
    "quirks.yaml": "Quirks",
    "patterns.yaml": "Patterns",
}
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


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


class Dashboard:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters["age"] = _age
        submit = runtime.contract.submit
        self.env.globals["submit_route"] = f"{submit.method} {submit.route}"
        # Compiled once, here: no template is read or compiled while serving.
        self.templates = {name: self.env.get_template(name) for name in self.env.list_templates()}
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._pending: dict[tuple[Any, ...], asyncio.Future[Any]] = {}
        self._entries: dict[str, tuple[tuple[int, int], list[Entry]]] = {}  # task id -> (polls, version), entries
        self.fail_codes = self._fail_codes()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.tasks_page, methods=["GET"]),
            Route("/tasks/{task_id}", self.task_page, methods=["GET"]),
            Route("/tasks/{task_id}/{action:str}", self.task_action, methods=["POST"]),
            Route("/clock", self.clock_action, methods=["POST"]),
            Route("/scenarios", self.scenarios_page, methods=["GET"]),
            Route("/scenarios/{action:str}", self.scenario_action, methods=["POST"]),
            Route("/journal", self.journal_page, methods=["GET"]),
            Route("/reset", self.reset, methods=["GET", "POST"]),
            Route("/sign-in", self.sign_in, methods=["GET", "POST"]),
            Route("/sign-out", self.sign_out, methods=["POST"]),
            Route("/events", self.events, methods=["GET"]),
            Mount("/static", app=StaticFiles(directory=HERE / "static"), name="ui-static"),
        ]

    # Rendering.

    def _statuses(self) -> list[str]:
        """The status words a tester can filter by: the contract's (or today's), in phase order."""
        words = self.rt.render.words
        documented = list(self.rt.vocabulary.words) if self.rt.vocabulary.documented else []
        return list(
            dict.fromkeys([*(words[phase] for phase in ("queued", "running", "succeeded", "failed")), *documented])
        )

    def _fail_codes(self) -> list[tuple[str, str]]:
        """The failure codes a tester can pick: the documented `generation_failed` first, then each
        code the loaded scenarios fail with (with their message), then the other codes the
        contract's task error documents (its enum, examples, and the codes its description names)."""
        codes = {"generation_failed": "Video generation failed."}
        for scenario in self.rt.scenarios.values():
            for step in scenario.timeline:
                if step.phase == "failed" and isinstance(step.error, dict) and step.error.get("code"):
                    codes.setdefault(str(step.error["code"]), str(step.error.get("message") or ""))
        error = self.rt.contract.shapes.task.find("error")
        code_node = error.find("code") if error is not None else None
        code = code_node.schema if code_node is not None else {}
        named = [
            *code.get("enum", ()),
            *code.get("examples", ()),
            *re.findall(r"`([a-z_]+)`", code.get("description", "")),
        ]
        for name in named:
            codes.setdefault(str(name), "")
        return list(codes.items())

    def _csrf(self, request: Request) -> tuple[str, bool]:
        token = request.cookies.get(CSRF_COOKIE, "")
        if len(token) == 32 and all(c in "0123456789abcdef" for c in token):
            return token, False
        return secrets.token_hex(16), True

    def _page(self, request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
        csrf, new = self._csrf(request)
        html = self.templates[template].render(
            ui=UI,
            version=VERSION,
            csrf=csrf,
            here=_without_messages(request.url.path + ("?" + request.url.query if request.url.query else "")),
            **self._messages(request, csrf),
            signed_in=SESSION_COOKIE in request.cookies,
            store=self.rt.state.kind,
            **context,
        )
        response = HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
        if new:
            response.set_cookie(
                CSRF_COOKIE, csrf, path=UI, httponly=True, samesite="strict", secure=self._secure(request)
            )
        return response

    @staticmethod
    def _sign(csrf: str, notice: str, problem: str) -> str:
        return hmac.new(csrf.encode(), f"{notice}\n{problem}".encode(), hashlib.sha256).hexdigest()[:24]

    def _messages(self, request: Request, csrf: str) -> dict[str, str]:
        """The notice or problem an action left for the page it redirected to: shown only when the
        action signed it for this browser (a link from elsewhere cannot put words in the page)."""
        params = request.query_params
        notice, problem = params.get("notice", "")[:300], params.get("problem", "")[:300]
        if (notice or problem) and hmac.compare_digest(params.get("sig", ""), self._sign(csrf, notice, problem)):
            return {"notice": notice, "problem": problem}
        return {"notice": "", "problem": ""}

    def _fragment(self, template: str, **context: Any) -> str:
        return self.templates[template].render(ui=UI, **context)

    async def _shared(self, key: tuple[Any, ...], make: Callable[[], Awaitable[Any]]) -> Any:
        """`make()`'s value, made at most once per tick for every stream that asks (one look at the
        store, one rendering, however many dashboards are open)."""
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < TICK * 0.8:
            return cached[1]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value = await make()
        except asyncio.CancelledError:
            future.cancel()  # the others ask again on their next tick
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when no one else waited
            raise
        else:
            future.set_result(value)
            made = time.monotonic()
            self._cache[key] = (made, value)
            if len(self._cache) > 64:  # views nobody looks at any more: forget them
                for old in [k for k, (at, _) in self._cache.items() if made - at > 10 * TICK]:
                    del self._cache[old]
            return value
        finally:
            del self._pending[key]

    # Tasks.

    def _row(self, task: Task, now: float) -> dict[str, Any]:
        state = lifecycle.task_state(task, now, poll=False)
        return {
            "id": task.id,
            "scenario": task.scenario.name,
            "selected_by": task.selected_by,
            "via": task.via,
            "status": self.rt.render.word(state),
            "phase": state.phase,
            "progress": state.progress,
            "polls": task.polls,
            "age": lifecycle.age(task, now),
            "stalled": task.frozen is not None,
            "forced": task.forced is not None,
        }

    async def _newest(self) -> tuple[list[Task], int, float]:
        return await self.rt.state.newest_tasks(SCAN if self.rt.state.kind == "memory" else SCAN_SHARED)

    async def _tasks(self, status: str, scenario: str) -> dict[str, Any]:
        tasks, total, now = await self._shared(("newest",), self._newest)
        rows = []
        for task in tasks:
            if scenario and task.scenario.name != scenario:
                continue
            row = self._row(task, now)
            if status and row["status"] != status:
                continue
            rows.append(row)
            if len(rows) >= SHOWN:
                break
        return {
            "rows": rows,
            "total": total,
            "scanned": len(tasks),
            "shown_limit": SHOWN,
            "status": status,
            "scenario": scenario,
        }

    async def _clock(self) -> dict[str, Any]:
        reading = await self.rt.clock()
        pushed = await self.rt.pushed()
        default = await self.rt.default()
        clock = reading.describe()
        now = float(clock["now"])  # type: ignore[arg-type]
        clock["shown"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)) + f".{int(now * 10) % 10} UTC"
        return {"clock": clock, "pushed": [(s.name, n) for s, n in pushed], "default": default.name}

    async def _task_detail(self, task_id: str, base_url: str) -> dict[str, Any] | None:
        try:
            found = await self.rt.task(task_id)
        except ApiError:
            return None
        attempts: list[Attempt] = []
        pending: list[Delivery] = []
        if self.rt.contract.shapes.callbacks is not None:  # else there is nothing to look at
            attempts, pending = await self.rt.callback_attempts(task_id)
        # The whole journal is read only when the task moved or a callback was attempted (its
        # outgoing entry is one of the task's requests).
        seen = (found.task.polls, found.task.version, len(attempts), attempts[0].wall_time if attempts else 0.0)
        known = self._entries.get(task_id)
        if known is None or known[0] != seen:
            entries = await self.rt.requests(task_id=task_id)
            if len(self._entries) >= 64:
                self._entries.clear()
            self._entries[task_id] = known = (seen, entries)
        return self._detail(found, known[1], base_url, attempts[:CALLBACKS_SHOWN], pending[:CALLBACKS_SHOWN])

    def _detail(
        self, found: Found, entries: list[Entry], base_url: str, attempts: list[Attempt], pending: list[Delivery]
    ) -> dict[str, Any]:
        task, now = found.task, found.now
        view = self.rt.task_view(found, base_url)
        row = self._row(task, now)
        stands = lifecycle.age(task, now)
        since = now - task.created_at
        polls = sorted(e.time - task.created_at for e in entries if e.method == "GET" and e.task_id == task.id)
        steps = [
            {
                "at": step.at,
                "status": step.word or self.rt.render.words[step.phase],
                "phase": step.phase,
                "progress": step.progress,
                "error": (step.error or {}).get("code") if isinstance(step.error, dict) else None,
            }
            for step in task.scenario.timeline
        ]
        made = sorted(attempts, key=lambda a: (a.time, a.wall_time))  # in the order they were made
        sent = [a.time - task.created_at for a in made]
        due = [d.due - task.created_at for d in pending]
        end = max([1.0, stands, since, *(s["at"] for s in steps), *polls, *sent, *due]) * 1.08
        width, left, right = 760.0, 16.0, 16.0

        def x(t: float) -> float:
            return round(left + (width - left - right) * max(0.0, t) / end, 1)

        ticks = _ticks(end)
        timeline = {
            "width": width,
            "steps": [
                {**s, "x": x(s["at"]), "y": 22 + 12 * (i % 3), "anchor": _anchor(x(s["at"]), width)}
                for i, s in enumerate(steps)
            ],
            "stands": {"t": stands, "x": x(stands)},
            "now": {"t": since, "x": x(since)},
            "polls": _marks([(t, x(t)) for t in polls]),
            "poll_count": len(polls),
            "ticks": [{"t": t, "x": x(t)} for t in ticks],
            "end": end,
        }
        callbacks = None
        if self.rt.contract.shapes.callbacks is not None:
            callbacks = self._callbacks(task, now, made, pending, x)
            timeline["callbacks"] = _marks_by_kind(
                [(row["outcome"], row["t"], row["x"], row["title"]) for row in callbacks["rows"]]
            )
        return {
            "row": row,
            "callbacks": callbacks,
            "view": view,
            "timeline": timeline,
            "entries": [_entry(e) for e in entries[:JOURNAL_SHOWN]],
            # as JSON data first: the answer may hold values of the renderer's own list type
            "answer": yaml.safe_dump(
                json.loads(json.dumps(view["task"])), sort_keys=False, allow_unicode=True, width=100
            ),
        }

    def _callbacks(
        self, task: Task, now: float, made: list[Attempt], pending: list[Delivery], x: Callable[[float], float]
    ) -> dict[str, Any]:
        """A task's callbacks as its page shows them: each attempt made (in order) and each delivery
        to come, placed on the timeline, and the events Redeliver can send again."""
        spec = self.rt.contract.shapes.callbacks
        assert spec is not None
        words = self.rt.render.words
        rows = []
        firsts: set[tuple[str, int]] = set()  # (webhook id, copy): a later first attempt is a redelivery
        for a in made:
            t = a.time - task.created_at
            again = a.attempt == 1 and (a.webhook_id, a.copy) in firsts
            if a.attempt == 1:
                firsts.add((a.webhook_id, a.copy))
            receiver = f"answered {a.status}" if a.status is not None else a.error or "no answer"
            if a.status is not None and a.error:
                receiver += f" ({a.error})"
            word = words.get(a.event, a.event)
            rows.append({
                "event": word, "attempt": a.attempt, "duplicate": a.copy, "t": t, "x": x(t), "outcome": a.outcome,
                "receiver": receiver, "duration_ms": a.duration_ms, "webhook_id": a.webhook_id, "url": a.url,
                "due_in": None, "fault": None, "redelivery": again,
                "title": f"{word} callback, attempt {a.attempt}, at {t:.1f} s: {a.outcome}, {receiver}",
            })  # fmt: skip
        for d in pending:
            t = d.due - task.created_at
            word = words.get(d.event, d.event)
            rows.append({
                "event": word, "attempt": d.attempt, "duplicate": d.copy, "t": t, "x": x(t), "outcome": "pending",
                "receiver": "", "duration_ms": None, "webhook_id": d.webhook_id, "url": redact_url(d.url),
                "due_in": max(0.0, d.due - now), "fault": d.fault, "redelivery": d.redelivery,
                "title": f"{word} callback, attempt {d.attempt}, due at {t:.1f} s",
            })  # fmt: skip
        told = callback_events(task, spec)
        # Redeliver offers the events attempted, and those the task has reached (as the core would send).
        seen = {a.event for a in made} | {phase for phase, at in reached(task).items() if phase in told and at <= now}
        return {
            "field": ".".join(spec.url),
            "url": redact_url(task.callback_url) if task.callback_url else None,
            "events": [words.get(phase, phase) for phase in PHASES if phase in told],
            "rows": rows,
            "made": len(made),
            "redeliver": [(phase, words.get(phase, phase)) for phase in PHASES if phase in seen]
            if task.callback_url
            else [],
        }

    # Pages.

    async def tasks_page(self, request: Request) -> Response:
        status, scenario = self._task_filters(request.query_params)
        return self._page(
            request,
            "tasks.html",
            title="Tasks",
            nav="tasks",
            tasks=await self._tasks(status, scenario),
            top=await self._clock(),
            statuses=self._statuses(),
            scenario_names=sorted(self.rt.scenarios),
            events=self._events_url("tasks", status=status, scenario=scenario),
        )

    async def task_page(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        detail = await self._task_detail(task_id, self.rt.base_url(request))
        if detail is None:
            return self._page(
                request,
                "missing.html",
                status_code=404,
                title="No such task",
                nav="tasks",
                task_id=task_id,
                top=await self._clock(),
                events=self._events_url("clock"),
            )
        return self._page(
            request,
            "task.html",
            title=f"Task {task_id}",
            nav="tasks",
            task_id=task_id,
            detail=detail,
            top=await self._clock(),
            fail_codes=self.fail_codes,
            events=self._events_url("task", id=task_id),
        )

    async def scenarios_page(self, request: Request) -> Response:
        top = await self._clock()
        groups: dict[str, list[dict[str, Any]]] = {}
        for scenario in self.rt.scenarios.values():
            groups.setdefault(_group(scenario), []).append(_scenario(scenario, top["default"]))
        order = ["Success", "Submit errors", "Task failures", "Quirks", "Patterns"]
        ordered = sorted(
            groups.items(), key=lambda item: (order.index(item[0]) if item[0] in order else len(order), item[0])
        )
        return self._page(
            request, "scenarios.html", title="Scenarios", nav="scenarios", groups=ordered, top=top,
            events=self._events_url("scenarios"),
        )  # fmt: skip

    async def journal_page(self, request: Request) -> Response:
        filters = self._journal_filters(request.query_params)
        entries = await self._journal(filters)
        return self._page(
            request,
            "journal.html",
            title="Journal",
            nav="journal",
            filters=filters,
            entries=[_entry(e) for e in entries[:JOURNAL_SHOWN]],
            count=len(entries),
            shown_limit=JOURNAL_SHOWN,
            top=await self._clock(),
            methods=("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"),
            events=self._events_url("journal", since=str(entries[0].id if entries else 0), **filters),
        )

    def _task_filters(self, params: Any) -> tuple[str, str]:
        """The status and scenario filters of the task list ("" for any; unknown values are ignored)."""
        status, scenario = params.get("status", ""), params.get("scenario", "")
        return (status if status in self._statuses() else ""), (scenario if scenario in self.rt.scenarios else "")

    def _journal_filters(self, params: Any) -> dict[str, str]:
        method = params.get("method", "").upper()[:10]
        status = params.get("status", "").strip()[:3]
        return {
            "method": method if method.isalpha() else "",
            "path": params.get("path", "").strip()[:200],
            "status": status if whole_number(status) is not None else "",
            "task": params.get("task", "").strip()[:100],
        }

    @staticmethod
    def _journal_args(filters: dict[str, str]) -> tuple[str | None, str | None, str | None, int | None]:
        """The journal filters as `select` (and `Runtime.requests`) take them."""
        status = int(filters["status"]) if filters["status"] else None
        return filters["method"] or None, filters["path"] or None, filters["task"] or None, status

    async def _journal(self, filters: dict[str, str]) -> list[Entry]:
        return await self.rt.requests(*self._journal_args(filters))

    def _events_url(self, view: str, **params: str) -> str:
        return f"{UI}/events?" + urlencode({"view": view, **{k: v for k, v in params.items() if v}})

    # Actions.

    async def _form(self, request: Request) -> dict[str, str]:
        """The posted form, once its double-submit token matches the cookie (403 otherwise)."""
        raw = await read_body(Incoming(request.scope, request.receive), FORM_LIMIT)
        form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not cookie or not hmac.compare_digest(form.get("csrf", "").encode(), cookie.encode()):
            raise ApiError(
                403,
                "The form's token does not match this browser's: reload the page and try again.",
                code="form_token_mismatch",
            )
        return form

    def _back(self, request: Request, target: str, notice: str = "", problem: str = "") -> RedirectResponse:
        if not target.startswith(UI) or target.startswith("//"):
            target = UI
        notice, problem = notice[:300], problem[:300]
        target = _without_messages(target)  # the page's own filters stay; an earlier message goes
        signed = self._sign(request.cookies.get(CSRF_COOKIE, ""), notice, problem) if notice or problem else ""
        extra = urlencode({k: v for k, v in (("notice", notice), ("problem", problem), ("sig", signed)) if v})
        if extra:
            target += ("&" if "?" in target else "?") + extra
        return RedirectResponse(target, status_code=303)

    async def task_action(self, request: Request) -> Response:
        task_id, action = request.path_params["task_id"], request.path_params["action"]
        form = await self._form(request)
        back = f"{UI}/tasks/{task_id}"
        if action == "redeliver":
            return await self._redeliver(request, task_id, form.get("event", "").strip()[:40] or None, back)
        code = form.get("code", "").strip()[:100] or "generation_failed"
        message = form.get("message", "").strip()[:500] or dict(self.fail_codes).get(code) or None
        try:
            await self.rt.act_on_task(task_id, action, code, message)
        except ApiError as error:
            return self._back(request, back, problem=error.message)
        done = {
            "fail": f"Failed with {code}: the next poll sees it.",
            "complete": "Completed: the next poll sees the video.",
            "cancel": "Cancelled: the next poll sees it cancelled.",
            "stall": "Stalled: the task stays as it is until resumed.",
            "resume": "Resumed: the task runs on from where it stood.",
        }
        return self._back(request, back, notice=done[action])

    async def _redeliver(self, request: Request, task_id: str, event: str | None, back: str) -> Response:
        """What `POST /__admin/tasks/{id}/callback` does; then, for a moment, wait for the attempt, to
        say how it went (the timeline shows it anyway, when it is made)."""

        def key(a: Attempt) -> tuple[Any, ...]:
            return a.event, a.attempt, a.time, a.wall_time, a.webhook_id, a.copy

        try:
            before = {key(a) for a in (await self.rt.callback_attempts(task_id))[0]}
            delivery = await self.rt.redeliver(task_id, event)
        except ApiError as error:
            return self._back(request, back, problem=error.message)
        word = self.rt.render.words.get(delivery.event, delivery.event)
        what = f"Redelivered the {word} callback (webhook id {delivery.webhook_id})"
        await self.rt.settle_callbacks(REDELIVER_WAIT)
        attempts, _ = await self.rt.callback_attempts(task_id)
        made = next((a for a in attempts if a.webhook_id == delivery.webhook_id and key(a) not in before), None)
        if made is None:
            return self._back(request, back, notice=f"{what}: its attempt shows on the timeline when it is made.")
        if made.outcome == "delivered":
            return self._back(request, back, notice=f"{what}: the receiver answered {made.status}.")
        reason = f"answered {made.status}" if made.status is not None else made.error or "no answer"
        return self._back(request, back, problem=f"{what}: {made.outcome}, {reason}.")

    async def clock_action(self, request: Request) -> Response:
        form = await self._form(request)
        back = form.get("next", UI)
        try:
            if "seconds" in form:
                raw = form["seconds"].strip()
                try:
                    seconds = float(raw)
                except ValueError:
                    return self._back(request, back, problem=f"Seconds must be a number, got {raw[:20]!r}.")
                reading = await self.rt.advance(seconds)
                return self._back(
                    request, back, notice=f"Clock advanced by {seconds:g} s (scenario time {reading.now:.1f})."
                )
            mode = form.get("mode") or None
            speed_raw = form.get("speed", "").strip()
            try:
                speed = float(speed_raw) if speed_raw else None
            except ValueError:
                return self._back(request, back, problem=f"Speed must be a number, got {speed_raw[:20]!r}.")
            reading = await self.rt.configure_clock(mode=mode, speed=speed)  # type: ignore[arg-type]
            return self._back(request, back, notice=f"Clock: {reading.mode}, speed {reading.speed:g}.")
        except ClockError as exc:
            return self._back(request, back, problem=str(exc))

    async def scenario_action(self, request: Request) -> Response:
        action = request.path_params["action"]
        form = await self._form(request)
        back = form.get("next", f"{UI}/scenarios")
        name = form.get("scenario", "")
        try:
            if action == "next":
                count = whole_number(form.get("count", "1").strip() or "1")
                if count is None:
                    return self._back(request, back, problem="Submissions must be a whole number of at least 1.")
                await self.rt.push(name, count)
                return self._back(request, back, notice=f"The next {count} submission(s) play {name}.")
            if action == "default":
                await self.rt.set_default(name)
                return self._back(
                    request, back, notice=f"New tasks play {name} unless something else picks their scenario."
                )
            if action == "clear":
                await self.rt.clear_pushed()
                return self._back(request, back, notice="The queue of pushed scenarios is empty.")
        except ApiError as error:
            return self._back(request, back, problem=error.message)
        return self._back(request, back, problem=f"Unknown action {action[:40]!r}.")

    async def reset(self, request: Request) -> Response:
        if request.method == "GET":
            return self._page(
                request,
                "reset.html",
                title="Reset",
                nav="reset",
                top=await self._clock(),
                events=self._events_url("clock"),
            )
        await self._form(request)
        await self.rt.reset()
        return self._back(request, UI, notice="Reset: tasks, journal, counters and run-time choices are forgotten.")

    # Signing in (off loopback).

    async def sign_in(self, request: Request) -> Response:
        token = self.rt.settings.admin_token
        closed = token is None and not self.rt.settings.loopback
        target = request.query_params.get("next", UI)
        failed = False
        if request.method == "POST":
            form = await self._form(request)
            target = form.get("next", UI)
            if token is None:
                return self._back(request, target)  # open (loopback): nothing to sign in to
            failed = not hmac.compare_digest(form.get("token", "").strip().encode(), token.encode())
        if request.method == "GET" or failed:  # 200 even when it failed: a browser logs a 4xx page as an error
            return self._page(
                request, "sign-in.html", title="Sign in", nav="", closed=closed, target=target, failed=failed,
                top=None, events="",
            )  # fmt: skip
        assert token is not None
        response = self._back(request, target)
        response.set_cookie(
            SESSION_COOKIE, session_value(token.encode(), int(time.time())), max_age=SESSION_SECONDS,
            path="/__admin", httponly=True, samesite="strict", secure=self._secure(request),
        )  # fmt: skip
        return response

    def _secure(self, request: Request) -> bool:
        """Cookies only over HTTPS when the fake is reached over HTTPS (or its public URL says so,
        for a fake behind a TLS-terminating proxy)."""
        return request.url.scheme == "https" or (self.rt.public_url or "").startswith("https://")

    async def sign_out(self, request: Request) -> Response:
        await self._form(request)
        response = RedirectResponse(f"{UI}/sign-in", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/__admin")
        return response

    # The live feed.

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

        async def fragments() -> dict[str, str]:
            """This view's fragments, each rendered once per tick for every open page."""
            out = {"clock": await self._shared(("clock",), clock)}
            if view == "tasks":
                out["tasks"] = await self._shared(("tasks", status, scenario), tasks)
            elif view == "task":
                out["task"] = await self._shared(("task", task_id, base_url), task)
            elif view == "scenarios":
                out["pushed"] = await self._shared(("pushed",), pushed)
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
                            listed = self._fragment("_journal.html", entries=[_entry(e) for e in shown])
                            events.append(_event("journal-all", listed, latest))
                            added = 0
                        elif fresh:
                            listed = self._fragment("_entries.html", entries=[_entry(e) for e in fresh])
                            events.append(_event("journal", listed, latest))
                            added += len(fresh)
                        newest = latest if reset else max(newest, latest)
                        top = latest
                except StoreUnavailable as exc:
                    events = [_event("clock", self._fragment("_down.html", reason=str(exc)))]
                    sent.pop("clock", None)
                except Exception as exc:  # a bug here ends this stream (the page reconnects), with no traceback
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


def _without_messages(target: str) -> str:
    base, _, query = target.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in ("notice", "problem", "sig")]
    return base + ("?" + urlencode(kept) if kept else "")


def _marks(points: list[tuple[float, float]]) -> list[dict[str, float]]:
    """One mark per pixel column (the first poll in it), and at most MARKS of them."""
    seen: set[int] = set()
    marks = []
    for t, x in points:
        if int(x) not in seen and len(marks) < MARKS:
            seen.add(int(x))
            marks.append({"t": t, "x": x})
    return marks


def _marks_by_kind(points: list[tuple[str, float, float, str]]) -> list[dict[str, Any]]:
    """Callback marks: one per pixel column and kind (the first in it), and at most MARKS."""
    seen: set[tuple[str, int]] = set()
    marks: list[dict[str, Any]] = []
    for kind, t, x, title in points:
        if (kind, int(x)) not in seen and len(marks) < MARKS:
            seen.add((kind, int(x)))
            marks.append({"kind": kind, "t": t, "x": x, "title": title})
    return marks


def _anchor(x: float, width: float) -> str:
    """Where a label sits against its mark: near an edge, inside the drawing."""
    return "start" if x < 60 else "end" if x > width - 60 else "middle"


def _ticks(end: float) -> list[float]:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400):
        if end / step <= 8:
            return [i * step for i in range(int(end // step) + 1)]
    return [0.0]


def _group(scenario: Scenario) -> str:
    source = Path(scenario.source.split(":")[0]).name if scenario.source else ""
    return GROUPS.get(source, f"From {source}" if source else "Added at run time")


def _scenario(scenario: Scenario, default: str) -> dict[str, Any]:
    return {
        "name": scenario.name,
        "description": scenario.description,
        "default": scenario.name == default,
        "match": [rule.describe() for rule in scenario.rules],
        "yaml": yaml.safe_dump(scenario.data, sort_keys=False, allow_unicode=True, width=100)
        if scenario.data is not None
        else "",
    }


def _entry(entry: Entry) -> dict[str, Any]:
    data = entry.to_json()
    data["clock"] = time.strftime("%H:%M:%S", time.localtime(entry.wall_time))
    return data
