"""A third-party client of the provider's video task API with two models, written with httpx from
`examples/contracts/provider-two-models.yaml` (and the docs it cites) only.

    BASE_URL=https://api.foxapi.cc API_KEY=sk-... python examples/contracts/clients/two_models_client.py \
        --model veo-3.1-extend [--video URL] [--prompt TEXT]
    BASE_URL=... API_KEY=... python examples/contracts/clients/two_models_client.py \
        --model veo-3.1-fast [--image URL] [--prompt TEXT]

`--model` picks the body: `veo-3.1-extend` / `veo-3.1-extend-fast` send the extend body (`prompt`,
`video_url`, `aspect_ratio`, `generate_audio`); `veo-3.1-fast` / `veo-3.1` send the VEO 3.1 Fast
body (`prompt`, `generation_type`, `image_urls` when an image is given, `aspect_ratio`,
`duration`, `resolution`, `generate_audio`). It submits one task, polls
`GET /v1/tasks/{id}?sync_upstream=true` every POLL_INTERVAL seconds (default 5) for at most
MAX_WAIT seconds (default 600), downloads the first result's `url` and prints the URL on stdout.

What it expects of the dialect:
- `results` is a list of objects with a `url` (a `completed` task without results is not done
  yet: a later poll fills them in);
- an error body is `{"error": {"message", "type", "code"?, "param"?}}`: a 429 is retried after
  Retry-After (or its own backoff); a 5xx or no answer on submit means the outcome is unknown and
  it never submits twice; any other refusal prints `error.code` (or `error.type` when there is no
  code) and stops.

Exit status: 0 completed, downloaded (non-empty) and URL printed; 1 the task failed; 2 the
submission was refused (its error code printed); 3 the submission's outcome is unknown; 4 the task
is gone (404); 5 it took longer than MAX_WAIT; 6 the query was refused or the API kept failing;
7 an answer broke the dialect (results that are not objects with a `url`, an unreadable 200);
8 the result could not be downloaded or was empty.
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

BASE_URL = os.environ.get("BASE_URL", "https://api.foxapi.cc").rstrip("/")
API_KEY = os.environ.get("API_KEY", "")
POLL_INTERVAL = float(os.environ.get("POLL_INTERVAL", "5"))
MAX_WAIT = float(os.environ.get("MAX_WAIT", "600"))
TIMEOUT = 30.0
MAX_SUBMIT_TRIES = 4
MAX_POLL_ERRORS = 8

EXTEND_MODELS = ("veo-3.1-extend", "veo-3.1-extend-fast")
FAST_MODELS = ("veo-3.1-fast", "veo-3.1")


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
    """(error.code, or error.type when there is no code; error.message) of this dialect's error
    body, or (None, the text) when the body is not one."""
    try:
        error = response.json()["error"]
        return str(error.get("code") or error["type"]), str(error.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, response.text[:300]


def submit(client: httpx.Client, body: dict[str, Any]) -> str:
    for attempt in range(1, MAX_SUBMIT_TRIES + 1):
        try:
            response = client.post("/v1/videos/generations", json=body)
        except httpx.TransportError as exc:
            stop(3, f"submit outcome unknown (no answer: {type(exc).__name__}); not submitting again")
        if response.status_code == 200:
            try:
                return str(response.json()["id"])
            except (ValueError, KeyError, TypeError):
                stop(3, "submit outcome unknown (the 200 answer has no readable 'id'); not submitting again")
        code, message = error_of(response)
        if response.status_code == 429 and attempt < MAX_SUBMIT_TRIES:
            wait = retry_after(response) or backoff(attempt, 1.0)
            log(f"rate limited ({code}); waiting {wait:.1f} s before trying again")
            time.sleep(wait)
            continue
        if response.status_code >= 500:
            stop(3, f"submit outcome unknown (HTTP {response.status_code} {code}); not submitting again")
        if code is None:
            stop(2, f"submission refused: HTTP {response.status_code} without this dialect's error body: {message}")
        print(f"error.code: {code}", flush=True)
        stop(2, f"submission refused: HTTP {response.status_code} {code}: {message}")
    stop(2, "still rate limited; giving up")


def first_url(results: Any) -> str:
    item = results[0] if isinstance(results, list) and results else None
    url = item.get("url") if isinstance(item, dict) else None
    if not isinstance(url, str) or not url:
        stop(7, f"results are not objects with a 'url' as this dialect sends them: {json.dumps(results)[:200]}")
    return url


def poll(client: httpx.Client, task_id: str) -> str:
    deadline = time.monotonic() + MAX_WAIT
    errors = 0
    while time.monotonic() < deadline:
        wait = POLL_INTERVAL
        try:
            response: httpx.Response | None = client.get(f"/v1/tasks/{task_id}", params={"sync_upstream": "true"})
        except httpx.TransportError as exc:
            response = None
            log(f"poll failed ({type(exc).__name__}); retrying")
        if response is not None and response.status_code == 200:
            try:
                task = response.json()
            except ValueError:
                stop(7, "the query answer (HTTP 200) is not JSON")
            if not isinstance(task, dict):
                stop(7, f"the query answer is not a JSON object: {str(task)[:200]}")
            errors = 0
            status = task.get("status")
            if status == "completed" and task.get("results"):
                return first_url(task["results"])
            if status == "failed":
                error = task.get("error") or {}
                stop(1, f"task failed: {error.get('code')}: {error.get('message')}")
            if status not in ("pending", "processing", "completed"):
                stop(1, f"task is in an unknown state {status!r}; treating it as failed")
        elif response is not None:
            code, message = error_of(response)
            if response.status_code == 404:
                stop(4, f"task {task_id} is gone (HTTP 404 {code})")
            if response.status_code in (401, 422):
                stop(6, f"the query was refused: HTTP {response.status_code} {code}: {message}")
            errors += 1
            if response.status_code == 429:
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
    if args.model in EXTEND_MODELS:
        return {
            "model": args.model,
            "prompt": args.prompt or "The camera continues to pan across the landscape",
            "video_url": args.video,
            "aspect_ratio": "16:9",
            "generate_audio": True,
        }
    body: dict[str, Any] = {
        "model": args.model,
        "prompt": args.prompt or "A golden retriever running on the beach at sunset",
        "generation_type": "text-to-video",
        "aspect_ratio": "16:9",
        "duration": 8,
        "resolution": "1080p",
        "generate_audio": True,
    }
    if args.image:
        body["generation_type"] = "image-to-video"
        body["image_urls"] = [args.image]
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description="Submit one task to one of the two models and wait for it.")
    parser.add_argument("--model", choices=EXTEND_MODELS + FAST_MODELS, default=EXTEND_MODELS[0])
    parser.add_argument("--video", default="https://example.com/input-video.mp4", help="input video URL (extend)")
    parser.add_argument("--image", default=None, help="first-frame image URL (veo-3.1-fast: image-to-video)")
    parser.add_argument("--prompt", default=None)
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=BASE_URL, headers=headers, timeout=TIMEOUT) as client:
        task_id = submit(client, build_body(args))
        log(f"submitted {task_id}")
        url = poll(client, task_id)
    size = download(url)
    log(f"downloaded {size} bytes")
    print(url)


if __name__ == "__main__":
    main()
