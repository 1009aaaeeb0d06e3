"""A third-party client of the upstream platform's dialect of the video task API, written with httpx
from `examples/contracts/upstream-dialect.yaml` (and the docs it cites) only.

    BASE_URL=https://api.evolink.ai API_KEY=sk-evo-... python examples/contracts/clients/upstream_client.py \
        [--model happyhorse-1.0-image-to-video | happyhorse-1.0-video-edit] [--image URL] [--video URL] \
        [--prompt TEXT]

It submits one task (by default `happyhorse-1.0-image-to-video` with one first-frame image and no
prompt, which that model allows), polls `GET /v1/tasks/{id}` every POLL_INTERVAL seconds (default
5) for at most MAX_WAIT seconds (default 600), downloads the first result and prints, on stdout,
`task_info: {...}`, `billing_rule: ...` and, last, the video URL.

What it expects of the dialect, and says plainly when it does not get it:
- every query answer carries `task_info` (an object) and `usage.billing_rule` (per_call,
  per_token or per_second);
- `results` is a list of URL strings (not objects);
- an error body is `{"error": {"code", "message", "type"}}` and its `code` decides: the submit
  retries `rate_limit_exceeded` (after Retry-After, or its own backoff), takes `internal_error`
  (or any 5xx) as "outcome unknown" and never submits twice, and treats every other code as a
  refusal; a query gives up at once on `task_not_found`, waits on `rate_limit_exceeded`, retries
  `internal_error`, and stops on `unauthorized`, `permission_denied`, `quota_exceeded` or
  `invalid_task_id`.

Exit status: 0 completed, downloaded (non-empty) and URL printed; 1 the task failed (or was
cancelled); 2 the submission was refused (its `error.code` printed); 3 the submission's outcome is
unknown; 4 the task is gone (`task_not_found`); 5 it took longer than MAX_WAIT; 6 the query was
refused or the API kept failing; 7 an answer broke the dialect (no `task_info`, no
`usage.billing_rule`, results that are not URL strings, an unreadable 200); 8 the result could not
be downloaded or was empty.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from typing import Any, NoReturn

import httpx

BASE_URL = os.environ.get("BASE_URL", "https://api.evolink.ai").rstrip("/")
API_KEY = os.environ.get("API_KEY", "")
POLL_INTERVAL = float(os.environ.get("POLL_INTERVAL", "5"))
MAX_WAIT = float(os.environ.get("MAX_WAIT", "600"))
TIMEOUT = 30.0
MAX_SUBMIT_TRIES = 4
MAX_POLL_ERRORS = 8

MODELS = ("happyhorse-1.0-image-to-video", "happyhorse-1.0-video-edit")
BILLING_RULES = ("per_call", "per_token", "per_second")
QUERY_FATAL_CODES = ("unauthorized", "permission_denied", "quota_exceeded", "invalid_task_id")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def stop(status: int, message: str) -> NoReturn:
    log(message)
    sys.exit(status)


def backoff(attempt: int, base: float) -> float:
    return max(base, 1.0) * (2 ** min(attempt, 5)) * (1 + random.random() / 2)


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def error_of(response: httpx.Response) -> tuple[str | None, str]:
    """(error.code, error.message) of an error body of this dialect; (None, text) otherwise."""
    try:
        error = response.json()["error"]
        return str(error["code"]), str(error.get("message", ""))
    except (ValueError, KeyError, TypeError):
        return None, response.text[:300]


def submit(client: httpx.Client, body: dict[str, Any]) -> str:
    for attempt in range(1, MAX_SUBMIT_TRIES + 1):
        try:
            response = client.post("/v1/videos/generations", json=body)
        except httpx.TransportError as exc:
            stop(3, f"submit outcome unknown (no answer: {type(exc).__name__}); not submitting again")
        if response.status_code == 200:
            try:
                task_id = response.json()["id"]
            except (ValueError, KeyError, TypeError):
                stop(3, "submit outcome unknown (the 200 answer has no readable 'id'); not submitting again")
            if not isinstance(task_id, str) or not task_id.startswith("task-unified-"):
                stop(7, f"the submit answer's id {task_id!r} does not start with 'task-unified-'")
            return task_id
        code, message = error_of(response)
        if code == "rate_limit_exceeded" and attempt < MAX_SUBMIT_TRIES:
            wait = retry_after(response) or backoff(attempt, 1.0)
            log(f"rate limited ({code}); waiting {wait:.1f} s before trying again")
            time.sleep(wait)
            continue
        if code == "internal_error" or response.status_code >= 500:
            stop(3, f"submit outcome unknown (HTTP {response.status_code} {code}); not submitting again")
        if code is None:
            stop(2, f"submission refused: HTTP {response.status_code} without this dialect's error body: {message}")
        print(f"error.code: {code}", flush=True)
        stop(2, f"submission refused: HTTP {response.status_code} {code}: {message}")
    stop(2, "still rate limited; giving up")


def check_dialect(task: Any) -> tuple[dict[str, Any], str]:
    """The answer's task_info and usage.billing_rule, or exit 7 saying what is missing."""
    if not isinstance(task, dict):
        stop(7, f"the query answer is not a JSON object: {str(task)[:200]}")
    task_info = task.get("task_info")
    if not isinstance(task_info, dict):
        stop(7, "the query answer has no 'task_info' object; this dialect sends one on every query")
    usage = task.get("usage")
    billing_rule = usage.get("billing_rule") if isinstance(usage, dict) else None
    if billing_rule not in BILLING_RULES:
        found = "no 'usage' object" if not isinstance(usage, dict) else f"usage.billing_rule = {billing_rule!r}"
        stop(7, f"the query answer has {found}; this dialect sends usage.billing_rule ({', '.join(BILLING_RULES)})")
    return task_info, billing_rule


def poll(client: httpx.Client, task_id: str) -> tuple[str, dict[str, Any], str]:
    deadline = time.monotonic() + MAX_WAIT
    errors = 0
    while time.monotonic() < deadline:
        wait = POLL_INTERVAL
        try:
            response: httpx.Response | None = client.get(f"/v1/tasks/{task_id}")
        except httpx.TransportError as exc:
            response = None
            log(f"poll failed ({type(exc).__name__}); retrying")
        if response is not None and response.status_code == 200:
            try:
                task = response.json()
            except ValueError:
                stop(7, "the query answer (HTTP 200) is not JSON")
            errors = 0
            task_info, billing_rule = check_dialect(task)
            status = task.get("status")
            results = task.get("results")
            if status == "completed" and results:
                if not isinstance(results, list) or not isinstance(results[0], str):
                    stop(7, f"results are not URL strings as this dialect sends them: {json.dumps(results)[:200]}")
                return results[0], task_info, billing_rule
            if status in ("failed", "cancelled"):
                error = task.get("error") or {}
                stop(1, f"task {status}: {error.get('code')}: {error.get('message')}")
            if status not in ("pending", "processing", "completed"):
                stop(1, f"task is in an unknown state {status!r}; treating it as failed")
        elif response is not None:
            code, message = error_of(response)
            if code == "task_not_found" or response.status_code == 404:
                stop(4, f"task {task_id} is gone (HTTP {response.status_code} {code})")
            if code in QUERY_FATAL_CODES:
                stop(6, f"the query was refused: HTTP {response.status_code} {code}: {message}")
            errors += 1
            if code == "rate_limit_exceeded" or response.status_code == 429:
                wait = max(retry_after(response) or backoff(errors, POLL_INTERVAL), POLL_INTERVAL)
            else:
                log(f"poll failed: HTTP {response.status_code} {code}; retrying")
                wait = backoff(errors, POLL_INTERVAL)
        else:
            errors += 1
            wait = backoff(errors, POLL_INTERVAL)
        if errors > MAX_POLL_ERRORS:
            stop(6, "the API kept failing; giving up")
        time.sleep(min(wait, max(deadline - time.monotonic(), 0)))
    stop(5, f"task {task_id} did not finish within {MAX_WAIT:g} s; giving up")


def download(url: str) -> int:
    """GET the result (without the API key: it is a storage URL) and return its size in bytes."""
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=True) as plain:
            response = plain.get(url)
    except httpx.HTTPError as exc:
        stop(8, f"could not download {url}: {type(exc).__name__}")
    if response.status_code != 200 or not response.content:
        stop(8, f"downloading {url} gave HTTP {response.status_code} with {len(response.content)} bytes")
    return len(response.content)


def build_body(args: argparse.Namespace) -> dict[str, Any]:
    if args.model == "happyhorse-1.0-video-edit":
        body: dict[str, Any] = {
            "model": args.model,
            "prompt": args.prompt or "Replace the video background with snowy mountains",
            "video_urls": [args.video],
            "quality": "720p",
            "keep_original_sound": False,
        }
    else:
        body = {"model": args.model, "image_urls": [args.image], "quality": "720p", "duration": 5}
        if args.prompt:
            body["prompt"] = args.prompt
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description="Submit one task in the upstream dialect and wait for it.")
    parser.add_argument("--model", choices=MODELS, default=MODELS[0])
    parser.add_argument("--image", default="https://cdn.example.com/cat.png", help="first-frame image URL")
    parser.add_argument("--video", default="https://cdn.example.com/source.mp4", help="source video URL (video edit)")
    parser.add_argument("--prompt", default=None, help="prompt (optional for image-to-video)")
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=BASE_URL, headers=headers, timeout=TIMEOUT) as client:
        task_id = submit(client, build_body(args))
        log(f"submitted {task_id}")
        url, task_info, billing_rule = poll(client, task_id)
    size = download(url)
    log(f"downloaded {size} bytes")
    print(f"task_info: {json.dumps(task_info, sort_keys=True)}")
    print(f"billing_rule: {billing_rule}")
    print(url)


if __name__ == "__main__":
    main()
