"""The admin API under `/__admin`: look inside the fake and steer it (WireMock's words).

    GET    /__admin/health              liveness, versions and counts
    GET    /__admin/contract            the loaded OpenAPI document, bundled (JSON)
    GET    /__admin/scenarios           every loaded scenario; /__admin/scenarios/{name} one
    GET    /__admin/tasks               every task with its current state; /__admin/tasks/{id} one
    GET    /__admin/clock               mode, speed and scenario time
    PUT    /__admin/clock               {"mode": "manual"|"real", "speed": X}
    POST   /__admin/clock/advance       {"seconds": N} (or ?seconds=N)
    GET    /__admin/requests            the journal, most recent first (?limit=, filters)
    DELETE /__admin/requests            empty the journal
    POST   /__admin/reset               forget tasks and journal, restore the default scenario

Reading a task here never counts as a client poll.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mockserver import render
from mockserver.clock import ClockError
from mockserver.errors import ApiError
from mockserver.intake import parse_json, read_body
from mockserver.lifecycle import observe
from mockserver.runtime import Runtime
from mockserver.scenarios import UNSET, Scenario
from mockserver.store import Task

VERSION = "0.1.0"
ADMIN_BODY_LIMIT = 64 * 1024


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ApiError(422, f"'{name}' must be a number of seconds, got {value!r}.", param=name)
    try:
        number = float(value)
    except ValueError:
        raise ApiError(422, f"'{name}' must be a number, got {value!r}.", param=name) from None
    if not math.isfinite(number):
        raise ApiError(422, f"'{name}' must be a finite number, got {value!r}.", param=name)
    return number


def _scenario_json(scenario: Scenario, default: Scenario, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": scenario.name,
        "description": scenario.description,
        "source": scenario.source,
        "default": scenario is default,
        "match": [rule.describe() for rule in scenario.rules],
    }
    if full:
        submit = scenario.submit
        out["submit"] = {
            "status": submit.status,
            "estimated_time": scenario.estimated_time if submit.status == 200 else None,
            "error": submit.error,
            "headers": dict(submit.headers),
            "creates_task": submit.creates_task,
        }
        out["timeline"] = [
            {
                "at": step.at,
                "status": step.status,
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


class AdminApi:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/contract", self.contract, methods=["GET"]),
            Route("/scenarios", self.scenarios, methods=["GET"]),
            Route("/scenarios/{name}", self.scenario, methods=["GET"]),
            Route("/tasks", self.tasks, methods=["GET"]),
            Route("/tasks/{task_id}", self.task, methods=["GET"]),
            Route("/clock", self.clock, methods=["GET", "PUT"]),
            Route("/clock/advance", self.advance, methods=["POST"]),
            Route("/requests", self.requests, methods=["GET", "DELETE"]),
            Route("/reset", self.reset, methods=["POST"]),
        ]

    async def _json(self, request: Request) -> dict[str, Any]:
        raw = await read_body(request, ADMIN_BODY_LIMIT)
        if not raw.strip():
            return {}
        data = parse_json(raw)
        if not isinstance(data, dict):
            raise ApiError(422, "The admin request body must be a JSON object.")
        return data

    async def health(self, request: Request) -> Response:
        rt = self.rt
        return JSONResponse(
            {
                "status": "ok",
                "version": VERSION,
                "contract": {"title": rt.contract.title, "version": rt.contract.version, "path": str(rt.contract.path)},
                "scenarios": len(rt.scenarios),
                "default_scenario": rt.default.name,
                "tasks": len(rt.store),
                "journal": len(rt.journal),
                "clock": rt.clock.describe(),
            }
        )

    async def contract(self, request: Request) -> Response:
        return JSONResponse(self.rt.contract.document)

    async def scenarios(self, request: Request) -> Response:
        default = self.rt.default
        return JSONResponse({"scenarios": [_scenario_json(s, default) for s in self.rt.scenarios.values()]})

    async def scenario(self, request: Request) -> Response:
        name = request.path_params["name"]
        scenario = self.rt.scenarios.get(name)
        if scenario is None:
            known = ", ".join(sorted(self.rt.scenarios))
            raise ApiError(404, f"No scenario named {name[:80]!r}. Known scenarios: {known}.")
        return JSONResponse(_scenario_json(scenario, self.rt.default, full=True))

    def _task_json(self, task: Task, request: Request) -> dict[str, Any]:
        elapsed = self.rt.clock.now() - task.created_at
        state = observe(task.scenario, elapsed, task.reads, poll=False)
        following = task.scenario.timeline[state.step + 1] if state.step + 1 < len(task.scenario.timeline) else None
        return {
            "id": task.id,
            "scenario": task.scenario.name,
            "key_id": task.key_id,
            "created": task.created,
            "elapsed": round(elapsed, 3),
            "polls": task.polls,
            "request": {"model": task.model, "aspect_ratio": task.aspect_ratio, "generate_audio": task.generate_audio},
            "step": state.step,
            "next_step": None if following is None else {"at": following.at, "status": following.status},
            "task": render.task_body(task, state, self.rt.base_url(request), self.rt.media),
        }

    async def tasks(self, request: Request) -> Response:
        tasks = [self._task_json(task, request) for task in self.rt.store]
        status = request.query_params.get("status")
        scenario = request.query_params.get("scenario")
        tasks = [
            t
            for t in tasks
            if (status is None or t["task"]["status"] == status) and (scenario is None or t["scenario"] == scenario)
        ]
        return JSONResponse({"count": len(tasks), "tasks": tasks})

    async def task(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        task = self.rt.store.get(task_id)
        if task is None:
            raise ApiError(404, f"No task with id {task_id[:100]!r}.", code="task_not_found")
        return JSONResponse(self._task_json(task, request))

    async def clock(self, request: Request) -> Response:
        if request.method == "PUT":
            data = await self._json(request)
            mode = data.get("mode")
            if mode not in (None, "real", "manual"):
                raise ApiError(422, f"'mode' must be 'real' or 'manual', got {mode!r}.", param="mode")
            speed = _number(data["speed"], "speed") if "speed" in data else None
            try:
                self.rt.clock.configure(mode=mode, speed=speed)
            except ClockError as exc:
                raise ApiError(422, str(exc), param="speed") from None
        return JSONResponse(self.rt.clock.describe())

    async def advance(self, request: Request) -> Response:
        data = await self._json(request)
        raw = data.get("seconds", request.query_params.get("seconds"))
        if raw is None:
            raise ApiError(422, "Say how far to move the clock: {\"seconds\": 90} or ?seconds=90.", param="seconds")
        try:
            self.rt.clock.advance(_number(raw, "seconds"))
        except ClockError as exc:
            raise ApiError(422, str(exc), param="seconds") from None
        return JSONResponse(self.rt.clock.describe())

    async def requests(self, request: Request) -> Response:
        journal = self.rt.journal
        if request.method == "DELETE":
            journal.clear()
            return JSONResponse({"count": 0, "requests": []})
        params = request.query_params
        limit_raw = params.get("limit", str(journal.size))
        if not limit_raw.isdigit():
            raise ApiError(422, f"'limit' must be a whole number, got {limit_raw[:20]!r}.", param="limit")
        limit = int(limit_raw)
        method = params.get("method", "").upper() or None
        path = params.get("path")
        task_id = params.get("task_id")
        status = params.get("status")
        selected = [
            entry.to_json()
            for entry in journal.entries()
            if (method is None or entry.method == method)
            and (path is None or entry.path == path)
            and (task_id is None or entry.task_id == task_id)
            and (status is None or str(entry.status) == status)
        ]
        return JSONResponse({"count": len(selected), "requests": selected[:limit]})

    async def reset(self, request: Request) -> Response:
        self.rt.reset()
        return JSONResponse({"status": "reset", "default_scenario": self.rt.default.name})
