"""A small client of examples/contracts/replicate.yaml that takes its outcome from a webhook, with
one deliberate way of handling callbacks, chosen by its first argument, for testing
`mockserver fuzz-client`'s `callbacks` property. Reads MOCK_BASE_URL, MOCK_API_KEY and
MOCK_CALLBACK_SECRET; gives up after MOCK_MAX_WAIT seconds (default 3).

    careful       verifies each delivery (standardwebhooks), handles a webhook id once, polls
                  every 0.3 s as a fallback: keeps the property
    fail-first    careful, but its receiver answers 500 to the first delivery (a failing
                  receiver: the fake retries, and the client still gets its outcome)
    twice         handles every delivery it gets, duplicates included: downloads the video again
    no-fallback   waits for the webhook only: a lost or late one leaves it waiting
    accept-any    does not verify signatures: takes a callback signed with another secret
"""

import json
import os
import queue
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from standardwebhooks import Webhook, WebhookVerificationError

MODE = sys.argv[1]
MAX_WAIT = float(os.environ.get("MOCK_MAX_WAIT", "3"))
webhook = Webhook(os.environ["MOCK_CALLBACK_SECRET"])
arrived: queue.Queue = queue.Queue()
seen: set[str] = set()
answered = [0]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        webhook_id = self.headers.get("webhook-id", "")
        answered[0] += 1
        status = 200
        if MODE == "fail-first" and answered[0] == 1:
            status = 500
        elif MODE != "accept-any":
            try:
                webhook.verify(body, {k.lower(): v for k, v in self.headers.items()})
            except WebhookVerificationError:
                status = 401
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if status != 200:
            print(f"webhook {webhook_id}: answered {status}", flush=True)
        elif webhook_id in seen and MODE != "twice":
            print(f"webhook {webhook_id}: duplicate, ignored", flush=True)
        else:
            seen.add(webhook_id)
            arrived.put((webhook_id, json.loads(body)))


receiver = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=receiver.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
client = httpx.Client(
    base_url=os.environ["MOCK_BASE_URL"], headers={"Authorization": f"Bearer {os.environ['MOCK_API_KEY']}"}
)
body = {"input": {"prompt": "a test"}, "webhook": url, "webhook_events_filter": ["completed"]}
prediction = client.post("/v1/models/lightricks/ltx-2.5-fast/predictions", json=body).json()
deadline = time.monotonic() + MAX_WAIT


def handle(webhook_id: str, task: dict) -> None:
    print(f"processed {webhook_id}: {task['status']}", flush=True)
    if task["status"] == "succeeded":
        client.get(task["output"])  # the work a callback triggers: download the video


outcome = None
while outcome is None and time.monotonic() < deadline:
    try:
        webhook_id, task = arrived.get(timeout=0.3)
    except queue.Empty:
        if MODE != "no-fallback":
            polled = client.get(f"/v1/predictions/{prediction['id']}").json()
            if polled["status"] in ("succeeded", "failed", "canceled"):
                outcome = polled
                client.get(polled["output"]) if polled["status"] == "succeeded" else None
        continue
    if task["status"] in ("succeeded", "failed", "canceled"):
        handle(webhook_id, task)
        outcome = task
if MODE == "twice":  # handles whatever else came meanwhile, duplicates too
    time.sleep(0.3)
    while not arrived.empty():
        handle(*arrived.get())
sys.exit(5 if outcome is None else 0 if outcome["status"] == "succeeded" else 1)
