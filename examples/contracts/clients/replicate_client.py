"""A client of Replicate's predictions API written with the official SDK, unchanged (`pip install
replicate`; written against replicate 1.0.7), for `examples/contracts/replicate.yaml` and its one
model, lightricks/ltx-2.5-fast.

    BASE_URL=https://api.replicate.com API_KEY=r8_... python examples/contracts/clients/replicate_client.py \
        [--prompt TEXT] [--duration 6] [--aspect-ratio 16:9|9:16] [--resolution 1080p] \
        [--image URL] [--wait SECONDS] [--output FILE]
    BASE_URL=... API_KEY=... python .../replicate_client.py --cancel
    BASE_URL=... API_KEY=... python .../replicate_client.py --list
    BASE_URL=... API_KEY=... CALLBACK_SECRET=whsec_... python .../replicate_client.py --webhook \
        [--webhook-listen 127.0.0.1:0] [--webhook-url URL]

BASE_URL is the server's root and goes to the SDK's `base_url` as it is (the SDK's paths carry the
`/v1` prefix; a BASE_URL ending in `/v1` has it removed). It creates one prediction with
`models.predictions.create` (POST /v1/models/lightricks/ltx-2.5-fast/predictions, JSON
`{"input": {...}}`; with `--wait N` the SDK adds `Prefer: wait=N`), polls `predictions.get`
(GET /v1/predictions/{id}) every POLL_INTERVAL seconds (default 5) for at most MAX_WAIT seconds
(default 600) in its own loop (not `Prediction.wait()` / `replicate.run`, which sleep
REPLICATE_POLL_INTERVAL, 0.5 s by default), and when the prediction has succeeded downloads its
`output` URL with the SDK's `FileOutput` (which sends the API token, as Replicate's reference says
to). It prints on stdout the `duration`, `aspect_ratio` and `resolution` the prediction echoes in
its `input` (it asked for `--duration` / `--aspect-ratio` / `--resolution`; a difference is noted on
stderr), the downloaded size, and last the URL.

`--cancel`: `predictions.cancel` (POST /v1/predictions/{id}/cancel) right after creating it; the
answer, and a `predictions.get` after it, must say `canceled`. `--list`: walks `predictions.list`
(GET /v1/predictions, then each page's `next` URL as it is) with the SDK's `paginate` and prints
how many predictions it saw.

`--webhook`: the outcome comes by webhook. The client starts a receiver of its own (http.server on
`--webhook-listen`, by default a free loopback port; `--webhook-url` is the URL Replicate is given,
by default `http://HOST:PORT/replicate-webhook`, for a tunnel or a proxy in front of it) and creates
the prediction with `webhook=` and `webhook_events_filter=["completed"]`. Each delivery is verified
with the SDK's own `replicate.webhooks.validate(headers=..., body=..., secret=
WebhookSigningSecret(key=CALLBACK_SECRET), tolerance=300)` (Replicate's signing secret, `whsec_...`;
its API gives it at GET /v1/webhooks/default/secret, here it is read from CALLBACK_SECRET): one
that does not verify is answered 401 and ignored; one whose `webhook-id` was seen before is
answered 200 and ignored (Replicate delivers at least once); one of another prediction, or not
terminal, is answered 200 and ignored. Each delivery gets one line on stderr naming its webhook
id: `webhook msg_...: refused (...)`, `webhook msg_...: duplicate, ignored`, `... ignored`, or,
for the one acted on, `outcome by webhook msg_...: prediction ID STATUS`. The first terminal
prediction a verified webhook carries is the outcome (its body is the prediction, as
`predictions.get` returns it); one `predictions.get` confirms it, and while that still says
starting / processing (a webhook can come before the API's reads show its state) the client
polls every POLL_INTERVAL until they do. When no webhook has come for WEBHOOK_POLL_INTERVAL
seconds (default 60) it polls `predictions.get` once, as a fallback for a webhook that is lost or
late, and a terminal state there is the outcome (`outcome by polling`). It gives up at MAX_WAIT
as without `--webhook`.

What it expects of the API: predictions with `status` starting / processing / succeeded / failed
/ canceled, `output` a URL string once succeeded, and errors as problem details (`title`, `detail`,
`status`; the SDK's `ReplicateError`). A 429 on create is retried after Retry-After (or a backoff);
a 5xx or no answer on create means the outcome is unknown and it never creates twice. The SDK
itself never retries a POST; it retries GETs on 429 / 503 / 504 (up to 10 times, honouring
Retry-After), which this client cannot switch off.

Exit status: 0 succeeded and downloaded (or, with --list, listed); 1 the prediction failed or was
canceled (with --cancel: canceled, the expected outcome); 2 the creation was refused (problem
printed; also no API_KEY); 3 the creation's outcome is unknown; 4 the prediction is gone (404);
5 it took longer than MAX_WAIT; 6 a query (get, list) was refused or the API kept failing; 7 an
answer broke the contract (the SDK could not parse it, an unknown status, no output URL); 8 the
output could not be downloaded or was empty; 9 (--cancel) the cancel was refused or the prediction
was not canceled after it. With `--webhook`, also 2 when CALLBACK_SECRET is not set or the receiver
cannot listen.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import sys
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn

warnings.filterwarnings("ignore", category=DeprecationWarning)

import httpx
import replicate
from replicate.exceptions import ReplicateError
from replicate.helpers import FileOutput
from replicate.prediction import Prediction
from replicate.webhook import WebhookSigningSecret, WebhookValidationError

try:
    from pydantic.v1 import ValidationError
except ImportError:  # pydantic 1
    from pydantic import ValidationError  # type: ignore[assignment]

BASE_URL = os.environ.get("BASE_URL", "https://api.replicate.com").rstrip("/")
API_KEY = os.environ.get("API_KEY", "")
POLL_INTERVAL = float(os.environ.get("POLL_INTERVAL", "5"))
MAX_WAIT = float(os.environ.get("MAX_WAIT", "600"))
CALLBACK_SECRET = os.environ.get("CALLBACK_SECRET", "")
WEBHOOK_POLL_INTERVAL = float(os.environ.get("WEBHOOK_POLL_INTERVAL", "60"))
WEBHOOK_TOLERANCE = 300  # seconds between a webhook's timestamp and our clock
MAX_WEBHOOK_BODY = 1024 * 1024
TIMEOUT = 60.0
MAX_CREATE_TRIES = 4
MAX_POLL_ERRORS = 8
MAX_LIST_PAGES = 100

MODEL = ("lightricks", "ltx-2.5-fast")
DURATIONS = (2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 20)
RESOLUTIONS = ("720p", "1080p", "2k", "4k")
ASPECT_RATIOS = ("16:9", "9:16")
RUNNING = ("starting", "processing")
TERMINAL = ("succeeded", "failed", "canceled")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def stop(status: int, message: str) -> NoReturn:
    log(message)
    sys.exit(status)


def backoff(attempt: int, base: float) -> float:
    return max(base, 1.0) * (2 ** min(attempt, 5)) * (1 + random.random() / 2)


def describe(exc: ReplicateError) -> str:
    return f"HTTP {exc.status} {exc.title or '-'}: {exc.detail}"


def make_client() -> replicate.Client:
    if not API_KEY:
        stop(2, "API_KEY is not set")
    base_url = BASE_URL.removesuffix("/v1")
    return replicate.Client(api_token=API_KEY, base_url=base_url, timeout=httpx.Timeout(TIMEOUT, connect=10.0))


def create(client: replicate.Client, args: argparse.Namespace) -> Any:
    # The SDK never retries a POST (its RetryTransport retries GET, PUT, DELETE, ... only), so a
    # create cannot be sent twice behind our back. Only a 429 (nothing was created) is retried,
    # here, on purpose.
    model_input: dict[str, Any] = {
        "prompt": args.prompt,
        "duration": args.duration,
        "aspect_ratio": args.aspect_ratio,
        "resolution": args.resolution,
    }
    if args.image:
        model_input["image"] = args.image
    params: dict[str, Any] = {"wait": args.wait} if args.wait else {}
    if args.webhook_url:
        params["webhook"] = args.webhook_url
        params["webhook_events_filter"] = ["completed"]
    for attempt in range(1, MAX_CREATE_TRIES + 1):
        try:
            return client.models.predictions.create(model=MODEL, input=model_input, **params)
        except ReplicateError as exc:
            if exc.status == 429 and attempt < MAX_CREATE_TRIES:
                wait = backoff(attempt, 1.0)
                log(f"throttled ({exc.detail}); waiting {wait:.1f} s before trying again")
                time.sleep(wait)
                continue
            if exc.status is not None and exc.status >= 500:
                stop(3, f"creation outcome unknown ({describe(exc)}); not creating again")
            print(f"problem: {describe(exc)}", flush=True)
            stop(2, "creation refused")
        except ValidationError as exc:
            stop(7, f"the create answer broke the contract: {exc}")
        except ValueError as exc:
            stop(7, f"the create answer is not JSON: {exc}")
        except httpx.TransportError as exc:
            stop(3, f"creation outcome unknown (no answer: {type(exc).__name__}); not creating again")
    stop(2, "still throttled; giving up")


def get(client: replicate.Client, prediction_id: str) -> Any | None:
    """The prediction, or None when this poll failed in a way worth retrying; exits on the others."""
    try:
        return client.predictions.get(prediction_id)
    except ReplicateError as exc:
        if exc.status == 404:
            stop(4, f"prediction {prediction_id} is gone ({describe(exc)})")
        if exc.status == 429 or (exc.status or 0) >= 500:
            log(f"poll failed: {describe(exc)}; retrying")
            return None
        stop(6, f"the query was refused: {describe(exc)}")
    except ValidationError as exc:
        stop(7, f"the prediction answer broke the contract: {exc}")
    except ValueError as exc:
        stop(7, f"the prediction answer is not JSON: {exc}")
    except httpx.TransportError as exc:
        log(f"poll failed ({type(exc).__name__}); retrying")
        return None


def over(prediction: Any) -> bool:
    """True when the prediction succeeded, False while it runs; exits when it failed, was canceled
    or has a status this client does not know."""
    if prediction.status == "succeeded":
        return True
    if prediction.status == "failed":
        print(f"error: {prediction.error}", flush=True)
        stop(1, f"prediction {prediction.id} failed: {prediction.error}")
    if prediction.status == "canceled":
        stop(1, f"prediction {prediction.id} was canceled")
    if prediction.status not in RUNNING:
        stop(7, f"prediction {prediction.id} has an unknown status {prediction.status!r}")
    return False


def poll(client: replicate.Client, prediction_id: str) -> Any:
    deadline = time.monotonic() + MAX_WAIT
    errors = 0
    while time.monotonic() < deadline:
        wait = POLL_INTERVAL
        prediction = get(client, prediction_id)
        if prediction is None:
            errors += 1
            if errors > MAX_POLL_ERRORS:
                stop(6, "the API kept failing; giving up")
            wait = max(POLL_INTERVAL, backoff(errors, POLL_INTERVAL))
        else:
            errors = 0
            if over(prediction):
                return prediction
            log(prediction.status)
        time.sleep(min(wait, max(deadline - time.monotonic(), 0)))
    stop(5, f"prediction {prediction_id} did not finish within {MAX_WAIT:g} s; giving up")


class Receiver(ThreadingHTTPServer):
    """The webhook receiver: verifies each delivery with the SDK, drops those seen before (by
    webhook-id), and queues the predictions the verified ones carry."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], secret: str) -> None:
        super().__init__(address, WebhookHandler)
        self.secret = WebhookSigningSecret(key=secret)
        self.seen: set[str] = set()
        self.lock = threading.Lock()
        self.arrived: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()


class WebhookHandler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: Any) -> None:  # the access log is not wanted on stderr
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
        if not 0 < length <= MAX_WEBHOOK_BODY:
            self._answer(400 if length == 0 else 413, "a webhook has a JSON body")
            return
        body = self.rfile.read(length).decode("utf-8", "replace")
        webhook_id = self.headers.get("webhook-id", "?")
        try:
            replicate.webhooks.validate(
                headers=dict(self.headers.items()), body=body, secret=self.server.secret, tolerance=WEBHOOK_TOLERANCE
            )
        except WebhookValidationError as exc:
            log(f"webhook {webhook_id}: refused ({type(exc).__name__}: {exc})")
            self._answer(401, "the signature does not verify")
            return
        with self.server.lock:
            duplicate = webhook_id in self.server.seen
            self.server.seen.add(webhook_id)
        if duplicate:
            log(f"webhook {webhook_id}: duplicate, ignored")
            self._answer(200, "seen before")
            return
        try:
            data = json.loads(body)
        except ValueError:
            log(f"webhook {webhook_id}: refused (the body is not JSON)")
            self._answer(400, "the body is not JSON")
            return
        self._answer(200, "ok")
        self.server.arrived.put((webhook_id, data))


def start_receiver(args: argparse.Namespace) -> Receiver:
    if not CALLBACK_SECRET:
        stop(2, "--webhook needs CALLBACK_SECRET (the webhook signing secret, whsec_...) to verify deliveries")
    host, _, port = args.webhook_listen.rpartition(":")
    try:
        receiver = Receiver((host or "127.0.0.1", int(port or 0)), CALLBACK_SECRET)
    except (OSError, ValueError) as exc:
        stop(2, f"the webhook receiver cannot listen on {args.webhook_listen}: {exc}")
    threading.Thread(target=receiver.serve_forever, name="webhook-receiver", daemon=True).start()
    bound_host, bound_port = receiver.server_address[:2]
    args.webhook_url = args.webhook_url or f"http://{bound_host}:{bound_port}/replicate-webhook"
    log(f"webhook receiver listening on {bound_host}:{bound_port}; webhook URL {args.webhook_url}")
    return receiver


def await_webhook(client: replicate.Client, receiver: Receiver, prediction_id: str) -> Any:
    """The prediction once over: from the first verified webhook that carries it terminal, or from a
    fallback poll when no webhook came for WEBHOOK_POLL_INTERVAL seconds."""
    deadline = time.monotonic() + MAX_WAIT
    errors = 0
    while time.monotonic() < deadline:
        try:
            webhook_id, data = receiver.arrived.get(
                timeout=min(WEBHOOK_POLL_INTERVAL, max(deadline - time.monotonic(), 0))
            )
        except queue.Empty:
            prediction = get(client, prediction_id)  # the fallback: a webhook may be lost, or late
            if prediction is None:
                errors += 1
                if errors > MAX_POLL_ERRORS:
                    stop(6, "the API kept failing; giving up")
                continue
            errors = 0
            log(f"no webhook for {WEBHOOK_POLL_INTERVAL:g} s; polled: {prediction.status}")
            if prediction.status in TERMINAL:
                log("outcome by polling")
                over(prediction)
                return prediction
            continue
        if data.get("id") != prediction_id or data.get("status") not in TERMINAL:
            log(f"webhook {webhook_id}: {data.get('id')} {data.get('status')}, ignored")
            continue
        try:
            prediction = Prediction(**data)
        except ValidationError as exc:
            stop(7, f"webhook {webhook_id} carries no prediction: {exc}")
        prediction._client = client
        log(f"outcome by webhook {webhook_id}: prediction {prediction_id} {prediction.status}")
        over(prediction)
        # A webhook can come before the API's reads show its state (events outrun replicas): one
        # get confirms it, and while that still says running, polling waits for the state to follow.
        confirmed = get(client, prediction_id)
        if confirmed is not None and confirmed.status in RUNNING:
            log(f"the API still says {confirmed.status}; polling until it shows the webhook's state")
            time.sleep(POLL_INTERVAL)
            return poll(client, prediction_id)
        return prediction
    stop(5, f"prediction {prediction_id} did not finish within {MAX_WAIT:g} s; giving up")


def output_url(prediction: Any) -> str:
    output = prediction.output
    if isinstance(output, list) and output:
        output = output[0]
    if not isinstance(output, str) or not output:
        stop(7, f"prediction {prediction.id} succeeded without an output URL: {output!r}")
    return output


def download(client: replicate.Client, url: str) -> bytes:
    try:
        content = FileOutput(url, client).read()
    except httpx.HTTPError as exc:
        stop(8, f"could not download {url}: {type(exc).__name__}: {exc}")
    if not content:
        stop(8, f"{url} is empty")
    return content


def cancel(client: replicate.Client, prediction_id: str) -> NoReturn:
    try:
        canceled = client.predictions.cancel(prediction_id)
    except ReplicateError as exc:
        if exc.status == 404:
            stop(4, f"prediction {prediction_id} is gone ({describe(exc)})")
        stop(9, f"the cancel was refused: {describe(exc)}")
    except ValidationError as exc:
        stop(7, f"the cancel answer broke the contract: {exc}")
    except httpx.TransportError as exc:
        stop(9, f"the cancel got no answer ({type(exc).__name__})")
    log(f"cancel answered {canceled.status}")
    again = get(client, prediction_id)
    status = again.status if again is not None else canceled.status
    if status == "canceled":
        print(f"canceled: {prediction_id}", flush=True)
        stop(1, f"prediction {prediction_id} is canceled, as asked")
    stop(9, f"prediction {prediction_id} is {status} after the cancel")


def list_predictions(client: replicate.Client) -> NoReturn:
    seen = pages = 0
    try:
        for page in replicate.paginate(client.predictions.list):
            pages += 1
            seen += len(page.results)
            if pages >= MAX_LIST_PAGES:
                log(f"stopping after {pages} pages")
                break
    except ReplicateError as exc:
        stop(6, f"the list was refused: {describe(exc)}")
    except ValidationError as exc:
        stop(7, f"a list answer broke the contract: {exc}")
    except (ValueError, KeyError) as exc:
        stop(7, f"a list answer is not a page of predictions: {type(exc).__name__}: {exc}")
    except httpx.TransportError as exc:
        stop(6, f"the list got no answer ({type(exc).__name__})")
    print(f"pages: {pages}")
    print(f"listed: {seen}")
    sys.exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Run lightricks/ltx-2.5-fast once with the replicate SDK and wait for it."
    )
    parser.add_argument(
        "--prompt", default="A lighthouse on a cliff at dusk, waves crashing, the beam sweeping the sea"
    )
    parser.add_argument("--duration", type=int, choices=DURATIONS, default=6, help="seconds (default 6)")
    parser.add_argument("--aspect-ratio", "--ratio", dest="aspect_ratio", choices=ASPECT_RATIOS, default="16:9")
    parser.add_argument("--resolution", choices=RESOLUTIONS, default="1080p")
    parser.add_argument("--image", help="first frame (image-to-video): an HTTP(S) or data URL")
    parser.add_argument("--wait", type=int, choices=range(1, 61), metavar="1..60", help="send Prefer: wait=N")
    parser.add_argument("--output", help="write the MP4 here")
    parser.add_argument("--cancel", action="store_true", help="cancel the prediction right after creating it")
    parser.add_argument("--list", action="store_true", help="list the account's predictions and exit")
    parser.add_argument(
        "--webhook", action="store_true", help="take the outcome from a webhook (polling as a fallback)"
    )
    parser.add_argument(
        "--webhook-listen", default="127.0.0.1:0", metavar="HOST:PORT", help="where the receiver listens"
    )
    parser.add_argument("--webhook-url", help="the webhook URL given to the API (default: the receiver's own)")
    args = parser.parse_args()
    client = make_client()
    if args.list:
        list_predictions(client)
    receiver = start_receiver(args) if args.webhook else None
    if receiver is None:
        args.webhook_url = None
    prediction = create(client, args)
    log(f"created {prediction.id} ({prediction.status})")
    if args.cancel:
        cancel(client, prediction.id)
    if receiver is not None:
        if prediction.status not in TERMINAL:
            prediction = await_webhook(client, receiver, prediction.id)
        over(prediction)
    elif prediction.status != "succeeded":  # with --wait it may have finished already
        prediction = poll(client, prediction.id)
    echoed = prediction.input or {}
    for name, asked in (
        ("duration", args.duration),
        ("aspect_ratio", args.aspect_ratio),
        ("resolution", args.resolution),
    ):
        print(f"{name}: {echoed.get(name, '(not echoed)')}")
        if echoed.get(name) != asked:
            log(f"asked for {name} {asked!r}, the prediction's input says {echoed.get(name)!r}")
    url = output_url(prediction)
    content = download(client, url)
    if args.output:
        with open(args.output, "wb") as out:
            out.write(content)
    print(f"video: {len(content)} bytes")
    print(url)


if __name__ == "__main__":
    main()
