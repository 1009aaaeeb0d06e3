"""A client of OpenAI's Videos API (Sora 2) written with the official SDK, unchanged (`pip install
openai`; written against openai 3.63.0), for `examples/contracts/openai-videos.yaml`.

    BASE_URL=https://api.openai.com API_KEY=sk-... python examples/contracts/clients/openai_videos_client.py \
        [--prompt TEXT] [--model sora-2] [--seconds 4|8|12] [--size 720x1280|1280x720|...] \
        [--thumbnail] [--output FILE]
    BASE_URL=... API_KEY=... python .../openai_videos_client.py --cancel
    BASE_URL=... API_KEY=... python .../openai_videos_client.py --list

BASE_URL is the server's root; the SDK wants its `/v1` prefix in `base_url`, so `/v1` is added
(unless BASE_URL already ends with it). It creates one video job with `videos.create` (the SDK
sends a `multipart/form-data` POST /v1/videos), polls `videos.retrieve` (GET /v1/videos/{id}) every
POLL_INTERVAL seconds (default 5) for at most MAX_WAIT seconds (default 600) in its own loop (not
the SDK's `poll` / `create_and_poll` helpers, which sleep 1 s or what the server says), and when
the job is `completed` downloads the MP4 with `videos.download_content` (GET
/v1/videos/{id}/content; `--thumbnail` also fetches `?variant=thumbnail`). It prints on stdout the
`seconds` and `size` the job reports (it asked for `--seconds` / `--size`; a difference is noted on
stderr), the downloaded sizes, and last `content:<bytes of the video>`.

`--cancel`: OpenAI has no cancel; the job is deleted (`videos.delete`, DELETE /v1/videos/{id})
right after it is created, and a `videos.retrieve` must then answer 404. `--list`: walks
`videos.list` (GET /v1/videos, cursor `after` = the page's `last_id`) page by page with the SDK's
pagination and prints how many jobs it saw.

What it expects of the API: the Video object (`status` queued / in_progress / completed / failed,
`error` {code, message} when failed) and errors `{"error": {"message", "type", "param", "code"}}`.
Answers are parsed strictly (`_strict_response_validation=True`), so an answer that breaks the
SDK's types is an error here (exit 7) rather than a half-filled object. A 429 on create is retried
after Retry-After (or a backoff) unless its code is `insufficient_quota`; a 5xx or no answer on
create means the outcome is unknown and it never creates twice.

Exit status: 0 completed and downloaded (or, with --list, listed); 1 the job failed (OpenAI has
no cancelled status, so a cancel never ends here); 2 the creation was refused
(error code printed; also no API_KEY); 3 the creation's outcome is unknown; 4 the job is gone (404
while polling; with --cancel: deleted and confirmed gone, the expected outcome); 5 it took longer
than MAX_WAIT; 6 a query (retrieve, list) was refused or the API kept failing; 7 an answer broke
the contract (the SDK could not parse it, an unknown status); 8 the content could not be
downloaded or was empty; 9 (--cancel) the delete was refused or the job was still there after it.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import warnings
from typing import Any, NoReturn

# The SDK marks every Videos method deprecated ("The Sora API is scheduled to permanently shut
# down on September 24, 2026"); the DeprecationWarning it emits on each call is noise here.
warnings.filterwarnings("ignore", category=DeprecationWarning)

import openai
from openai import OpenAI

BASE_URL = os.environ.get("BASE_URL", "https://api.openai.com").rstrip("/")
API_KEY = os.environ.get("API_KEY", "")
POLL_INTERVAL = float(os.environ.get("POLL_INTERVAL", "5"))
MAX_WAIT = float(os.environ.get("MAX_WAIT", "600"))
TIMEOUT = 60.0
MAX_CREATE_TRIES = 4
MAX_POLL_ERRORS = 8
MAX_LIST_PAGES = 100

MODELS = ("sora-2", "sora-2-pro", "sora-2-2025-10-06", "sora-2-pro-2025-10-06", "sora-2-2025-12-08")
SECONDS = ("4", "8", "12")
SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
RUNNING = ("queued", "in_progress")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def stop(status: int, message: str) -> NoReturn:
    log(message)
    sys.exit(status)


def backoff(attempt: int, base: float) -> float:
    return max(base, 1.0) * (2 ** min(attempt, 5)) * (1 + random.random() / 2)


def retry_after(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after"):
            return float(headers["retry-after"])
    except ValueError:
        return None
    return None


def describe(exc: openai.APIStatusError) -> str:
    return f"HTTP {exc.status_code} {exc.type or '-'}/{exc.code or '-'}: {exc.message}"


def make_client() -> OpenAI:
    if not API_KEY:
        stop(2, "API_KEY is not set")
    base_url = BASE_URL if BASE_URL.endswith("/v1") else f"{BASE_URL}/v1"
    # max_retries=2 (the SDK's default) for the GETs: retrieving, listing and downloading are safe
    # to repeat. The create and the delete get max_retries=0 below.
    return OpenAI(
        api_key=API_KEY,
        base_url=base_url,
        timeout=TIMEOUT,
        max_retries=2,
        _strict_response_validation=True,
    )


def create(client: OpenAI, args: argparse.Namespace) -> Any:
    # max_retries=0: the SDK would otherwise repeat the POST on a timeout, a 408/409/429 or a 5xx,
    # and OpenAI's SDK sends no Idempotency-Key, so a retry after an answer that was lost (the job
    # was created) would start a second, billed job. Only a 429 (nothing was created) is retried,
    # here, on purpose.
    once = client.with_options(max_retries=0)
    for attempt in range(1, MAX_CREATE_TRIES + 1):
        try:
            return once.videos.create(prompt=args.prompt, model=args.model, seconds=args.seconds, size=args.size)
        except openai.RateLimitError as exc:
            if exc.code == "insufficient_quota" or attempt == MAX_CREATE_TRIES:
                print(f"error.code: {exc.code}", flush=True)
                stop(2, f"creation refused: {describe(exc)}")
            wait = retry_after(exc) or backoff(attempt, 1.0)
            log(f"rate limited ({exc.code}); waiting {wait:.1f} s before trying again")
            time.sleep(wait)
        except openai.InternalServerError as exc:
            stop(3, f"creation outcome unknown ({describe(exc)}); not creating again")
        except openai.APIResponseValidationError as exc:
            stop(7, f"the create answer broke the contract: {exc.message}: {str(exc.body)[:300]}")
        except openai.APIStatusError as exc:
            print(f"error.code: {exc.code}", flush=True)
            stop(2, f"creation refused: {describe(exc)}")
        except openai.APIConnectionError as exc:
            stop(3, f"creation outcome unknown (no answer: {type(exc).__name__}); not creating again")
    stop(2, "still rate limited; giving up")


def retrieve(client: OpenAI, video_id: str) -> Any | None:
    """The job, or None when this poll failed in a way worth retrying; exits on the others."""
    try:
        return client.videos.retrieve(video_id)
    except openai.NotFoundError as exc:
        stop(4, f"video {video_id} is gone ({describe(exc)})")
    except openai.APIResponseValidationError as exc:
        stop(7, f"the retrieve answer broke the contract: {exc.message}: {str(exc.body)[:300]}")
    except (openai.RateLimitError, openai.InternalServerError) as exc:
        log(f"poll failed: {describe(exc)}; retrying")
        return None
    except openai.APIStatusError as exc:
        stop(6, f"the query was refused: {describe(exc)}")
    except openai.APIConnectionError as exc:
        log(f"poll failed ({type(exc).__name__}); retrying")
        return None


def poll(client: OpenAI, video_id: str) -> Any:
    deadline = time.monotonic() + MAX_WAIT
    errors = 0
    while time.monotonic() < deadline:
        wait = POLL_INTERVAL
        video = retrieve(client, video_id)
        if video is None:
            errors += 1
            if errors > MAX_POLL_ERRORS:
                stop(6, "the API kept failing; giving up")
            wait = max(POLL_INTERVAL, backoff(errors, POLL_INTERVAL))
        else:
            errors = 0
            if video.status == "completed":
                return video
            if video.status == "failed":
                error = video.error
                code, message = (error.code, error.message) if error else (None, None)
                print(f"error.code: {code}", flush=True)
                stop(1, f"video {video_id} failed: {code}: {message}")
            if video.status not in RUNNING:
                stop(7, f"video {video_id} has an unknown status {video.status!r}")
            log(f"{video.status} {video.progress}%")
        time.sleep(min(wait, max(deadline - time.monotonic(), 0)))
    stop(5, f"video {video_id} did not finish within {MAX_WAIT:g} s; giving up")


def download(client: OpenAI, video_id: str, variant: str) -> bytes:
    try:
        content = client.videos.download_content(video_id, variant=variant).read()
    except openai.APIStatusError as exc:
        stop(8, f"downloading the {variant} of {video_id} failed: {describe(exc)}")
    except openai.APIConnectionError as exc:
        stop(8, f"downloading the {variant} of {video_id} failed: {type(exc).__name__}")
    if not content:
        stop(8, f"the {variant} of {video_id} is empty")
    return content


def cancel(client: OpenAI, video_id: str) -> NoReturn:
    # max_retries=0: a repeated DELETE after one that worked but whose answer was lost would
    # answer 404 and hide what happened.
    try:
        deleted = client.with_options(max_retries=0).videos.delete(video_id)
    except openai.APIResponseValidationError as exc:
        stop(7, f"the delete answer broke the contract: {exc.message}: {str(exc.body)[:300]}")
    except openai.APIStatusError as exc:
        stop(9, f"the delete was refused: {describe(exc)}")
    except openai.APIConnectionError as exc:
        stop(9, f"the delete got no answer ({type(exc).__name__})")
    if not deleted.deleted:
        stop(9, f"the delete answered deleted={deleted.deleted!r}")
    log(f"deleted {deleted.id} ({deleted.object})")
    try:
        video = client.videos.retrieve(video_id)
    except openai.NotFoundError:
        print(f"gone: {video_id}", flush=True)
        stop(4, f"video {video_id} is deleted and gone, as asked")
    except openai.APIError as exc:
        stop(9, f"could not confirm the delete: {type(exc).__name__}: {exc.message}")
    stop(9, f"video {video_id} is still there after the delete (status {video.status})")


def list_videos(client: OpenAI) -> NoReturn:
    seen = pages = 0
    try:
        page = client.videos.list(limit=100, order="desc")
        for current in page.iter_pages():
            pages += 1
            seen += len(current.data)
            if pages >= MAX_LIST_PAGES:
                log(f"stopping after {pages} pages")
                break
    except openai.APIResponseValidationError as exc:
        stop(7, f"a list answer broke the contract: {exc.message}: {str(exc.body)[:300]}")
    except openai.APIStatusError as exc:
        stop(6, f"the list was refused: {describe(exc)}")
    except openai.APIConnectionError as exc:
        stop(6, f"the list got no answer ({type(exc).__name__})")
    print(f"pages: {pages}")
    print(f"listed: {seen}")
    sys.exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description="Create one Sora video job with the openai SDK and wait for it.")
    parser.add_argument("--prompt", default="A calico cat playing a piano on stage, warm spotlight")
    parser.add_argument("--model", choices=MODELS, default="sora-2")
    parser.add_argument("--seconds", choices=SECONDS, default="4", help="clip length (default 4)")
    parser.add_argument("--size", choices=SIZES, default="720x1280", help="width x height (default 720x1280)")
    parser.add_argument("--thumbnail", action="store_true", help="also download the thumbnail variant")
    parser.add_argument("--output", help="write the MP4 here")
    parser.add_argument("--cancel", action="store_true", help="delete the job right after creating it")
    parser.add_argument("--list", action="store_true", help="list the project's video jobs and exit")
    args = parser.parse_args()
    client = make_client()
    if args.list:
        list_videos(client)
    video = create(client, args)
    log(f"created {video.id} ({video.status})")
    if args.cancel:
        cancel(client, video.id)
    video = poll(client, video.id)
    print(f"seconds: {video.seconds}")
    print(f"size: {video.size}")
    if (video.seconds, video.size) != (args.seconds, args.size):
        log(f"asked for {args.seconds} s at {args.size}, the job says {video.seconds} s at {video.size}")
    content = download(client, video.id, "video")
    if args.output:
        with open(args.output, "wb") as out:
            out.write(content)
    if args.thumbnail:
        print(f"thumbnail: {len(download(client, video.id, 'thumbnail'))} bytes")
    print(f"video: {len(content)} bytes")
    print(f"content:{len(content)}")


if __name__ == "__main__":
    main()
