"""The dashboard's shared parts: constants, the base class with page rendering, the form token
(double-submit, SameSite=Strict cookie), signed notices, the redirect back and the per-tick cache
that every open view shares."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mockserver.admin import SESSION_COOKIE, UI, VERSION
from mockserver.errors import ApiError
from mockserver.incoming import Incoming
from mockserver.intake import read_body, whole_number
from mockserver.journal import Entry
from mockserver.runtime import Runtime

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


def age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


class DashboardBase:
    """What every part of the dashboard shares: the runtime, the compiled templates, a page with
    its messages and form token, the posted form, the redirect back, the per-tick cache."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters["age"] = age
        submit = runtime.contract.submit
        self.env.globals["submit_route"] = f"{submit.method} {submit.route}"
        # Compiled once, here: no template is read or compiled while serving.
        self.templates = {name: self.env.get_template(name) for name in self.env.list_templates()}
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._pending: dict[tuple[Any, ...], asyncio.Future[Any]] = {}
        # task id -> (polls, version, attempts, newest attempt's time), entries
        self._entries: dict[str, tuple[tuple[int, int, int, float], list[Entry]]] = {}
        self.fail_codes = self._fail_codes()

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
            here=without_messages(request.url.path + ("?" + request.url.query if request.url.query else "")),
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

    # Filters and links.

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

    # Forms.

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
        target = without_messages(target)  # the page's own filters stay; an earlier message goes
        signed = self._sign(request.cookies.get(CSRF_COOKIE, ""), notice, problem) if notice or problem else ""
        extra = urlencode({k: v for k, v in (("notice", notice), ("problem", problem), ("sig", signed)) if v})
        if extra:
            target += ("&" if "?" in target else "?") + extra
        return RedirectResponse(target, status_code=303)

    def _secure(self, request: Request) -> bool:
        """Cookies only over HTTPS when the fake is reached over HTTPS (or its public URL says so,
        for a fake behind a TLS-terminating proxy)."""
        return request.url.scheme == "https" or (self.rt.public_url or "").startswith("https://")


def without_messages(target: str) -> str:
    base, _, query = target.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in ("notice", "problem", "sig")]
    return base + ("?" + urlencode(kept) if kept else "")


def entry_row(entry: Entry) -> dict[str, Any]:
    """A journal entry as the templates show it (with the wall-clock time it came in)."""
    data = entry.to_json()
    data["clock"] = time.strftime("%H:%M:%S", time.localtime(entry.wall_time))
    return data
