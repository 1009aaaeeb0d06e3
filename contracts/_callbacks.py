"""What a contract says about callbacks (webhooks): whether a client can ask for them, when they
are sent, how long a receiver has, the retries, and what their body is.

A contract documents callbacks with a request property the client gives its URL in
(`callback_url`, `webhook_url`, `callBackUrl`, `webhook`... by name, or `x-mockserver-role:
callback_url`), optionally a property that filters the events (Replicate's
`webhook_events_filter`: `start`, `output`, `logs`, `completed`), and optionally an OpenAPI
`callbacks` object on the submit operation (or a 3.1 top-level `webhooks` entry) whose request
body is what a delivery carries; without one, a delivery carries the task as a poll would see
it at that moment. `x-mockserver-callbacks` on the submit operation sets the rest:

    x-mockserver-callbacks:
      events: [succeeded, failed, cancelled]   # phases, or "terminal" (the default) or "all"
      timeout: 10                              # real seconds a receiver has to answer
      retries: [1, 2, 4]                       # scenario seconds before each retry
      signing: standard-webhooks               # or none; absent: signed when the server has a secret

Every problem is a `ContractError` with the JSON pointer (raised through `error`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from contracts._document import json_content
from contracts._shape import Node, Resolver, escape
from contracts._vocabulary import PHASES, TERMINAL_PHASES

if TYPE_CHECKING:
    from contracts._contract import Contract, Operation

TERMINAL_EVENTS = frozenset(TERMINAL_PHASES)
DEFAULT_RETRIES = (1.0, 2.0, 4.0)
DEFAULT_TIMEOUT = 10.0
# What a request's event filter words mean (Replicate's webhook_events_filter and the like).
FILTER_WORDS = {
    "start": frozenset({"running"}), "started": frozenset({"running"}), "running": frozenset({"running"}),
    "processing": frozenset({"running"}), "output": frozenset({"succeeded"}), "succeeded": frozenset({"succeeded"}),
    "completed": TERMINAL_EVENTS, "complete": TERMINAL_EVENTS, "done": TERMINAL_EVENTS, "terminal": TERMINAL_EVENTS,
    "failed": frozenset({"failed"}), "cancelled": frozenset({"cancelled"}), "canceled": frozenset({"cancelled"}),
}  # fmt: skip


@dataclass
class Callbacks:
    """How the fake delivers a task's callbacks under one contract."""

    url: tuple[str, ...]  # where the request gives the URL (a role's path in the body)
    events: frozenset[str] = TERMINAL_EVENTS  # the phases a delivery is made for
    timeout: float = DEFAULT_TIMEOUT  # real seconds
    retries: tuple[float, ...] = DEFAULT_RETRIES  # scenario seconds before each retry
    filter: tuple[str, ...] | None = None  # where the request gives its event filter, if it can
    body: Node | None = None  # the documented delivery body (None: the task, as a poll sees it)
    media: str = "application/json"
    event_words: dict[str, str] | None = None  # phase -> the documented body's event type (`video.completed`)
    signing: str | None = None  # "standard-webhooks" (a secret is required), "none", or None: as the server says


EVENT_NAMES = ("type", "event", "event_type", "eventType")
# Words that tell which phase an event type (an enum value of the body's `type`) is for.
EVENT_HINTS = {
    "queued": ("queued", "created", "submitted", "pending"),
    "running": ("running", "processing", "started", "start", "in_progress"),
    "succeeded": ("completed", "succeeded", "success", "complete", "done", "finished", "output"),
    "failed": ("failed", "failure", "error", "errored"),
    "cancelled": ("cancelled", "canceled", "cancel", "aborted"),
}


def mark_event(body: Node) -> dict[str, str] | None:
    """In a documented delivery body, the property that names the event (`type: video.completed`)
    takes the word of the delivery's phase, an envelope's `data` object (one with an `id`) is the
    task as a poll renders it, and the envelope's own `id` beside it takes the webhook id. Returns the phase -> word map, if there is one."""
    data = body.find("data")
    top_id = body.find("id")
    if data is not None and data.kind == "object" and data.find("id") is not None:
        data.source = "task"  # the envelope's task: as a poll renders it
        if top_id is not None:
            top_id.source = "webhook_id"
    for name in EVENT_NAMES:
        node = body.find(name)
        if node is None:
            continue
        choices = [node.const] if isinstance(node.const, str) else [w for w in node.enum or () if isinstance(w, str)]
        if not choices:
            continue
        words: dict[str, str] = {}
        for phase in PHASES:
            hints = EVENT_HINTS.get(phase, (phase,))
            words[phase] = next(
                (w for w in choices if any(h in re.split(r"[^a-z_]+", w.lower()) for h in hints)), choices[0]
            )
        node.source = "event"
        return words
    return None


def read_callbacks(
    contract: Contract, submit: Operation, resolver: Resolver, error: Callable[[str, str], Exception]
) -> Callbacks | None:
    """The callbacks a contract documents, or None (a request's callback URL is then ignored)."""
    bodies = [
        submit.body,
        *(shape for _, shape in submit.branches.values()),
        *(shape for _, shape in submit.forms.values()),
    ]
    body = next((body for body in bodies if body is not None and "callback_url" in body.roles), None)
    if body is None:
        return None
    found = Callbacks(body.roles["callback_url"], filter=body.roles.get("callback_events"))
    spec = contract.spec_of(submit)
    pointer = f"/paths/{escape(submit.path)}/{submit.method.lower()}"
    options = spec.get("x-mockserver-callbacks")
    if options is not None:
        _options(found, options, f"{pointer}/x-mockserver-callbacks", error)
    found.body, found.media = _documented_body(contract, spec, pointer, resolver)
    return found


def _options(found: Callbacks, options: Any, pointer: str, error: Callable[[str, str], Exception]) -> None:
    if not isinstance(options, dict):
        raise error(pointer, "x-mockserver-callbacks must be a mapping (events, timeout, retries, signing)")
    unknown = sorted(set(options) - {"events", "timeout", "retries", "signing"})
    if unknown:
        raise error(
            pointer,
            f"x-mockserver-callbacks has {', '.join(map(repr, unknown))}; it takes events, timeout, retries and signing",
        )
    signing = options.get("signing")
    if signing not in (None, "standard-webhooks", "none"):
        raise error(f"{pointer}/signing", f"signing is {signing!r}: standard-webhooks or none")
    found.signing = signing
    events = options.get("events", "terminal")
    if events == "terminal":
        found.events = TERMINAL_EVENTS
    elif events == "all":
        found.events = frozenset(PHASES)
    elif isinstance(events, list) and events and all(event in PHASES for event in events):
        found.events = frozenset(events)
    else:
        raise error(
            f"{pointer}/events", f"events is {events!r}: 'terminal', 'all', or a list of phases ({', '.join(PHASES)})"
        )
    timeout = options.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 300:
        raise error(
            f"{pointer}/timeout", f"timeout is {timeout!r}: real seconds a receiver has, more than 0, at most 300"
        )
    found.timeout = float(timeout)
    retries = options.get("retries", list(DEFAULT_RETRIES))
    if (
        not isinstance(retries, list)
        or len(retries) > 32
        or not all(
            isinstance(wait, int | float) and not isinstance(wait, bool) and 0 <= wait <= 7 * 86400 for wait in retries
        )
    ):
        raise error(
            f"{pointer}/retries",
            f"retries is {retries!r}: a list (at most 32) of scenario seconds to wait before each retry, each 0 to a week",
        )
    found.retries = tuple(float(wait) for wait in retries)


def _documented_body(
    contract: Contract, spec: dict[str, Any], pointer: str, resolver: Resolver
) -> tuple[Node | None, str]:
    """The schema a delivery's body has: the submit operation's first callback with a JSON request
    body, else the document's first webhook with one; None when neither says (the task)."""
    places: list[tuple[Any, str]] = []
    callbacks = spec.get("callbacks")
    if isinstance(callbacks, dict):
        for name, callback in callbacks.items():
            callback, where = contract.follow(callback, f"{pointer}/callbacks/{escape(name)}")
            if isinstance(callback, dict):
                places += [(item, f"{where}/{escape(expression)}") for expression, item in callback.items()]
    webhooks = contract.document.get("webhooks")
    if isinstance(webhooks, dict):
        places += [(item, f"/webhooks/{escape(name)}") for name, item in webhooks.items()]
    for item, where in places:
        item, where = contract.follow(item, where)
        operation = item.get("post") if isinstance(item, dict) else None
        if not isinstance(operation, dict) or not operation.get("requestBody"):
            continue
        request, base = contract.follow(operation["requestBody"], f"{where}/post/requestBody")
        key, media = json_content(request.get("content") if isinstance(request, dict) else None)
        schema = media.get("schema")
        if schema is None:
            continue
        node = resolver.node(schema, f"{base}/content/{escape(key)}/schema")
        return node, key.split(";")[0].strip()
    return None, "application/json"
