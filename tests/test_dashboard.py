"""The dashboard at /__admin/ui, in real Chromium (Debian's package, driven by Playwright for Python),
against real `mockserver serve` processes; a client program's view is checked with httpx.

Every page load goes through a route that lets only loopback through (anything else is aborted
and fails the test), and every console error or page error fails the test."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from mockserver.journal import key_id
from mockserver.scenarios import load_directories
from mockserver.settings import SHIPPED_SCENARIOS, Settings
from mockserver.testing import LiveServer
from tests.conftest import BODIES, SUBMIT, validator_for
from tests.services import Replica, replicas

KEY = "sk-dashboard-secret-9f8e7d"
HEADERS = {"Authorization": f"Bearer {KEY}"}
LIVE = 5_000  # ms a live change may take to show, at most (the feed ticks every 0.5 s)
VALIDATOR = validator_for("seed")
SHIPPED = load_directories([SHIPPED_SCENARIOS])
REPLICATE = Path(__file__).resolve().parents[1] / "examples" / "contracts" / "replicate.yaml"


def submit(base: str, **body: Any) -> str:
    response = httpx.post(base + SUBMIT, json={**BODIES["seed"], **body}, headers=HEADERS, timeout=10)
    VALIDATOR.validate(response)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def poll(base: str, task_id: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/v1/tasks/{task_id}", headers=HEADERS, timeout=10)
    VALIDATOR.validate(response)
    assert response.status_code == 200, response.text
    return response.json()


def admin(base: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{base}/__admin{path}", timeout=10, **kwargs)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if shutil.which("chromium") is None:
        pytest.fail("the dashboard tests need Debian's chromium: `make test` installs it (tools/system-deps.sh)")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=shutil.which("chromium"),
        args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    )
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Replica]:
    replica = Replica(["--clock", "manual", "--log-level", "warning", "--no-access-log"]).start()
    yield replica
    replica.stop()


class Watched:
    """A page whose console errors, page errors and any request off loopback are kept."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.outside: list[str] = []
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.context.route("**/*", self._only_loopback)

    def _only_loopback(self, route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname in ("127.0.0.1", "localhost") or url.startswith("data:"):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def check(self) -> None:
        assert self.outside == [], f"requests left loopback: {self.outside}"
        assert self.errors == [], f"console errors: {self.errors}"


@pytest.fixture
def watched(browser: Browser, server: Replica) -> Iterator[Watched]:
    admin(server.url, "POST", "/reset")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = Watched(context.new_page())
    yield page
    context.close()
    page.check()


def mark_page(page: Page) -> None:
    """A flag that a reload would wipe: live changes must keep it."""
    page.evaluate("window.__notReloaded = true")


def not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"


def test_a_submitted_task_appears_live_and_moves_on_its_timeline(watched: Watched, server: Replica) -> None:
    page = watched.page
    page.goto(f"{server.url}/__admin/ui")
    expect(page.get_by_role("heading", name="Tasks")).to_be_visible()
    expect(page.get_by_text("No tasks yet")).to_be_visible()
    mark_page(page)
    task_id = submit(server.url)
    row = page.locator(f'tr[data-task="{task_id}"]')
    expect(row).to_be_visible(timeout=LIVE)
    expect(row).to_contain_text("pending")
    expect(row).to_contain_text("default")
    admin(server.url, "POST", "/clock/advance", json={"seconds": 30})
    poll(server.url, task_id)
    expect(row).to_contain_text("processing", timeout=LIVE)
    expect(row.locator("td").nth(5)).to_have_text("1", timeout=LIVE)  # the poll, counted
    not_reloaded(page)

    row.get_by_role("link", name=task_id).click()
    expect(page.get_by_role("heading", name=f"Task {task_id}")).to_be_visible()
    timeline = page.get_by_role("img", name=f"Timeline of {task_id} against scenario time")
    expect(timeline).to_be_visible()
    expect(timeline.locator("desc")).to_contain_text("1 client polls marked")
    expect(timeline.locator("line.poll")).to_have_count(1)
    expect(timeline.locator("g.step")).to_have_count(len(SHIPPED["default"].timeline))
    mark_page(page)
    poll(server.url, task_id)
    expect(timeline.locator("desc")).to_contain_text("2 client polls marked", timeout=LIVE)  # same instant: one mark
    expect(page.locator(".journal .entry")).to_have_count(3, timeout=LIVE)  # the submit and two polls
    admin(server.url, "POST", "/clock/advance", json={"seconds": 600})
    expect(page.locator(".facts")).to_contain_text("completed", timeout=LIVE)
    not_reloaded(page)


def test_the_timeline_draws_every_step_of_the_scenario(watched: Watched, server: Replica) -> None:
    page = watched.page
    task_id = submit(server.url, prompt="[mock:content-policy] a cat")
    steps = admin(server.url, "GET", "/scenarios/content-policy").json()["timeline"]
    page.goto(f"{server.url}/__admin/ui/tasks/{task_id}")
    timeline = page.get_by_role("img", name=re.compile("Timeline of"))
    expect(timeline.locator("g.step")).to_have_count(len(steps))
    expect(timeline).to_contain_text("content_policy_violation")
    expect(page.locator(".facts")).to_contain_text("content-policy, chosen by rule")


@pytest.mark.parametrize("action", ["Fail", "Complete", "Stall", "Resume"])
def test_each_task_button_changes_what_the_next_poll_sees(watched: Watched, server: Replica, action: str) -> None:
    page = watched.page
    task_id = submit(server.url)
    admin(server.url, "POST", "/clock/advance", json={"seconds": 30})
    before = poll(server.url, task_id)
    assert before["status"] == "processing"
    page.goto(f"{server.url}/__admin/ui/tasks/{task_id}")
    if action == "Resume":  # resume needs a stalled task
        page.get_by_role("button", name="Stall", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("Stalled")
    if action == "Fail":
        page.get_by_label("Failure code").select_option("content_policy_violation")
        page.get_by_label("Message").fill("Refused by the dashboard test.")
    page.get_by_role("button", name=action, exact=True).click()
    expect(page.get_by_role("status")).to_be_visible()
    admin(server.url, "POST", "/clock/advance", json={"seconds": 20})
    after = poll(server.url, task_id)
    if action == "Fail":
        assert after["status"] == "failed"
        assert after["error"]["code"] == "content_policy_violation"
        assert after["error"]["message"] == "Refused by the dashboard test."
    elif action == "Complete":
        assert after["status"] == "completed" and after["results"]
    elif action == "Stall":
        assert (after["status"], after["progress"]) == (before["status"], before["progress"])
    else:  # stalled at 30 s, resumed: 20 s more of its timeline have passed
        assert after["progress"] > before["progress"] or after["status"] != before["status"]
    expect(page.locator(".facts")).to_contain_text(after["status"], timeout=LIVE)


def test_a_button_on_a_finished_task_says_why_it_cannot(watched: Watched, server: Replica) -> None:
    page = watched.page
    task_id = submit(server.url)
    admin(server.url, "POST", f"/tasks/{task_id}/complete")
    page.goto(f"{server.url}/__admin/ui/tasks/{task_id}")
    page.get_by_role("button", name="Fail", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("already completed")
    assert poll(server.url, task_id)["status"] == "completed"


class Receiver:
    """A callback receiver on a loopback port (the standard library's HTTP server): it answers each
    POST with the next status of its script (the last one from then on) and keeps what it got."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.got: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> Self:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_callback_attempts_are_on_the_timeline_and_redeliver_sends_one_again(browser: Browser) -> None:
    secret = "hook-token-5b1e9a"  # in the receiver URL: never on the page
    done = max(step.at for step in SHIPPED["default"].timeline)  # when the task succeeds
    fake = Replica(["--contract", str(REPLICATE), "--clock", "manual", "--log-level", "warning", "--no-access-log"])
    with Receiver([500, 204]) as receiver:
        fake.start()
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            base = fake.url
            submitted = httpx.post(
                f"{base}/v1/models/lightricks/ltx-2.5-fast/predictions", headers=HEADERS, timeout=10,
                json={"input": {"prompt": "A lighthouse at dusk"}, "webhook": f"{receiver.url}/hook?token={secret}"},
            )  # fmt: skip
            assert submitted.status_code == 201, submitted.text
            task_id = submitted.json()["id"]
            watched = Watched(context.new_page())
            page = watched.page
            page.goto(f"{base}/__admin/ui/tasks/{task_id}")
            callbacks = page.locator("section.callbacks")
            planned = callbacks.locator('tr[data-outcome="pending"]')  # planned at the submit, on the scenario
            expect(planned).to_contain_text("due in 1 min 30 s" if done == 90 else "due in")
            expect(planned.locator("td").nth(2)).to_have_text(f"{done:.1f} s")
            expect(page.get_by_role("button", name=re.compile("Redeliver"))).to_have_count(0)  # nothing reached yet
            timeline = page.get_by_role("img", name=re.compile("Timeline of"))
            expect(timeline.locator("g.cb-mark")).to_have_count(1)
            expect(timeline.locator('g.cb-mark[data-outcome="pending"]')).to_have_count(1)
            mark_page(page)

            def advance(seconds: float) -> None:
                admin(base, "POST", "/clock/advance", json={"seconds": seconds})
                assert admin(base, "POST", "/callbacks/settle", json={"timeout": 10}).json()["settled"]

            advance(done)  # succeeded: the first attempt, answered 500; the retry is due 1 s later
            first = callbacks.locator('tr[data-outcome="retrying"]')
            expect(first).to_contain_text("answered 500", timeout=LIVE)
            expect(first).to_contain_text("succeeded")
            expect(first.locator("td").nth(1)).to_have_text("1")
            expect(first.locator("td").nth(2)).to_have_text(f"{done:.1f} s")
            expect(callbacks.locator('tr[data-outcome="pending"]')).to_contain_text("due in 1.0 s")
            expect(timeline.locator('g.cb-mark[data-outcome="retrying"]')).to_have_count(1)
            expect(timeline.locator('g.cb-mark[data-outcome="pending"]')).to_have_count(1)

            advance(1)  # the retry: answered 204
            second = callbacks.locator('tr[data-outcome="delivered"]')
            expect(second).to_contain_text("answered 204", timeout=LIVE)
            expect(second.locator("td").nth(1)).to_have_text("2")
            expect(second.locator("td").nth(2)).to_have_text(f"{done + 1:.1f} s")
            expect(callbacks.locator('tr[data-outcome="pending"]')).to_have_count(0)
            expect(timeline.locator('g.cb-mark[data-outcome="delivered"]')).to_have_count(1)
            expect(timeline.locator("desc")).to_contain_text("succeeded callback, attempt 2")
            not_reloaded(page)
            assert len(receiver.got) == 2

            page.get_by_role("button", name="Redeliver succeeded").click()
            expect(page.get_by_role("status")).to_contain_text("the receiver answered 204")
            assert len(receiver.got) == 3
            assert receiver.got[2][0]["webhook-id"] == receiver.got[0][0]["webhook-id"]  # one event, one id
            expect(callbacks.locator('tr[data-outcome="delivered"]')).to_have_count(2)
            expect(callbacks.locator('tr[data-outcome="delivered"]').last).to_contain_text("redelivery")
            expect(timeline.locator('g.cb-mark[data-outcome="delivered"]')).to_have_count(1)  # same instant: one mark
            expect(page.locator(".journal .entry", has_text="callback sent")).to_have_count(3)

            receiver.statuses = [503]  # a redelivery is one attempt: a failing receiver fails it
            page.get_by_role("button", name="Redeliver succeeded").click()
            expect(page.get_by_role("alert")).to_contain_text("failed, answered 503")
            expect(callbacks.locator('tr[data-outcome="failed"]')).to_contain_text("answered 503")
            expect(timeline.locator('g.cb-mark[data-outcome="failed"]')).to_have_count(1)
            assert len(receiver.got) == 4
            expect(callbacks).to_contain_text(f"{receiver.url}/hook?token=")
            for shown in (callbacks, timeline, page.get_by_role("alert")):
                assert secret not in shown.inner_html()
            watched.check()
        finally:
            context.close()
            fake.stop()


def test_without_documented_callbacks_a_task_page_shows_none_and_redeliver_says_why(server: Replica) -> None:
    """Under the shipped contract (no callbacks) the task page has no callbacks section, and the
    dashboard's redeliver answers what the admin API does."""
    task_id = submit(server.url)
    page = httpx.get(f"{server.url}/__admin/ui/tasks/{task_id}", timeout=10)
    assert page.status_code == 200
    for absent in ("Callbacks", "redeliver-form", "cb-mark", "Redeliver"):
        assert absent not in page.text
    csrf = page.cookies["mockserver_csrf"]
    answer = httpx.post(
        f"{server.url}/__admin/ui/tasks/{task_id}/redeliver", data={"csrf": csrf, "event": "succeeded"},
        cookies={"mockserver_csrf": csrf}, timeout=10,
    )  # fmt: skip
    assert answer.status_code == 303
    shown = httpx.get(f"{server.url}{answer.headers['location']}", cookies={"mockserver_csrf": csrf}, timeout=10)
    assert "The contract documents no callbacks" in shown.text


def test_advance_moves_the_clock_and_the_mode_and_speed_can_be_set(watched: Watched, server: Replica) -> None:
    page = watched.page
    page.goto(f"{server.url}/__admin/ui")
    before = admin(server.url, "GET", "/clock").json()["now"]
    page.get_by_label("Seconds").fill("90")
    page.get_by_role("button", name="Advance").click()
    expect(page.get_by_role("status")).to_contain_text("advanced by 90 s")
    assert admin(server.url, "GET", "/clock").json()["now"] == pytest.approx(before + 90, abs=0.01)
    # With the keyboard only: the field, a number, Enter.
    page.get_by_label("Seconds").focus()
    page.keyboard.press("Control+A")
    page.keyboard.type("10")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("advanced by 10 s")
    assert admin(server.url, "GET", "/clock").json()["now"] == pytest.approx(before + 100, abs=0.01)
    page.get_by_label("Mode").select_option("real")
    page.get_by_label("Speed").fill("60")
    page.get_by_role("button", name="Set clock").click()
    expect(page.get_by_role("status")).to_contain_text("real, speed 60")
    clock = admin(server.url, "GET", "/clock").json()
    assert (clock["mode"], clock["speed"]) == ("real", 60)
    page.get_by_label("Mode").select_option("manual")
    page.get_by_role("button", name="Set clock").click()
    expect(page.get_by_role("status")).to_contain_text("manual")
    page.get_by_label("Seconds").fill("-5")
    page.get_by_label("Seconds").evaluate("e => e.removeAttribute('min')")
    page.get_by_role("button", name="Advance").click()
    expect(page.get_by_role("alert")).to_be_visible()


def test_a_scenario_pushed_for_the_next_submission_is_played(watched: Watched, server: Replica) -> None:
    page = watched.page
    page.goto(f"{server.url}/__admin/ui/scenarios")
    for group in ("Success", "Submit errors", "Task failures", "Quirks", "Patterns"):
        expect(page.get_by_role("heading", name=group, exact=True)).to_be_visible()
    card = page.locator("#scenario-content-policy")
    expect(card).to_contain_text("do not resubmit the same prompt")
    card.get_by_text("YAML").click()
    expect(card.locator("pre")).to_contain_text("content_policy_violation")
    card.get_by_label("Submissions", exact=True).fill("2")
    card.get_by_role("button", name="Use content-policy for the next submissions").click()
    expect(page.get_by_role("status")).to_contain_text("next 2 submission(s) play content-policy")
    expect(page.locator("#pushed")).to_contain_text("content-policy ×2")
    mark_page(page)
    first = submit(server.url)
    expect(page.locator("#pushed")).to_contain_text("content-policy ×1", timeout=LIVE)  # live
    not_reloaded(page)
    second = submit(server.url)
    third = submit(server.url)
    admin(server.url, "POST", "/clock/advance", json={"seconds": 30})
    for task_id in (first, second):
        assert poll(server.url, task_id)["error"]["code"] == "content_policy_violation"
    assert poll(server.url, third)["status"] != "failed"
    page.locator("#scenario-fast").get_by_role("button", name="Make fast the default").click()
    expect(page.locator("#scenario-fast")).to_contain_text("default")
    assert admin(server.url, "GET", "/scenarios/default").json()["scenario"] == "fast"


def test_the_journal_shows_a_clients_request_live_redacted_and_filtered(watched: Watched, server: Replica) -> None:
    page = watched.page
    page.goto(f"{server.url}/__admin/ui")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Journal").click()
    expect(page.get_by_role("heading", name="Journal")).to_be_visible()
    mark_page(page)
    task_id = submit(server.url, prompt="a lighthouse at dawn")
    entry = page.locator(".entry").filter(has_text="POST").first
    expect(entry).to_be_visible(timeout=LIVE)
    poll(server.url, task_id)
    expect(page.locator(".entry")).to_have_count(2, timeout=LIVE)
    expect(page.locator(".entry").first).to_contain_text("GET")  # newest first
    not_reloaded(page)
    entry.locator("summary").click()
    expect(entry).to_contain_text("a lighthouse at dawn")
    expect(entry).to_contain_text(task_id)
    assert KEY not in page.content()
    page.get_by_label("Method").select_option("GET")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".entry")).to_have_count(1)
    page.get_by_label("Task").fill("task-that-is-not-there")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".entry")).to_have_count(0)


def test_reset_asks_first_then_forgets_every_task(watched: Watched, server: Replica) -> None:
    page = watched.page
    task_id = submit(server.url)
    page.goto(f"{server.url}/__admin/ui")
    page.get_by_role("link", name="Reset").click()
    expect(page.get_by_role("heading", name="Reset")).to_be_visible()
    assert admin(server.url, "GET", f"/tasks/{task_id}").status_code == 200  # asking changed nothing
    page.get_by_role("button", name="Yes, reset everything").click()
    expect(page.get_by_role("status")).to_contain_text("Reset")
    expect(page.get_by_text("No tasks yet")).to_be_visible()
    assert httpx.get(f"{server.url}/v1/tasks/{task_id}", headers=HEADERS).status_code == 404


def test_narrow_window_and_keyboard(watched: Watched, server: Replica) -> None:
    page = watched.page
    submit(server.url)
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{server.url}/__admin/ui")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide in a 390 px window"
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to the content")).to_be_focused()
    for _ in range(30):  # Tab reaches the task's link; Enter opens it
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('tr') !== null"):
            break
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile("^Task task-"))).to_be_visible()


def test_off_loopback_nothing_without_the_token_and_all_after_signing_in(browser: Browser) -> None:
    token = "dash-admin-token-3c4d"
    server = Replica(["--host", "0.0.0.0", "--clock", "manual", "--admin-token", token, "--no-access-log"]).start()
    try:
        task_id = submit(server.url, prompt="secret storyboard")
        # Without the token: the sign-in form, nothing else; the live feed and actions refused.
        plain = httpx.get(f"{server.url}/__admin/ui", timeout=10, follow_redirects=True)
        assert plain.url.path == "/__admin/ui/sign-in" and task_id not in plain.text and "storyboard" not in plain.text
        for path in ("/ui/events?view=tasks", f"/ui/events?view=task&id={task_id}", "/ui/events?view=journal"):
            refused = admin(server.url, "GET", path)
            assert refused.status_code == 401 and task_id not in refused.text
            assert refused.json()["error"]["code"] == "admin_token_required"
        for path in (f"/ui/tasks/{task_id}", "/ui/journal", "/ui/scenarios"):
            page_without = httpx.get(f"{server.url}/__admin{path}", timeout=10)
            assert page_without.status_code == 303 and task_id not in page_without.text
        assert admin(server.url, "POST", f"/ui/tasks/{task_id}/fail", data={"csrf": "x"}).status_code == 401
        assert admin(server.url, "POST", "/ui/reset").status_code == 401

        context = browser.new_context(viewport={"width": 1280, "height": 800})
        watched = Watched(context.new_page())
        page = watched.page
        page.goto(f"{server.url}/__admin/ui/journal")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert task_id not in page.content()
        page.get_by_label("Token").fill("not-the-token")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("not the admin token")
        page.get_by_label("Token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Journal")).to_be_visible()  # back where it was going
        cookie = next(c for c in context.cookies() if c["name"] == "mockserver_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and token not in cookie["value"]
        page.get_by_role("link", name="Tasks").click()
        expect(page.locator(f'tr[data-task="{task_id}"]')).to_be_visible()
        second = submit(server.url)
        expect(page.locator(f'tr[data-task="{second}"]')).to_be_visible(timeout=LIVE)  # the live feed works
        page.locator(f'tr[data-task="{task_id}"]').get_by_role("link").click()
        page.get_by_role("button", name="Complete", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("Completed")
        assert poll(server.url, task_id)["status"] == "completed"
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.goto(f"{server.url}/__admin/ui")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        context.close()
        watched.check()
    finally:
        output = server.stop()
    assert token not in output and KEY not in output


def test_wrong_sign_in_tokens_are_limited_per_address(browser: Browser, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five wrong tokens a minute per address, on the machine's clock (here one the test moves):
    then 429 with Retry-After, the right token included, until the minute has passed. The admin
    API's bearer tokens count with the form's: neither door lets a token be guessed at speed."""
    from mockserver import attempts

    now = [1000.0]
    monkeypatch.setattr(attempts, "monotonic", lambda: now[0])
    token = "limit-admin-token-5e6f"
    with LiveServer(Settings(clock="manual", admin_token=token)) as server:  # a token: sign-in even on loopback
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{server.url}/__admin/ui/sign-in")
        for _ in range(5):
            page.get_by_label("Token").fill("a-guess")
            with page.expect_response(f"{server.url}/__admin/ui/sign-in") as answered:
                page.get_by_role("button", name="Sign in").click()
            assert answered.value.status == 200
            expect(page.get_by_role("alert")).to_contain_text("not the admin token")
        expect(page.get_by_role("alert")).to_contain_text("Too many wrong tokens from your address: try again in 60 s")
        page.get_by_label("Token").fill(token)
        with page.expect_response(f"{server.url}/__admin/ui/sign-in") as answered:
            page.get_by_role("button", name="Sign in").click()
        assert answered.value.status == 429 and answered.value.headers["retry-after"] == "60"
        expect(page.get_by_role("alert")).to_contain_text("try again in 60 s (the right token too")

        def attempt(value: str, source: str = "127.0.0.1") -> httpx.Response:
            with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10) as client:
                csrf = client.get(f"{server.url}/__admin/ui/sign-in").cookies["mockserver_csrf"]
                return client.post(f"{server.url}/__admin/ui/sign-in", data={"csrf": csrf, "token": value})

        now[0] += 45
        refused = attempt(token)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "15"
        said = {
            "message": "Too many wrong admin tokens from this address: 5 within 60 s. Try again in 15 s.",
            "type": "rate_limit_error",
            "code": "too_many_wrong_tokens",
        }
        assert refused.json()["error"] == said
        # the admin API's door is shut to this address too, the right token included; health says what it
        # says to a caller without a token
        api = httpx.get(f"{server.url}/__admin/clock", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert api.status_code == 429 and api.headers["retry-after"] == "15" and api.json()["error"] == said
        health = httpx.get(f"{server.url}/__admin/health", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert health.status_code == 200 and set(health.json()) == {"status", "version", "contract", "store"}

        def api_call(value: str, source: str) -> httpx.Response:
            with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10) as client:
                return client.get(f"{server.url}/__admin/clock", headers={"Authorization": f"Bearer {value}"})

        # another address has its own count, which wrong bearer tokens use up as wrong form tokens do
        assert attempt("a-guess", "127.0.0.2").status_code == 200
        assert [api_call("a-guess", "127.0.0.2").status_code for _ in range(5)] == [401, 401, 401, 401, 429]
        assert attempt(token, "127.0.0.2").status_code == 429
        assert api_call(token, "127.0.0.3").status_code == 200  # a third: the right token, no wrong ones
        now[0] += 15  # the minute has passed for 127.0.0.1
        page.get_by_label("Token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Tasks")).to_be_visible()
        context.close()
    limiter = attempts.WrongTokens(addresses=3)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"):
        for _ in range(5):
            limiter.wrong(address)
    assert len(limiter) == 3 and limiter.wait("10.0.0.1") == 0 and limiter.wait("10.0.0.4") == 60
    # an IPv6 client counts by its /64: rotating addresses inside one network does not reset the count
    assert attempts.client_address(("2001:db8:1:2::5", 1)) == attempts.client_address(("2001:db8:1:2:ffff::9", 2))
    assert attempts.client_address(("2001:db8:1:3::5", 1)) != attempts.client_address(("2001:db8:1:2::5", 1))
    assert attempts.client_address(("::ffff:10.0.0.7", 1)) == "10.0.0.7"


def test_off_loopback_without_a_token_the_dashboard_is_closed() -> None:
    server = Replica(["--host", "0.0.0.0", "--clock", "manual", "--no-access-log"]).start()
    try:
        page = httpx.get(f"{server.url}/__admin/ui", timeout=10, follow_redirects=True)
        assert page.url.path == "/__admin/ui/sign-in" and "The dashboard is closed" in page.text
        assert admin(server.url, "GET", "/ui/events?view=tasks").status_code == 403
    finally:
        server.stop()


def test_changes_from_another_site_are_refused(server: Replica) -> None:
    task_id = submit(server.url)
    page = httpx.get(f"{server.url}/__admin/ui/tasks/{task_id}", timeout=10)
    csrf = page.cookies["mockserver_csrf"]
    # A form on another site: the browser says where it comes from.
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        refused = httpx.post(
            f"{server.url}/__admin/ui/tasks/{task_id}/fail", data={"csrf": csrf}, cookies={"mockserver_csrf": csrf},
            headers=headers, timeout=10,
        )  # fmt: skip
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "cross_site_request"
        json_api = admin(server.url, "POST", "/reset", headers=headers)
        assert json_api.status_code == 403 and json_api.json()["error"]["code"] == "cross_site_request"
    # Without the form's token (a cookie the other site cannot read or send).
    no_token = httpx.post(f"{server.url}/__admin/ui/tasks/{task_id}/fail", data={"csrf": "guess"}, timeout=10)
    assert no_token.status_code == 403 and no_token.json()["error"]["code"] == "form_token_mismatch"
    assert poll(server.url, task_id)["status"] == "pending"
    # The same request from the dashboard's own page goes through.
    same = httpx.post(
        f"{server.url}/__admin/ui/tasks/{task_id}/fail", data={"csrf": csrf}, cookies={"mockserver_csrf": csrf},
        headers={"Origin": server.url}, timeout=10,
    )  # fmt: skip
    assert same.status_code == 303
    assert poll(server.url, task_id)["status"] == "failed"


def test_a_dashboard_on_one_replica_shows_and_steers_the_tasks_of_all(browser: Browser, redis_url: str) -> None:
    with replicas(2, ["--store", redis_url, "--clock", "manual", "--no-access-log"]) as (a, b):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        watched = Watched(context.new_page())
        page = watched.page
        page.goto(f"{b.url}/__admin/ui")
        task_id = submit(a.url)
        row = page.locator(f'tr[data-task="{task_id}"]')
        expect(row).to_be_visible(timeout=LIVE)
        admin(a.url, "POST", "/clock/advance", json={"seconds": 30})
        poll(a.url, task_id)
        expect(row).to_contain_text("processing", timeout=LIVE)
        row.get_by_role("link").click()
        page.get_by_role("button", name="Fail", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("Failed")
        assert poll(a.url, task_id)["status"] == "failed"
        page.get_by_label("Seconds").fill("5")
        page.get_by_role("button", name="Advance").click()
        expect(page.get_by_role("status")).to_contain_text("advanced by 5 s")
        assert admin(a.url, "GET", "/clock").json()["now"] == pytest.approx(admin(b.url, "GET", "/clock").json()["now"])
        context.close()
        watched.check()


def test_without_the_ui_extra_the_dashboard_says_how_to_get_it() -> None:
    program = (
        "import sys; sys.modules['jinja2'] = None\n"
        "from starlette.testclient import TestClient\n"
        "from mockserver import Settings, create_app\n"
        "with TestClient(create_app(Settings(clock='manual'))) as client:\n"
        "    r = client.get('/__admin/ui')\n"
        "    print(r.status_code, r.json()['error']['code'], r.json()['error']['message'])\n"
        "    print(client.get('/__admin/health').status_code)\n"
    )
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert "404 dashboard_not_installed" in out.stdout and "pip install 'veo-mockserver[ui]'" in out.stdout
    assert out.stdout.splitlines()[-1] == "200"


def read_events(url: str, seconds: float, headers: dict[str, str] | None = None) -> list[str]:
    """The lines of a live feed, as a browser splits them (CR, LF or CRLF), for `seconds`."""
    raw = b""
    deadline = time.monotonic() + seconds
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(10, read=seconds)) as answer:
        assert answer.status_code == 200
        try:
            for chunk in answer.iter_raw():
                raw += chunk
                if time.monotonic() > deadline:
                    break
        except httpx.ReadTimeout:
            pass  # nothing more came within `seconds`: the feed had nothing new to say
    return re.split(r"\r\n|\r|\n", raw.decode())


def test_a_client_cannot_add_fields_to_the_live_feed(server: Replica) -> None:
    admin(server.url, "POST", "/reset")
    httpx.get(f"{server.url}/nowhere%0Dretry:%20600000%0D", timeout=10)  # a 404, in the journal all the same
    body = b"x\rretry: 86400000\revent: clock\rdata: spoofed\r"  # a broken submit: its body is in the journal
    sent = httpx.post(
        server.url + SUBMIT, content=body, headers={**HEADERS, "Content-Type": "application/json"}, timeout=10
    )
    assert sent.status_code == 400
    lines = read_events(f"{server.url}/__admin/ui/events?view=journal", 1.5)
    assert "retry: 86400000" not in lines and "retry: 600000" not in lines and "data: spoofed" not in lines
    assert {line for line in lines if line.startswith("event:")} <= {
        "event: clock",
        "event: journal",
        "event: journal-all",
    }
    assert any("spoofed" in line for line in lines)  # the entry is there, as text


def test_a_reconnecting_journal_gets_only_what_it_missed(server: Replica) -> None:
    admin(server.url, "POST", "/reset")
    for _ in range(3):
        submit(server.url)
    top = admin(server.url, "GET", "/requests?limit=1").json()["requests"][0]["id"]
    # The browser's EventSource sends the last event id it got when it reconnects.
    lines = read_events(f"{server.url}/__admin/ui/events?view=journal&since=0", 1.2, {"Last-Event-ID": str(top)})
    assert "event: journal" not in lines and "event: journal-all" not in lines
    with httpx.stream("GET", f"{server.url}/__admin/ui/events?view=journal&since={top}", timeout=10) as answer:
        submit(server.url)
        raw = b""
        for chunk in answer.iter_raw():
            raw += chunk
            if b"event: journal\n" in raw and raw.endswith(b"\n\n"):
                break
    event = raw.decode().split("event: journal\n", 1)[1]
    assert event.startswith(f"id: {top + 1}\n") and event.count('class="entry"') == 1


def test_messages_in_a_link_from_elsewhere_are_not_shown(server: Replica) -> None:
    for path in ("/sign-in", "/", "/journal"):
        page = httpx.get(
            f"{server.url}/__admin/ui{path}?problem=Your+token+expired:+see+evil.example&notice=hi", timeout=10
        )
        assert "evil.example" not in page.text and ">hi<" not in page.text


def test_odd_requests_to_the_feed_get_a_clean_answer(server: Replica) -> None:
    head = httpx.head(f"{server.url}/__admin/ui/events?view=tasks", timeout=5)
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/event-stream")
    lines = read_events(f"{server.url}/__admin/ui/events?view=journal&since={'9' * 5000}", 0.8)
    assert "event: clock" in lines
    assert admin(server.url, "GET", f"/requests?limit={'9' * 5000}").status_code == 422


def test_a_browser_under_another_host_name_is_refused_on_loopback(server: Replica) -> None:
    # DNS rebinding: a page of evil.example whose name now points at 127.0.0.1.
    rebound = {"Host": "evil.example:80", "Origin": "http://evil.example:80", "Sec-Fetch-Site": "same-origin"}
    for method, path in (("GET", "/ui"), ("GET", "/requests"), ("POST", "/reset")):
        refused = admin(server.url, method, path, headers=rebound)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "host_not_loopback"
    assert admin(server.url, "GET", "/requests", headers={"Host": "evil.example"}).status_code == 200  # not a browser


def test_a_session_ends_after_its_time() -> None:
    from mockserver.admin import SESSION_SECONDS, session_value

    token = "session-age-token"
    server = Replica(["--host", "0.0.0.0", "--clock", "manual", "--admin-token", token, "--no-access-log"]).start()
    try:
        fresh = session_value(token.encode(), int(time.time()))
        stale = session_value(token.encode(), int(time.time()) - SESSION_SECONDS - 60)
        other = session_value(b"another-token", int(time.time()))
        ok = httpx.get(f"{server.url}/__admin/ui", cookies={"mockserver_session": fresh}, timeout=10)
        assert ok.status_code == 200 and "Tasks" in ok.text
        for value in (stale, other, fresh.replace(".", ".0"), "1." + fresh.split(".")[1]):
            refused = httpx.get(f"{server.url}/__admin/ui", cookies={"mockserver_session": value}, timeout=10)
            assert refused.status_code == 303
    finally:
        server.stop()


def test_the_overview_shows_tasks_by_state_polls_per_task_and_the_pollers() -> None:
    """The metrics' numbers for a person without Prometheus: plain HTTP against a fresh fake."""
    with LiveServer(Settings(clock="manual")) as fake:
        done = submit(fake.url)
        failed = submit(fake.url, prompt="[mock:generation-failed] a cat")
        for task_id in (done, failed, done, failed, done):
            poll(fake.url, task_id)
        never = submit(fake.url, prompt="[mock:never-finishes] a dog")
        admin(fake.url, "POST", "/clock/advance", json={"seconds": 100})
        page = httpx.get(f"{fake.url}/__admin/ui/overview", timeout=10)
        assert page.status_code == 200 and never not in page.text
        rows = dict(re.findall(r'<tr data-state="([a-z]+)"><td>[^<]*</td><td>(\d+)</td>', page.text))
        assert rows == {"created": "3", "live": "1", "succeeded": "1", "failed": "1"}
        polls = re.findall(r'<tr data-scenario="([a-z-]+)"><td>[^<]*</td><td>(\d+)</td><td>([\d.]+)</td>', page.text)
        assert polls == [("default", "1", "3.0"), ("generation-failed", "1", "2.0")]
        pollers = re.findall(r'<tr data-key="(key-[0-9a-f]{8})"><td><code>[^<]*</code></td><td>(\d+)</td>', page.text)
        assert pollers == [(key_id(KEY), "3")] and KEY not in page.text  # each task's polls after its first


def test_the_overview_updates_live(watched: Watched, server: Replica) -> None:
    page = watched.page
    page.goto(f"{server.url}/__admin/ui/overview")
    mark_page(page)
    key = "sk-dashboard-overview-live"
    headers = {"Authorization": f"Bearer {key}"}
    task_id = httpx.post(server.url + SUBMIT, json=BODIES["seed"], headers=headers, timeout=10).json()["id"]
    for _ in range(2):
        assert httpx.get(f"{server.url}/v1/tasks/{task_id}", headers=headers, timeout=10).status_code == 200
    expect(page.locator(f'#pollers tr[data-key="{key_id(key)}"] td').nth(1)).to_have_text("1", timeout=LIVE)
    not_reloaded(page)
