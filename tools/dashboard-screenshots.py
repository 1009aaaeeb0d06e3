"""Take the screenshots of docs/dashboard.md: a fake with a few tasks in different states, the
dashboard in Debian's chromium (Playwright for Python). Run: .venv/bin/python tools/dashboard-screenshots.py"""

from __future__ import annotations

import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from playwright.sync_api import Browser, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.services import Replica

OUT = ROOT / "docs" / "img"
KEY = {"Authorization": "Bearer sk-screenshots"}
BODY = {"model": "veo-3.1-extend", "prompt": "The camera pans on", "video": "https://example.com/in.mp4"}
REPLICATE = ROOT / "examples" / "contracts" / "replicate.yaml"


def callbacks(browser: Browser) -> None:
    """A task's callbacks under Replicate's contract: a receiver that answers 500, then 204; one
    redelivery."""
    answers = [500, 204]

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            self.send_response(answers.pop(0) if len(answers) > 1 else answers[0])
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    server = Replica(["--contract", str(REPLICATE), "--clock", "manual", "--no-access-log"]).start()
    base = server.url
    try:
        hook = f"http://127.0.0.1:{receiver.server_port}/hook?token=secret"
        body = {"input": {"prompt": "A lighthouse at dusk"}, "webhook": hook}
        submitted = httpx.post(f"{base}/v1/models/lightricks/ltx-2.5-fast/predictions", json=body, headers=KEY)
        task_id = submitted.json()["id"]
        for seconds in (30, 60, 1):
            httpx.post(f"{base}/__admin/clock/advance", json={"seconds": seconds})
            httpx.post(f"{base}/__admin/callbacks/settle", json={"timeout": 10})
            httpx.get(f"{base}/v1/predictions/{task_id}", headers=KEY)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base}/__admin/ui/tasks/{task_id}")
        page.get_by_role("button", name="Redeliver succeeded").click()
        page.get_by_role("status").wait_for()
        page.wait_for_timeout(700)
        page.locator("figure.timeline").evaluate("e => window.scrollTo(0, e.getBoundingClientRect().top + scrollY - 8)")
        page.screenshot(path=OUT / "dashboard-callbacks.png")
    finally:
        server.stop()
        receiver.shutdown()
        receiver.server_close()


def main() -> None:
    server = Replica(["--clock", "manual", "--no-access-log"]).start()
    base = server.url
    try:

        def submit(prompt: str) -> str:
            return httpx.post(f"{base}/v1/videos/generations", json={**BODY, "prompt": prompt}, headers=KEY).json()[
                "id"
            ]

        def poll(task_id: str) -> None:
            httpx.get(f"{base}/v1/tasks/{task_id}", headers=KEY)

        first = submit("A lighthouse at dawn")
        policy = submit("[mock:content-policy] a crowd")
        poll(first), poll(policy)
        httpx.post(f"{base}/__admin/clock/advance", json={"seconds": 8})
        poll(first), poll(policy)
        stuck = submit("[mock:stalled-progress] a long shot")
        httpx.post(f"{base}/__admin/clock/advance", json={"seconds": 6})
        for task_id in (first, policy, stuck):
            poll(task_id)
        httpx.post(f"{base}/__admin/clock/advance", json={"seconds": 25})
        poll(first), poll(stuck)
        fresh = submit("A harbour at night")
        poll(fresh)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{base}/__admin/ui")
            page.wait_for_timeout(700)
            page.screenshot(path=OUT / "dashboard-tasks.png")
            page.goto(f"{base}/__admin/ui/tasks/{first}")
            page.wait_for_timeout(700)
            page.screenshot(path=OUT / "dashboard-task.png", full_page=True)
            page.goto(f"{base}/__admin/ui/scenarios")
            page.locator("#scenario-content-policy").scroll_into_view_if_needed()
            page.screenshot(path=OUT / "dashboard-scenarios.png")
            page.goto(f"{base}/__admin/ui/journal")
            page.locator(".entry summary").first.click()
            page.screenshot(path=OUT / "dashboard-journal.png")
            narrow = browser.new_page(viewport={"width": 390, "height": 800})
            narrow.goto(f"{base}/__admin/ui/tasks/{policy}")
            narrow.wait_for_timeout(700)
            narrow.screenshot(path=OUT / "dashboard-narrow.png")
            callbacks(browser)
            browser.close()
    finally:
        server.stop()
    print("wrote", ", ".join(sorted(p.name for p in OUT.glob("dashboard-*.png"))))


if __name__ == "__main__":
    main()
