"""Take the screenshots of docs/dashboard.md: a fake with a few tasks in different states, the
dashboard in Debian's chromium (Playwright for Python). Run: .venv/bin/python tools/dashboard-screenshots.py"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.services import Replica  # noqa: E402

OUT = ROOT / "docs" / "img"
KEY = {"Authorization": "Bearer sk-screenshots"}
BODY = {"model": "veo-3.1-extend", "prompt": "The camera pans on", "video": "https://example.com/in.mp4"}


def main() -> None:
    server = Replica(["--clock", "manual", "--no-access-log"]).start()
    base = server.url
    try:
        def submit(prompt: str) -> str:
            return httpx.post(f"{base}/v1/videos/generations", json={**BODY, "prompt": prompt}, headers=KEY).json()["id"]

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
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"])
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
            browser.close()
    finally:
        server.stop()
    print("wrote", ", ".join(sorted(p.name for p in OUT.glob("dashboard-*.png"))))


if __name__ == "__main__":
    main()
