"""A client of Runway's API written with the official SDK, unchanged (`pip install runwayml`;
written against runwayml 5.24.0), for `examples/contracts/runway.yaml`.

    BASE_URL=https://api.dev.runwayml.com API_KEY=key_... python examples/contracts/clients/runway_client.py \
        [--image URL] [--prompt TEXT] [--ratio 1280:720|720:1280|...] [--duration 5|10] [--output FILE]
    BASE_URL=... API_KEY=... python .../runway_client.py --cancel

BASE_URL is the server's root and goes to the SDK's `base_url` as it is (the SDK's paths carry the
`/v1` prefix); the SDK adds `X-Runway-Version: 2024-11-06` to every request. It starts one
gen4_turbo task with `image_to_video.create` (POST /v1/image_to_video, JSON), polls
`tasks.retrieve` (GET /v1/tasks/{id}) every POLL_INTERVAL seconds (default 5) for at most MAX_WAIT
seconds (default 600) in its own loop (not the SDK's `wait_for_task_output()`, which sleeps 6 s
+-1.5 s and, in the sync client, never stops on CANCELLED), and when the task has SUCCEEDED
downloads `output[0]` with httpx (a signed URL: no API key is sent). It prints on stdout what it
asked for (`duration`, `ratio`: a Runway task does not echo them), the downloaded size, and last
the URL.

`--cancel`: the task is deleted (`tasks.delete`, DELETE /v1/tasks/{id}, 204) right after it is
created, which cancels it; a `tasks.retrieve` must then answer 404 (or CANCELLED). `--list`:
Runway's API has no task list (the SDK has no `tasks.list`); the client says so and exits 2, as
for a usage error.

What it expects of the API: a task whose fields depend on `status` (PENDING / THROTTLED / RUNNING
with `progress` 0..1 / SUCCEEDED with `output` / FAILED with `failure`, `failureCode` / CANCELLED),
and errors `{"error": "...", "issues"?: [...]}`. Answers are parsed strictly
(`_strict_response_validation=True`), so an answer that breaks the SDK's types is an error here
(exit 7). A 429 on create is retried after Retry-After (or a backoff); a 5xx or no answer on create
means the outcome is unknown and it never creates twice.

Exit status: 0 succeeded and downloaded (non-empty); 1 the task failed or was cancelled (with
--cancel: it reports CANCELLED, an expected outcome); 2 the creation was refused (the error and
its issues printed; also no API_KEY, and --list); 3 the creation's outcome is unknown; 4 the task
is gone (404 while polling; with --cancel: deleted and confirmed gone, the expected outcome); 5 it
took longer than MAX_WAIT; 6 a query was refused or the API kept failing; 7 an answer broke the
contract (the SDK could not parse it, SUCCEEDED without output); 8 the output could not be
downloaded or was empty; 9 (--cancel) the delete was refused or the task was still running after
it.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import warnings
from typing import Any, NoReturn

warnings.filterwarnings("ignore", category=DeprecationWarning)

import httpx
import runwayml
from runwayml import RunwayML

BASE_URL = os.environ.get("BASE_URL", "https://api.dev.runwayml.com").rstrip("/")
API_KEY = os.environ.get("API_KEY", "")
POLL_INTERVAL = float(os.environ.get("POLL_INTERVAL", "5"))
MAX_WAIT = float(os.environ.get("MAX_WAIT", "600"))
TIMEOUT = 60.0
MAX_CREATE_TRIES = 4
MAX_POLL_ERRORS = 8

RATIOS = ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672")
WAITING = ("PENDING", "THROTTLED", "RUNNING")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def stop(status: int, message: str) -> NoReturn:
    log(message)
    sys.exit(status)


def backoff(attempt: int, base: float) -> float:
    return max(base, 1.0) * (2 ** min(attempt, 5)) * (1 + random.random() / 2)


def retry_after(exc: runwayml.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after", "")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def describe(exc: runwayml.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    text = f"HTTP {exc.status_code}: {body.get('error', exc.message)}"
    for issue in body.get("issues") or []:
        if isinstance(issue, dict):
            path = ".".join(str(part) for part in issue.get("path") or [])
            text += f"\n  {path or '(body)'}: {issue.get('code')}: {issue.get('message', '')}"
    return text


def make_client() -> RunwayML:
    if not API_KEY:
        stop(2, "API_KEY is not set")
    # max_retries=2 (the SDK's default) for the GETs, which are safe to repeat; the create and the
    # delete get max_retries=0 below.
    return RunwayML(
        api_key=API_KEY, base_url=BASE_URL, timeout=TIMEOUT, max_retries=2, _strict_response_validation=True
    )


def create(client: RunwayML, args: argparse.Namespace) -> Any:
    # max_retries=0: the SDK would otherwise repeat the POST on a timeout, a 408/409/429 or a 5xx
    # and the SDK sends no Idempotency-Key, so a retry after an answer that was lost (the task was
    # created) would start a second, billed task. Only a 429 (nothing was created) is retried,
    # here, on purpose.
    once = client.with_options(max_retries=0)
    body: dict[str, Any] = {"model": "gen4_turbo", "prompt_image": args.image, "ratio": args.ratio}
    if args.prompt:
        body["prompt_text"] = args.prompt
    if args.duration:
        body["duration"] = args.duration
    for attempt in range(1, MAX_CREATE_TRIES + 1):
        try:
            return once.image_to_video.create(**body)
        except runwayml.RateLimitError as exc:
            if attempt == MAX_CREATE_TRIES:
                stop(2, f"creation refused: {describe(exc)}")
            wait = retry_after(exc) or backoff(attempt, 1.0)
            log(f"rate limited; waiting {wait:.1f} s before trying again")
            time.sleep(wait)
        except runwayml.InternalServerError as exc:
            stop(3, f"creation outcome unknown ({describe(exc)}); not creating again")
        except runwayml.APIResponseValidationError as exc:
            stop(7, f"the create answer broke the contract: {exc.message}: {str(exc.body)[:300]}")
        except runwayml.APIStatusError as exc:
            print(f"error: {describe(exc)}", flush=True)
            stop(2, "creation refused")
        except runwayml.APIConnectionError as exc:
            stop(3, f"creation outcome unknown (no answer: {type(exc).__name__}); not creating again")
    stop(2, "still rate limited; giving up")


def retrieve(client: RunwayML, task_id: str) -> Any | None:
    """The task, or None when this poll failed in a way worth retrying; exits on the others."""
    try:
        return client.tasks.retrieve(task_id)
    except runwayml.NotFoundError as exc:
        stop(4, f"task {task_id} is gone ({describe(exc)})")
    except runwayml.APIResponseValidationError as exc:
        stop(7, f"the task answer broke the contract: {exc.message}: {str(exc.body)[:300]}")
    except (runwayml.RateLimitError, runwayml.InternalServerError) as exc:
        log(f"poll failed: {describe(exc)}; retrying")
        return None
    except runwayml.APIStatusError as exc:
        stop(6, f"the query was refused: {describe(exc)}")
    except runwayml.APIConnectionError as exc:
        log(f"poll failed ({type(exc).__name__}); retrying")
        return None


def poll(client: RunwayML, task_id: str) -> str:
    deadline = time.monotonic() + MAX_WAIT
    errors = 0
    while time.monotonic() < deadline:
        wait = POLL_INTERVAL
        task = retrieve(client, task_id)
        if task is None:
            errors += 1
            if errors > MAX_POLL_ERRORS:
                stop(6, "the API kept failing; giving up")
            wait = max(POLL_INTERVAL, backoff(errors, POLL_INTERVAL))
        else:
            errors = 0
            if task.status == "SUCCEEDED":
                if not task.output:
                    stop(7, f"task {task_id} SUCCEEDED without output")
                return task.output[0]
            if task.status == "FAILED":
                print(f"failureCode: {task.failure_code}", flush=True)
                stop(1, f"task {task_id} failed: {task.failure_code}: {task.failure}")
            if task.status == "CANCELLED":
                stop(1, f"task {task_id} was cancelled")
            if task.status not in WAITING:
                stop(7, f"task {task_id} has an unknown status {task.status!r}")
            progress = f" {task.progress:.0%}" if task.status == "RUNNING" else ""
            log(f"{task.status}{progress}")
        time.sleep(min(wait, max(deadline - time.monotonic(), 0)))
    stop(5, f"task {task_id} did not finish within {MAX_WAIT:g} s; giving up")


def download(url: str) -> bytes:
    """GET the output without the API key (a signed URL); its bytes."""
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=True) as plain:
            response = plain.get(url)
    except httpx.HTTPError as exc:
        stop(8, f"could not download {url}: {type(exc).__name__}")
    if response.status_code != 200 or not response.content:
        stop(8, f"downloading {url} gave HTTP {response.status_code} with {len(response.content)} bytes")
    return response.content


def cancel(client: RunwayML, task_id: str) -> NoReturn:
    # max_retries=0: a repeated DELETE after one that worked but whose answer was lost would
    # answer 404 and hide what happened.
    try:
        client.with_options(max_retries=0).tasks.delete(task_id)
    except runwayml.APIStatusError as exc:
        stop(9, f"the delete was refused: {describe(exc)}")
    except runwayml.APIConnectionError as exc:
        stop(9, f"the delete got no answer ({type(exc).__name__})")
    log(f"deleted {task_id}")
    try:
        task = client.tasks.retrieve(task_id)
    except runwayml.NotFoundError:
        print(f"gone: {task_id}", flush=True)
        stop(4, f"task {task_id} is cancelled and gone, as asked")
    except runwayml.APIError as exc:
        stop(9, f"could not confirm the cancel: {type(exc).__name__}: {exc.message}")
    if task.status == "CANCELLED":
        print(f"cancelled: {task_id}", flush=True)
        stop(1, f"task {task_id} reports CANCELLED, as asked")
    stop(9, f"task {task_id} is still {task.status} after the delete")


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Start one gen4_turbo image-to-video task with the runwayml SDK and wait for it."
    )
    parser.add_argument(
        "--image", default="https://cdn.example.com/first-frame.jpg", help="first frame: HTTPS URL or data URI"
    )
    parser.add_argument("--prompt", default="The camera slowly pushes in as leaves drift across the frame")
    parser.add_argument("--ratio", choices=RATIOS, default="1280:720", help="output width:height (default 1280:720)")
    parser.add_argument("--duration", type=int, choices=(5, 10), default=5, help="seconds (default 5)")
    parser.add_argument("--output", help="write the MP4 here")
    parser.add_argument("--cancel", action="store_true", help="cancel (delete) the task right after creating it")
    parser.add_argument("--list", action="store_true", help="not offered: Runway's API cannot list tasks")
    args = parser.parse_args()
    if args.list:
        stop(2, "Runway's API has no operation that lists tasks (runwayml has no tasks.list)")
    client = make_client()
    created = create(client, args)
    log(f"created {created.id}")
    if args.cancel:
        cancel(client, created.id)
    url = poll(client, created.id)
    print(f"duration: {args.duration} (asked; a Runway task does not report it)")
    print(f"ratio: {args.ratio} (asked; a Runway task does not report it)")
    content = download(url)
    if args.output:
        with open(args.output, "wb") as out:
            out.write(content)
    print(f"video: {len(content)} bytes")
    print(url)


if __name__ == "__main__":
    main()
