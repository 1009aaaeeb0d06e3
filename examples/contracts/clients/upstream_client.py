"""A third-party client of the upstream platform's dialect of the video task API, written with httpx
from `examples/contracts/upstream-dialect.yaml` (and the docs it cites) only.

    BASE_URL=https://api.evolink.ai API_KEY=sk-evo-... python examples/contracts/clients/upstream_client.py \
        [--model happyhorse-1.0-image-to-video | happyhorse-1.0-video-edit] [--image URL] [--video URL] \
        [--prompt TEXT]
    BASE_URL=... API_KEY=... [CALLBACK_SECRET=whsec_...] python .../upstream_client.py --callback \
        --callback-cert CERT.pem --callback-key KEY.pem [--callback-listen 127.0.0.1:0] [--callback-url URL]

It submits one task (by default `happyhorse-1.0-image-to-video` with one first-frame image and no
prompt, which that model allows), polls `GET /v1/tasks/{id}` every POLL_INTERVAL seconds (default
5) for at most MAX_WAIT seconds (default 600), downloads the first result and prints, on stdout,
`task_info: {...}`, `billing_rule: ...` and, last, the video URL.

`--callback`: the outcome comes by callback. The dialect documents `callback_url` (HTTPS only:
`^https://`, at most 2048 characters; a POST of the query-shaped task when it completes, fails or
is cancelled, retried after 1, 2 and 4 s until a 2xx). The client starts an HTTPS receiver of its
own (http.server with TLS, on `--callback-listen`, by default a free loopback port) with the
certificate and key of `--callback-cert` / `--callback-key` (or CALLBACK_CERT / CALLBACK_KEY; the
client itself trusts nothing special: it is the API that must trust this certificate), and
submits with `callback_url` = `--callback-url` (by default `https://HOST:PORT/callback`). When
CALLBACK_SECRET (`whsec_...`) is set, each delivery must carry a Standard Webhooks signature,
verified with the `standardwebhooks` library (the platform itself documents no signing; a proxy
or a fake in front of it may add one): one that does not verify is answered 401 and ignored.
A delivery whose `webhook-id` was seen before is answered 200 and ignored. Each delivery gets one
line on stderr naming its webhook id: `callback msg_...: refused (...)`, `... duplicate,
ignored`, `... not final; ignored`, or, for the one acted on, `outcome by callback msg_...: task
ID STATUS`. The first delivery of the task in a final state (failed, cancelled, or completed
with results) is the outcome, checked like a query answer; a completed one is confirmed by one
query, and while that still says pending or processing the client polls every POLL_INTERVAL
until it shows the outcome. When no callback has come for CALLBACK_POLL_INTERVAL seconds
(default 60) it polls the task once, as a fallback for a callback that is lost or late, and a
final state there is the outcome (`outcome by polling`). It gives up at MAX_WAIT as without
`--callback`.

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
be downloaded or was empty. With `--callback`, also 2 when the receiver has no certificate or
cannot listen.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn

import httpx
from standardwebhooks import Webhook, WebhookVerificationError

BASE_URL = os.environ.get("BASE_URL", "https://api.evolink.ai").rstrip("/")
API_KEY = os.environ.get("API_KEY", "")
POLL_INTERVAL = float(os.environ.get("POLL_INTERVAL", "5"))
MAX_WAIT = float(os.environ.get("MAX_WAIT", "600"))
CALLBACK_SECRET = os.environ.get("CALLBACK_SECRET", "")
CALLBACK_POLL_INTERVAL = float(os.environ.get("CALLBACK_POLL_INTERVAL", "60"))
MAX_CALLBACK_BODY = 1024 * 1024
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


def final(task: Any) -> tuple[str, dict[str, Any], str] | None:
    """(result URL, task_info, billing_rule) of a task completed with results; None while it runs
    (completed without results yet, too); exits when it failed, was cancelled or broke the dialect."""
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
    return None


def query_once(client: httpx.Client, task_id: str) -> dict[str, Any] | None:
    """One query of the task: its answer, or None when this one failed in a way worth retrying."""
    try:
        response = client.get(f"/v1/tasks/{task_id}")
    except httpx.TransportError as exc:
        log(f"poll failed ({type(exc).__name__}); retrying")
        return None
    if response.status_code == 200:
        try:
            return response.json()
        except ValueError:
            stop(7, "the query answer (HTTP 200) is not JSON")
    code, message = error_of(response)
    if code == "task_not_found" or response.status_code == 404:
        stop(4, f"task {task_id} is gone (HTTP {response.status_code} {code})")
    if code in QUERY_FATAL_CODES:
        stop(6, f"the query was refused: HTTP {response.status_code} {code}: {message}")
    log(f"poll failed: HTTP {response.status_code} {code}; retrying")
    return None


class Receiver(ThreadingHTTPServer):
    """The HTTPS callback receiver: verifies each delivery (with a secret), drops those seen before
    (by webhook-id), and queues the tasks the others carry."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, secret: str) -> None:
        super().__init__(address, CallbackHandler)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.webhook = Webhook(secret) if secret else None
        self.seen: set[str] = set()
        self.lock = threading.Lock()
        self.arrived: queue.Queue[tuple[str, Any]] = queue.Queue()


class CallbackHandler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: Any) -> None:  # no access log on stderr
        pass

    def _answer(self, status: int, text: str = "") -> None:
        payload = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if not 0 < length <= MAX_CALLBACK_BODY:
            self._answer(400 if length == 0 else 413, "a callback has a JSON body")
            return
        body = self.rfile.read(length)
        webhook_id = self.headers.get("webhook-id") or "(no webhook-id)"
        if self.server.webhook is not None:
            try:
                self.server.webhook.verify(body, {name.lower(): value for name, value in self.headers.items()})
            except WebhookVerificationError as exc:
                log(f"callback {webhook_id}: refused ({exc})")
                self._answer(401, "the signature does not verify")
                return
        with self.server.lock:
            duplicate = webhook_id in self.server.seen and webhook_id != "(no webhook-id)"
            self.server.seen.add(webhook_id)
        if duplicate:
            log(f"callback {webhook_id}: duplicate, ignored")
            self._answer(200, "seen before")
            return
        try:
            task = json.loads(body)
        except ValueError:
            log(f"callback {webhook_id}: refused (the body is not JSON)")
            self._answer(400, "the body is not JSON")
            return
        self._answer(200, "ok")
        self.server.arrived.put((webhook_id, task))


def start_receiver(args: argparse.Namespace) -> Receiver:
    cert = args.callback_cert or os.environ.get("CALLBACK_CERT")
    key = args.callback_key or os.environ.get("CALLBACK_KEY")
    if not cert:
        stop(
            2,
            "--callback needs a certificate for its HTTPS receiver: --callback-cert (and --callback-key) or CALLBACK_CERT",
        )
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key or None)
        host, _, port = args.callback_listen.rpartition(":")
        receiver = Receiver((host or "127.0.0.1", int(port or 0)), context, CALLBACK_SECRET)
    except (OSError, ValueError, ssl.SSLError) as exc:
        stop(2, f"the callback receiver cannot listen on {args.callback_listen} with {cert}: {exc}")
    threading.Thread(target=receiver.serve_forever, name="callback-receiver", daemon=True).start()
    bound_host, bound_port = receiver.server_address[:2]
    args.callback_url = args.callback_url or f"https://{bound_host}:{bound_port}/callback"
    signed = "verified with standardwebhooks" if CALLBACK_SECRET else "not verified (no CALLBACK_SECRET)"
    log(f"callback receiver listening on https://{bound_host}:{bound_port}; callback_url {args.callback_url}; {signed}")
    return receiver


def await_callback(client: httpx.Client, receiver: Receiver, task_id: str) -> tuple[str, dict[str, Any], str]:
    """The task's outcome: from the first callback that carries it in a final state, or from a
    fallback poll when no callback came for CALLBACK_POLL_INTERVAL seconds."""
    deadline = time.monotonic() + MAX_WAIT
    errors = 0
    while time.monotonic() < deadline:
        try:
            wait = min(CALLBACK_POLL_INTERVAL, max(deadline - time.monotonic(), 0))
            webhook_id, task = receiver.arrived.get(timeout=wait)
        except queue.Empty:
            polled = query_once(client, task_id)  # the fallback: a callback may be lost, or late
            if polled is None:
                errors += 1
                if errors > MAX_POLL_ERRORS:
                    stop(6, "the API kept failing; giving up")
                continue
            errors = 0
            log(f"no callback for {CALLBACK_POLL_INTERVAL:g} s; polled: {polled.get('status')}")
            outcome = final(polled)
            if outcome is not None:
                log("outcome by polling")
                return outcome
            continue
        if not isinstance(task, dict) or task.get("id") != task_id:
            log(f"callback {webhook_id}: not task {task_id}, ignored")
            continue
        if task.get("status") in ("failed", "cancelled"):
            log(f"outcome by callback {webhook_id}: task {task_id} {task.get('status')}")
        outcome = final(task)
        if outcome is None:
            log(f"callback {webhook_id}: task {task_id} {task.get('status')}, not final; ignored")
            continue
        log(f"outcome by callback {webhook_id}: task {task_id} completed")
        # A callback can come before the API's reads show its state: one query confirms it, and
        # while that still says the task runs, polling waits for the state to follow.
        confirmed = query_once(client, task_id)
        if confirmed is not None and confirmed.get("status") in ("pending", "processing"):
            log(f"the API still says {confirmed.get('status')}; polling until it shows the callback's outcome")
            time.sleep(POLL_INTERVAL)
            return poll(client, task_id)
        return outcome
    stop(5, f"task {task_id} did not finish within {MAX_WAIT:g} s; giving up")


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
            outcome = final(task)
            if outcome is not None:
                return outcome
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
    parser.add_argument(
        "--callback", action="store_true", help="take the outcome from a callback (polling as a fallback)"
    )
    parser.add_argument(
        "--callback-listen", default="127.0.0.1:0", metavar="HOST:PORT", help="where the receiver listens"
    )
    parser.add_argument("--callback-url", help="the callback_url given to the API (default: the receiver's own)")
    parser.add_argument("--callback-cert", help="the receiver's certificate (PEM; default CALLBACK_CERT)")
    parser.add_argument(
        "--callback-key", help="the receiver's private key (PEM; default CALLBACK_KEY, or in the cert file)"
    )
    args = parser.parse_args()
    receiver = start_receiver(args) if args.callback else None
    body = build_body(args)
    if receiver is not None:
        body["callback_url"] = args.callback_url
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=BASE_URL, headers=headers, timeout=TIMEOUT) as client:
        task_id = submit(client, body)
        log(f"submitted {task_id}")
        if receiver is not None:
            url, task_info, billing_rule = await_callback(client, receiver, task_id)
        else:
            url, task_info, billing_rule = poll(client, task_id)
    size = download(url)
    log(f"downloaded {size} bytes")
    print(f"task_info: {json.dumps(task_info, sort_keys=True)}")
    print(f"billing_rule: {billing_rule}")
    print(url)


if __name__ == "__main__":
    main()
