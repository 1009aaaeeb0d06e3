"""A client of the API with one deliberate bug, chosen by its first argument, for testing
`mockserver fuzz-client`. Reads MOCK_BASE_URL and MOCK_API_KEY; otherwise careful: it gives
up after MOCK_MAX_WAIT seconds (default 3).

    poll-after-failed     keeps polling a failed task, waiting for a completion that never comes
    ignore-retry-after    retries a 429 at once, whatever Retry-After says
    success-on-completed  reports success on `completed` even without results
    crash-on-completed    takes `completed` as final and reads the first result's URL: a traceback
                          (exit 1) when the results are still null
    tight-loop            polls without waiting
    invalid-body          sends `video_url` where the seed contract wants `video`
"""

import os
import sys
import time

import httpx

BUG = sys.argv[1]
client = httpx.Client(
    base_url=os.environ["MOCK_BASE_URL"], headers={"Authorization": f"Bearer {os.environ['MOCK_API_KEY']}"}, timeout=10
)
video_field = "video_url" if BUG == "invalid-body" else "video"
body = {"model": "veo-3.1-extend", "prompt": "a test", video_field: "https://example.com/in.mp4"}


def wait_after_429(response: httpx.Response) -> None:
    if BUG == "ignore-retry-after":
        time.sleep(0.01)
    else:
        time.sleep(float(response.headers.get("retry-after", "1")))


for _ in range(5):
    try:
        response = client.post("/v1/videos/generations", json=body)
    except httpx.TransportError:
        sys.exit(3)
    if response.status_code != 429:
        break
    wait_after_429(response)
if response.status_code != 200:
    sys.exit(2)
task_id = response.json()["id"]

errors = 0
deadline = time.monotonic() + float(os.environ.get("MOCK_MAX_WAIT", "3"))
seen_failed = False
while time.monotonic() < deadline or seen_failed:
    if BUG != "tight-loop":
        time.sleep(0.1)
    try:
        response = client.get(f"/v1/tasks/{task_id}")
        task = response.json() if response.status_code == 200 else None
    except (httpx.TransportError, ValueError):
        task = None
        response = None
    if response is not None and response.status_code == 404:
        sys.exit(4)
    if task is None:
        errors += 1
        if errors > 20:
            sys.exit(6)
        if response is not None and response.status_code == 429:
            wait_after_429(response)
        continue
    if task["status"] == "completed" and (task.get("results") or BUG == "success-on-completed"):
        print(task.get("results"))
        sys.exit(0)
    if task["status"] == "completed" and BUG == "crash-on-completed":
        print(task["results"][0]["url"])  # the bug: TypeError while the results are still null
        sys.exit(0)
    if task["status"] == "failed":
        if BUG != "poll-after-failed":
            sys.exit(1)
        seen_failed = True  # the bug: wait on, as if a failed task could still complete
    if task["status"] not in ("pending", "processing", "completed", "failed"):
        sys.exit(1)
sys.exit(5)
