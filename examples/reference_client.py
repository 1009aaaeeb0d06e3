"""A small, well-behaved client of the veo-3.1-extend API, written with httpx.

    VEO_BASE_URL=https://api.foxapi.cc VEO_API_KEY=sk-... python examples/reference_client.py \
        "The camera continues to pan" https://example.com/input-video.mp4

It submits one task, polls it until it is over and prints the video URL. What makes it
well-behaved, and what `mockserver fuzz-client` checks:
- it waits Retry-After after a 429 (or backs off on its own when there is none) and gives up
  after a few tries;
- it never submits again after an answer that may have created the task (a 5xx, no answer or an
  unreadable one): that would risk a second, billed task; it says so and stops;
- it polls every VEO_POLL_INTERVAL seconds (default 5), retries a failed poll with backoff, and
  stops at once when the task is failed, gone, in an unknown state, or completed with results
  (a `completed` without results is not done yet);
- it gives up after VEO_MAX_WAIT seconds (default 600); VEO_BACKOFF (default 1) is the first
  wait after a 429 that gives no Retry-After, doubled on each try.

Exit status: 0 completed (URL printed), 1 the task failed, 2 the submission was refused, 3 the
submission's outcome is unknown, 4 the task disappeared, 5 it took too long, 6 the API kept
failing.
"""

from __future__ import annotations

import os
import random
import sys
import time

import httpx

BASE_URL = os.environ.get("VEO_BASE_URL", "https://api.foxapi.cc").rstrip("/")
API_KEY = os.environ.get("VEO_API_KEY", "")
POLL_INTERVAL = float(os.environ.get("VEO_POLL_INTERVAL", "5"))
MAX_WAIT = float(os.environ.get("VEO_MAX_WAIT", "600"))
TIMEOUT = float(os.environ.get("VEO_REQUEST_TIMEOUT", "30"))
BACKOFF = float(os.environ.get("VEO_BACKOFF", "1"))  # first wait after a 429 without Retry-After
MAX_SUBMIT_TRIES = 4
MAX_POLL_ERRORS = 8


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def backoff(attempt: int, base: float) -> float:
    """Exponential backoff with jitter, never shorter than `base`."""
    return base * (2 ** min(attempt, 5)) * (1 + random.random() / 2)


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def submit(client: httpx.Client, body: dict) -> str:
    for attempt in range(1, MAX_SUBMIT_TRIES + 1):
        try:
            response = client.post("/v1/videos/generations", json=body)
        except httpx.TransportError as exc:
            log(
                f"submit outcome unknown (no answer: {type(exc).__name__}); not submitting again, to avoid a second task"
            )
            sys.exit(3)
        if response.status_code == 200:
            try:
                return response.json()["id"]
            except (ValueError, KeyError, TypeError):
                log("submit outcome unknown (the answer was unreadable); not submitting again, to avoid a second task")
                sys.exit(3)
        if response.status_code == 429 and attempt < MAX_SUBMIT_TRIES:
            wait = retry_after(response) or backoff(attempt, BACKOFF)
            log(f"rate limited; waiting {wait:.1f} s before trying again")
            time.sleep(wait)
            continue
        if response.status_code >= 500:
            log(f"submit outcome unknown (HTTP {response.status_code}); not submitting again, to avoid a second task")
            sys.exit(3)
        log(f"submission refused: HTTP {response.status_code} {response.text[:300]}")
        sys.exit(2)
    log("still rate limited; giving up")
    sys.exit(2)


def poll(client: httpx.Client, task_id: str) -> str:
    deadline = time.monotonic() + MAX_WAIT
    errors = 0
    while time.monotonic() < deadline:
        wait = POLL_INTERVAL
        try:
            response = client.get(f"/v1/tasks/{task_id}", params={"sync_upstream": "true"})
        except httpx.TransportError as exc:
            response = None
            log(f"poll failed ({type(exc).__name__}); retrying")
        if response is not None and response.status_code == 404:
            log(f"task {task_id} is gone (HTTP 404)")
            sys.exit(4)
        task = None
        if response is not None and response.status_code == 200:
            try:
                task = response.json()
            except ValueError:
                log("poll answer unreadable; retrying")
        if task is None:
            errors += 1
            if errors > MAX_POLL_ERRORS:
                log("the API kept failing; giving up")
                sys.exit(6)
            if response is not None and response.status_code == 429:
                wait = max(retry_after(response) or backoff(errors, POLL_INTERVAL), POLL_INTERVAL)
            else:
                wait = backoff(errors, POLL_INTERVAL)
        else:
            errors = 0
            status = task.get("status")
            if status == "completed" and task.get("results"):
                return task["results"][0]["url"]
            if status == "failed":
                error = task.get("error") or {}
                log(f"task failed: {error.get('code')}: {error.get('message')}")
                sys.exit(1)
            if status not in ("pending", "processing", "completed"):
                log(f"task is in an unknown state {status!r}; treating it as failed")
                sys.exit(1)
        time.sleep(min(wait, max(deadline - time.monotonic(), 0)))
    log(f"task {task_id} did not finish within {MAX_WAIT:g} s; giving up")
    sys.exit(5)


def main() -> None:
    prompt = sys.argv[1] if len(sys.argv) > 1 else "The camera continues to pan across the landscape"
    video = sys.argv[2] if len(sys.argv) > 2 else "https://example.com/input-video.mp4"
    body = {"model": "veo-3.1-extend", "prompt": prompt, "video": video}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=BASE_URL, headers=headers, timeout=TIMEOUT) as client:
        task_id = submit(client, body)
        log(f"submitted {task_id}")
        print(poll(client, task_id))


if __name__ == "__main__":
    main()
