"""What the pages and the feed show, read from the store and shaped for the templates: the task
table, the clock bar, a task's detail (its timeline, polls and callbacks)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import yaml

from contracts._vocabulary import PHASES
from mockserver import lifecycle
from mockserver.callbacks.plan import events as callback_events
from mockserver.callbacks.plan import reached
from mockserver.errors import ApiError
from mockserver.journal import Entry, redact_url
from mockserver.runtime import SCRAPE_PAGES
from mockserver.state import Found
from mockserver.state.base import Attempt, Delivery
from mockserver.state.task import Task
from mockserver.ui.base import CALLBACKS_SHOWN, JOURNAL_SHOWN, MARKS, SCAN, SCAN_SHARED, SHOWN, DashboardBase, entry_row


class Views(DashboardBase):
    """The data the pages and the live feed show: task rows, the clock, a task's detail and timeline."""

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

    async def _overview(self) -> dict[str, Any] | None:
        """The metrics' numbers for a person without Prometheus (None: the metrics are off): tasks
        by state, polls per task by scenario, the keys that poll the most, refusals, callbacks."""
        metrics = self.rt.metrics
        if metrics is None:
            return None
        await self.rt.count_finished(pages=SCRAPE_PAGES)
        ended = metrics.tasks_by_state()
        polls = [
            {"scenario": scenario, "tasks": h.count, "mean": h.sum / h.count, "median": h.quantile(0.5)}
            for scenario, h in sorted(metrics.polls_per_task.items())
            if h.count
        ]
        return {
            "created": metrics.tasks_created(),
            "live": metrics.live or 0,
            "ended": sorted(ended.items()),
            "polls": polls,
            "pollers": metrics.pollers(),
            "refused": [(status, code, n) for (status, code), n in sorted(metrics.refused.items())],
            "callbacks": sorted(metrics.callbacks.items()),
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
        steps: list[dict[str, Any]] = [
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
            "entries": [entry_row(e) for e in entries[:JOURNAL_SHOWN]],
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


def _marks(points: list[tuple[float, float]]) -> list[dict[str, float]]:
    """One mark per pixel column (the first poll in it), and at most MARKS of them."""
    seen: set[int] = set()
    marks: list[dict[str, float]] = []
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
