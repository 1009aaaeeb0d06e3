"""The dashboard's forms: each checks the form token, calls the same `Runtime` control as the admin
API and redirects back with a signed notice or problem."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mockserver.admin import UI
from mockserver.clock import ClockError
from mockserver.errors import ApiError
from mockserver.intake import whole_number
from mockserver.state.base import Attempt
from mockserver.ui.base import REDELIVER_WAIT
from mockserver.ui.views import Views


class Actions(Views):
    """The forms that change state (post, redirect, get): a task's buttons, the clock, scenarios, reset."""

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
