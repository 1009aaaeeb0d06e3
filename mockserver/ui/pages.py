"""The dashboard's pages (GET): the task list, a task, the scenario catalogue, the journal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import Response

from mockserver.scenarios import Scenario
from mockserver.ui.base import GROUPS, JOURNAL_SHOWN, entry_row
from mockserver.ui.views import Views


class Pages(Views):
    """The pages a tester opens: tasks, one task, scenarios, the journal."""

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

    async def overview_page(self, request: Request) -> Response:
        return self._page(
            request,
            "overview.html",
            title="Overview",
            nav="overview",
            overview=await self._overview(),
            top=await self._clock(),
            events=self._events_url("overview"),
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
            entries=[entry_row(e) for e in entries[:JOURNAL_SHOWN]],
            count=len(entries),
            shown_limit=JOURNAL_SHOWN,
            top=await self._clock(),
            methods=("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"),
            events=self._events_url("journal", since=str(entries[0].id if entries else 0), **filters),
        )


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
