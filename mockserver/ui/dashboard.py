"""The dashboard at `/__admin/ui`: live tasks on their timelines, one-click failure states, the
clock, the scenarios, the journal and an overview of the metrics, for QA, served by the fake itself.

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

The parts, one module each: `base` (templates, the page and its messages, forms, the per-tick
cache), `views` (what the pages and the feed show), `pages`, `actions` (the forms), `feed` (the
live feed) and `signin` (the sign-in form and its limit on wrong tokens); `Dashboard` joins them
and lists the routes.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mockserver.ui.actions import Actions
from mockserver.ui.base import HERE
from mockserver.ui.feed import Feed
from mockserver.ui.pages import Pages
from mockserver.ui.signin import SignIn


class Dashboard(Pages, Actions, Feed, SignIn):
    """The dashboard's routes, mounted at `/__admin/ui` by the app."""

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.tasks_page, methods=["GET"]),
            Route("/tasks/{task_id}", self.task_page, methods=["GET"]),
            Route("/tasks/{task_id}/{action:str}", self.task_action, methods=["POST"]),
            Route("/clock", self.clock_action, methods=["POST"]),
            Route("/scenarios", self.scenarios_page, methods=["GET"]),
            Route("/scenarios/{action:str}", self.scenario_action, methods=["POST"]),
            Route("/journal", self.journal_page, methods=["GET"]),
            Route("/overview", self.overview_page, methods=["GET"]),
            Route("/reset", self.reset, methods=["GET", "POST"]),
            Route("/sign-in", self.sign_in, methods=["GET", "POST"]),
            Route("/sign-out", self.sign_out, methods=["POST"]),
            Route("/events", self.events, methods=["GET"]),
            Mount("/static", app=StaticFiles(directory=HERE / "static"), name="ui-static"),
        ]
