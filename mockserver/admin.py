"""The admin API under `/__admin`: look inside the fake and steer it (WireMock's words).

    GET    /__admin/health              liveness, versions and counts
    GET    /__admin/metrics             Prometheus's text format (docs/metrics.md; the `metrics` extra)
    GET    /__admin/contract            the loaded OpenAPI document, bundled (JSON)
    GET    /__admin/scenarios           every loaded scenario; /__admin/scenarios/{name} one
    PUT    /__admin/scenarios/default   {"scenario": NAME}: the default for new tasks
    POST   /__admin/scenarios/next      {"scenario": NAME, "count": N}: the next N submissions
                                        (GET shows the queue, DELETE empties it)
    GET    /__admin/keys                the key map, by key fingerprint
    GET    /__admin/tasks               every task with its current state; /__admin/tasks/{id} one
    POST   /__admin/tasks/{id}/fail     {"code", "message"}: fail a live task now
    POST   /__admin/tasks/{id}/complete complete a live task now, with the fake's video
    POST   /__admin/tasks/{id}/cancel   cancel a live task now (as a client's cancel would)
    POST   /__admin/tasks/{id}/stall    stop the task's time (it stays as it is)
    POST   /__admin/tasks/{id}/resume   let a stalled task run on from where it stood
    POST   /__admin/tasks/{id}/callback {"event", "url"}: deliver the task's callback again, now
    GET    /__admin/callbacks           delivery attempts, most recent first, and those to come (?task=)
    POST   /__admin/callbacks/settle    {"timeout": S}: wait until the deliveries due now are attempted
    GET    /__admin/clock               mode, speed and scenario time
    PUT    /__admin/clock               {"mode": "manual"|"real", "speed": X}
    POST   /__admin/clock/advance       {"seconds": N} (or ?seconds=N)
    GET    /__admin/requests            the journal, most recent first (?limit=, filters)
    DELETE /__admin/requests            empty the journal
    POST   /__admin/reset               forget tasks, journal and run-time choices (the clock keeps
                                        its reading but gets its configured mode and speed back)

Reading a task here never counts as a client poll.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from importlib.metadata import version
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request, cookie_parser
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mockserver.attempts import WrongTokens, client_address, too_many
from mockserver.clock import ClockError
from mockserver.errors import ApiError
from mockserver.incoming import Incoming
from mockserver.intake import parse_json, read_body, whole_number
from mockserver.journal import key_id, redact_url
from mockserver.metrics import INSTALL_HINT, available, exposition, families
from mockserver.responses import JsonResponse
from mockserver.runtime import SCRAPE_PAGES, Runtime
from mockserver.scenarios import UNSET, Scenario
from mockserver.settings import Settings
from mockserver.state import StoreUnavailable
from mockserver.state.base import Delivery

VERSION = version("veo-mockserver")
ADMIN_BODY_LIMIT = 64 * 1024


def _pending(delivery: Delivery) -> dict[str, Any]:
    """A delivery still to make, as `GET /__admin/callbacks` shows it."""
    return {
        "task_id": delivery.task_id, "event": delivery.event, "attempt": delivery.attempt, "due": round(delivery.due, 3),
        "webhook_id": delivery.webhook_id, "url": redact_url(delivery.url), "copy": delivery.copy,
        "fault": delivery.fault, "redelivery": delivery.redelivery,
    }  # fmt: skip


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ApiError(422, f"'{name}' must be a number, got {json.dumps(value)}.", param=name)
    try:
        number = float(value)
    except ValueError:
        raise ApiError(422, f"'{name}' must be a number, got {value!r}.", param=name) from None
    if not math.isfinite(number):
        raise ApiError(422, f"'{name}' must be a finite number, got {value!r}.", param=name)
    return number


def _text(data: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ApiError(422, f"'{name}' must be a non-empty string, got {value!r}.", param=name)
    return value


def _scenario_json(
    scenario: Scenario, default: Scenario, full: bool = False, words: dict[str, str] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": scenario.name,
        "description": scenario.description,
        "source": scenario.source,
        "default": scenario is default,
        "match": [rule.describe() for rule in scenario.rules],
        "mix": [{"scenario": name, "weight": weight} for name, weight in scenario.mix],
        "sequence": list(scenario.sequence),
    }
    if full:
        out["submit"] = [answer.describe() for answer in scenario.submit]
        out["polls"] = [
            {"on": sorted(rule.numbers), "first": rule.first, **rule.answer.describe()} for rule in scenario.polls
        ]
        out["latency"] = {kind: vars(delay) for kind, delay in scenario.latency.items()}
        out["disappears_after"] = scenario.disappears_after
        out["timeline"] = [
            {
                "at": step.at,
                "status": step.word or (words or {}).get(step.phase, step.phase),
                "phase": step.phase,
                "progress": step.progress,
                "ramp": step.ramp,
                "polls": step.polls,
                "results": "the fake's own video" if step.results is UNSET else step.results,
                "error": step.error,
            }
            for step in scenario.timeline
        ]
        out["result_url_ttl"] = scenario.result_url_ttl
    return out


UI = "/__admin/ui"
UI_SIGN_IN = "/__admin/ui/sign-in"
UI_STATIC = "/__admin/ui/static/"
SESSION_COOKIE = "mockserver_session"
SESSION_SECONDS = 12 * 3600  # a dashboard session lasts this long; then sign in again
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def session_value(token: bytes, issued: int) -> str:
    """The dashboard's session cookie for an admin token: when it was issued and a keyed digest of
    that, so the cookie never holds the token, every replica with the same token accepts it, it
    ends after SESSION_SECONDS, and a new token ends it at once."""
    digest = hmac.new(token, f"mockserver dashboard session v2 {issued}".encode(), hashlib.sha256).hexdigest()
    return f"{issued}.{digest}"


def _host_name(host: bytes | None) -> str:
    text = (host or b"").decode("latin-1").strip().lower()
    if text.startswith("["):
        return text.partition("]")[0] + "]"
    return text.rpartition(":")[0] if text.count(":") == 1 else text


def cross_site(headers: dict[bytes, bytes]) -> bool:
    """Whether a browser sent this request from another site or origin (a form or script on a page
    the tester visits that is not this fake): `Sec-Fetch-Site`, else `Origin` against `Host`.
    Programs (curl, httpx, the plugin) send neither and are not refused."""
    fetch_site = headers.get(b"sec-fetch-site")
    if fetch_site is not None and fetch_site not in (b"same-origin", b"none"):
        return True
    origin = headers.get(b"origin")
    if origin is None:
        return False
    return origin == b"null" or urlsplit(origin.decode("latin-1")).netloc.encode("latin-1") != headers.get(b"host")


class AdminGuard:
    """Who may use the admin API. On loopback it is open, unless a token is set; anywhere else it
    requires `Authorization: Bearer <admin token>` (compared in constant time) and refuses every
    request while no token is set. `/health` stays open, since health checks (Docker's) need it;
    but where a token is required, a caller without it gets only what a health check needs
    (status, version, contract version, the store's status): the guard marks its scope `BRIEF`.

    The dashboard (`/__admin/ui`) also accepts the session cookie its sign-in form sets; without
    either, its pages redirect to the sign-in form and everything else there is refused. Requests
    that change state and come from another site (a browser's `Origin` or `Sec-Fetch-Site` says
    so) are refused everywhere under `/__admin`, on loopback too.

    Wrong tokens count per client address (`attempts`, the count the sign-in form keeps too): past
    the limit, a request that sends a token gets 429 with Retry-After, the right token included
    (health then answers what it answers a caller without one)."""

    OPEN = "/__admin/health"
    BRIEF = "mockserver.brief_health"

    def __init__(self, app: ASGIApp, settings: Settings, wrong_tokens: WrongTokens | None = None) -> None:
        self.app = app
        self.wrong_tokens = wrong_tokens if wrong_tokens is not None else WrongTokens()
        self.token = settings.admin_token.encode("utf-8") if settings.admin_token else None
        self.closed = self.token is None and not settings.loopback
        self.open = self.token is None and settings.loopback  # on loopback, without a token
        self.host = settings.host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            refusal: ApiError | None
            if scope["method"] not in ("GET", "HEAD", "OPTIONS") and cross_site(headers):
                refusal = ApiError(
                    403,
                    "Refused: a request that changes the fake's state came from another site (its Origin or "
                    "Sec-Fetch-Site header says so). Use the dashboard or the admin API from this fake's own address.",
                    code="cross_site_request",
                )
                await refusal.response()(scope, receive, send)
                return
            if (
                self.open
                and (b"origin" in headers or b"sec-fetch-site" in headers)
                and _host_name(headers.get(b"host")) not in LOOPBACK_HOSTS  # DNS rebinding: a page of another
            ):
                refusal = ApiError(  # site whose name now points at 127.0.0.1
                    403,
                    "Refused: a browser reached this fake's admin API under another host name than a loopback "
                    "address; open it as http://127.0.0.1:<port>/__admin/ui (or localhost).",
                    code="host_not_loopback",
                )
                await refusal.response()(scope, receive, send)
                return
            if self.token or self.closed:
                path = scope["path"]
                authorization = headers.get(b"authorization")
                address = client_address(scope.get("client")) if self.token and authorization is not None else None
                wait = self.wrong_tokens.wait(address) if address is not None else 0.0
                if wait and path != self.OPEN:
                    await too_many(wait).response()(scope, receive, send)
                    return
                refusal = self._refusal(None if wait else authorization)
                if address is not None and not wait:
                    if refusal is None:
                        self.wrong_tokens.forget(address)
                    else:
                        self.wrong_tokens.wrong(address)
                if refusal is not None and path.startswith(UI) and not self._signed_in(headers.get(b"cookie")):
                    if path == UI_SIGN_IN or path.startswith(UI_STATIC):
                        refusal = None  # the sign-in form and its style sheet give nothing away
                    elif scope["method"] == "GET" and not path.startswith(UI + "/events"):
                        target = f"{UI_SIGN_IN}?{urlencode({'next': path})}"
                        await RedirectResponse(target, status_code=303)(scope, receive, send)
                        return
                elif refusal is not None and path.startswith(UI):
                    refusal = None  # signed in
                if refusal is not None:
                    if path != self.OPEN:
                        await refusal.response()(scope, receive, send)
                        return
                    scope[self.BRIEF] = True
        await self.app(scope, receive, send)

    def _signed_in(self, cookie: bytes | None) -> bool:
        if self.token is None or not cookie:
            return False
        value = cookie_parser(cookie.decode("latin-1")).get(SESSION_COOKIE, "")
        issued, _, _ = value.partition(".")
        if not issued.isdigit() or len(issued) > 12 or not -300 < time.time() - int(issued) < SESSION_SECONDS:
            return False
        return hmac.compare_digest(value.encode("latin-1", "replace"), session_value(self.token, int(issued)).encode())

    def _refusal(self, header: bytes | None) -> ApiError | None:
        if self.token is None:
            return ApiError(
                403,
                f"The admin API is closed: this fake listens on {self.host}, not loopback. Start it with "
                "--admin-token (or MOCKSERVER_ADMIN_TOKEN) and send 'Authorization: Bearer <admin token>'.",
                code="admin_closed",
            )
        scheme, _, token = (header or b"").partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.token):
            return ApiError(
                401, "The admin API needs 'Authorization: Bearer <admin token>'.", code="admin_token_required"
            )
        return None


class AdminApi:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/contract", self.contract, methods=["GET"]),
            Route("/scenarios", self.scenarios, methods=["GET"]),
            Route("/scenarios/default", self.default_scenario, methods=["GET", "PUT"]),
            Route("/scenarios/next", self.next_scenarios, methods=["GET", "POST", "DELETE"]),
            Route("/scenarios/{name}", self.scenario, methods=["GET"]),
            Route("/keys", self.keys, methods=["GET"]),
            Route("/tasks", self.tasks, methods=["GET"]),
            Route("/tasks/{task_id}", self.task, methods=["GET"]),
            Route("/tasks/{task_id}/callback", self.redeliver, methods=["POST"]),
            Route("/tasks/{task_id}/{action:str}", self.task_action, methods=["POST"]),
            Route("/callbacks", self.callbacks, methods=["GET"]),
            Route("/callbacks/settle", self.settle_callbacks, methods=["POST"]),
            Route("/clock", self.clock, methods=["GET", "PUT"]),
            Route("/clock/advance", self.advance, methods=["POST"]),
            Route("/requests", self.requests, methods=["GET", "DELETE"]),
            Route("/reset", self.reset, methods=["POST"]),
        ]

    async def _json(self, request: Request) -> dict[str, Any]:
        raw = await read_body(Incoming(request.scope, request.receive), ADMIN_BODY_LIMIT)
        if not raw.strip():
            return {}
        data = parse_json(raw)
        if not isinstance(data, dict):
            raise ApiError(422, "The admin request body must be a JSON object.")
        return data

    async def health(self, request: Request) -> Response:
        """Status, versions, the store and counts. 503 with status "degraded" while the store is
        unreachable: the replica is alive but cannot serve. A caller without the admin token,
        where one is required (`AdminGuard`), gets status, version, contract version and the
        store's status only: no paths, store URL, scenario names or counts."""
        rt = self.rt
        store = await rt.state.status()
        status = "ok" if store["status"] == "up" else "degraded"
        if request.scope.get(AdminGuard.BRIEF):
            brief = {
                "status": status,
                "version": VERSION,
                "contract": {"version": rt.contract.version},
                "store": {"status": store["status"]},
            }
            return JsonResponse(brief, status_code=200 if store["status"] == "up" else 503)
        body: dict[str, Any] = {
            "status": status,
            "version": VERSION,
            "contract": {"title": rt.contract.title, "version": rt.contract.version},
            "store": {"kind": store["kind"], "status": store["status"]},
        }
        if store["status"] != "up":
            return JsonResponse(body, status_code=503)
        try:
            counts, clock, default = await rt.state.counts(), await rt.clock(), await rt.default()
        except StoreUnavailable:
            return JsonResponse(
                {**body, "status": "degraded", "store": {"kind": store["kind"], "status": "down"}}, status_code=503
            )
        body["store"] = store
        body["contract"]["path"] = str(rt.contract.path)
        body.update(
            {
                "scenarios": len(rt.scenarios),
                "default_scenario": default.name,
                **counts,
                "clock": clock.describe(),
            }
        )
        return JsonResponse(body)

    async def metrics(self, request: Request) -> Response:
        """The metrics in Prometheus's text format, made by the official client library (after
        counting the tasks that ended since the last count)."""
        rt = self.rt
        if rt.metrics is None:
            raise ApiError(
                404, "Metrics are off: this fake was started with --no-metrics (MOCKSERVER_METRICS=false).",
                code="metrics_off",
            )  # fmt: skip
        if not available():
            raise ApiError(
                501, f"GET /__admin/metrics needs the 'metrics' extra (the Prometheus client library): {INSTALL_HINT}. "
                "The dashboard's overview shows the same numbers without it.", type="server_error",
                code="metrics_not_installed",
            )  # fmt: skip
        try:
            await rt.count_finished(pages=SCRAPE_PAGES)
        except StoreUnavailable:
            pass  # the store's outage shows as mockserver_store_up 0; the counts so far are still true
        up = (await rt.state.status())["status"] == "up"
        info = {"version": VERSION, "contract": rt.contract.version, "store": rt.state.kind}
        body, media_type = exposition(families(rt.metrics, info, up), request.headers.get("accept"))
        return Response(body, headers={"content-type": media_type, "cache-control": "no-store"})

    async def contract(self, request: Request) -> Response:
        """The loaded document, pointing at this fake (its own `servers` name the paid API)."""
        fake = {
            "url": self.rt.base_url(request) + self.rt.contract.prefix,
            "description": "This mock server (free, offline).",
        }
        return JsonResponse({**self.rt.contract.document, "servers": [fake]})

    async def scenarios(self, request: Request) -> Response:
        default = await self.rt.default()
        return JsonResponse({"scenarios": [_scenario_json(s, default) for s in self.rt.scenarios.values()]})

    async def scenario(self, request: Request) -> Response:
        scenario = self.rt.selector.named(request.path_params["name"])
        return JsonResponse(_scenario_json(scenario, await self.rt.default(), full=True, words=self.rt.render.words))

    async def default_scenario(self, request: Request) -> Response:
        if request.method == "PUT":
            await self.rt.set_default(_text(await self._json(request), "scenario"))  # type: ignore[arg-type]
        default = await self.rt.default()
        return JsonResponse({"scenario": default.name, "configured": self.rt.settings.default_scenario})

    async def next_scenarios(self, request: Request) -> Response:
        if request.method == "POST":
            data = await self._json(request)
            count = data.get("count", 1)
            if isinstance(count, bool) or not isinstance(count, int):
                raise ApiError(422, f"'count' must be a whole number, got {count!r}.", param="count")
            await self.rt.push(_text(data, "scenario"), count)  # type: ignore[arg-type]
        elif request.method == "DELETE":
            await self.rt.clear_pushed()
        queue = [{"scenario": scenario.name, "count": left} for scenario, left in await self.rt.pushed()]
        return JsonResponse({"next": queue})

    async def keys(self, request: Request) -> Response:
        keys = [{"key_id": key_id(key), "scenario": name} for key, name in self.rt.selector.keys.items()]
        return JsonResponse({"count": len(keys), "keys": keys})

    async def tasks(self, request: Request) -> Response:
        params = request.query_params
        tasks = await self.rt.task_views(self.rt.base_url(request), params.get("status"), params.get("scenario"))
        return JsonResponse({"count": len(tasks), "tasks": tasks})

    async def task(self, request: Request) -> Response:
        found = await self.rt.task(request.path_params["task_id"])
        return JsonResponse(self.rt.task_view(found, self.rt.base_url(request)))

    async def task_action(self, request: Request) -> Response:
        task_id, action = request.path_params["task_id"], request.path_params["action"]
        data = await self._json(request) if action == "fail" else {}
        code = _text(data, "code", required=False) or "generation_failed"
        found = await self.rt.act_on_task(task_id, action, code, _text(data, "message", required=False))
        return JsonResponse(self.rt.task_view(found, self.rt.base_url(request)))

    async def callbacks(self, request: Request) -> Response:
        params = request.query_params
        limit_raw = params.get("limit", "1000")
        limit = whole_number(limit_raw)
        if limit is None:
            raise ApiError(422, f"'limit' must be 0 or a positive whole number, got {limit_raw[:20]!r}.", param="limit")
        attempts, pending = await self.rt.callback_attempts(params.get("task"))
        return JsonResponse(
            {
                "documented": self.rt.contract.shapes.callbacks is not None,
                "count": len(attempts),
                "attempts": [attempt.to_json() for attempt in attempts[:limit]],
                "pending": [_pending(delivery) for delivery in pending[:limit]],
            }
        )

    async def settle_callbacks(self, request: Request) -> Response:
        data = await self._json(request)
        timeout = _number(data.get("timeout", request.query_params.get("timeout", 30)), "timeout")
        if not 0 < timeout <= 600:
            raise ApiError(
                422,
                f"'timeout' is real seconds to wait, more than 0 and at most 600, got {timeout:g}.",
                param="timeout",
            )
        settled = await self.rt.settle_callbacks(timeout)
        now = await self.rt.now()
        _, pending = await self.rt.callback_attempts()
        due = [_pending(delivery) for delivery in pending if delivery.due <= now]
        return JsonResponse({"settled": settled, "due": due}, status_code=200 if settled else 504)

    async def redeliver(self, request: Request) -> Response:
        data = await self._json(request)
        event = _text(data, "event", required=False)
        url = _text(data, "url", required=False)
        if url is not None and not url.startswith(("http://", "https://")):
            raise ApiError(422, f"'url' must be an http(s) URL, got {url[:80]!r}.", param="url")
        delivery = await self.rt.redeliver(request.path_params["task_id"], event, url)
        return JsonResponse({"status": "scheduled", "delivery": _pending(delivery)}, status_code=202)

    async def clock(self, request: Request) -> Response:
        if request.method == "PUT":
            data = await self._json(request)
            mode = data.get("mode")
            if mode not in (None, "real", "manual"):
                raise ApiError(422, f"'mode' must be 'real' or 'manual', got {mode!r}.", param="mode")
            speed = _number(data["speed"], "speed") if "speed" in data else None
            try:
                reading = await self.rt.configure_clock(mode=mode, speed=speed)
            except ClockError as exc:
                raise ApiError(422, str(exc), param="speed") from None
        else:
            reading = await self.rt.clock()
        return JsonResponse(reading.describe())

    async def advance(self, request: Request) -> Response:
        data = await self._json(request)
        raw = data.get("seconds", request.query_params.get("seconds"))
        if raw is None:
            raise ApiError(422, 'Say how far to move the clock: {"seconds": 90} or ?seconds=90.', param="seconds")
        try:
            reading = await self.rt.advance(_number(raw, "seconds"))
        except ClockError as exc:
            raise ApiError(422, str(exc), param="seconds") from None
        return JsonResponse(reading.describe())

    async def requests(self, request: Request) -> Response:
        if request.method == "DELETE":
            await self.rt.clear_journal()
            return JsonResponse({"count": 0, "requests": []})
        params = request.query_params
        size = self.rt.settings.journal_size
        limit_raw = params.get("limit", str(size))
        limit = whole_number(limit_raw)
        if limit is None:
            raise ApiError(422, f"'limit' must be 0 or a positive whole number, got {limit_raw[:20]!r}.", param="limit")
        status_raw = params.get("status")
        status = whole_number(status_raw) if status_raw is not None else None
        if status_raw is not None and status is None:
            raise ApiError(422, f"'status' must be an HTTP status code, got {status_raw[:20]!r}.", param="status")
        direction = params.get("direction")
        if direction not in (None, "incoming", "outgoing"):
            raise ApiError(
                422, f"'direction' is incoming (requests to the fake) or outgoing (its callbacks), not {direction[:20]!r}.",
                param="direction",
            )  # fmt: skip
        selected = await self.rt.requests(
            params.get("method"), params.get("path"), params.get("task_id"), status, direction
        )
        return JsonResponse({"count": len(selected), "requests": [entry.to_json() for entry in selected[:limit]]})

    async def reset(self, request: Request) -> Response:
        await self.rt.reset()
        return JsonResponse({"status": "reset", "default_scenario": (await self.rt.default()).name})
