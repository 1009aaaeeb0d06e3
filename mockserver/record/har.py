"""`mockserver record --from-har FILE.har --out DIR`: a recording from a HAR 1.2 file, as browsers'
developer tools, proxies and Playwright export them.

Submissions are the entries for the contract's submit operation; polls are the entries for its
query operation, and cancels and deletes those of its cancel and delete operations, each paired
with its submission through the task id in the submit answer (`Recording.exchange` recognises
them by method and served path). Other traffic (downloads, lists, the page itself) is skipped and
counted. Times come from each entry's `startedDateTime` and `time`. A file
that is not JSON, not HAR, cut short, or holds no submission is refused with a message saying
which, and nothing is written.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mockserver.record.model import Answer, Recording, kept_headers

HAR_LIMIT = 512 * 1024 * 1024


class HarError(Exception):
    """The HAR file cannot be used; the message says why (and where)."""


def _time(entry: dict[str, Any], index: int) -> float:
    started = entry.get("startedDateTime")
    if not isinstance(started, str):
        raise HarError(f"log.entries[{index}].startedDateTime is missing")
    try:
        return datetime.fromisoformat(started).timestamp()  # Python 3.11 reads a trailing Z
    except ValueError:
        raise HarError(f"log.entries[{index}].startedDateTime {started[:40]!r} is not an ISO 8601 date-time") from None


def _body(content: Any) -> tuple[Any, str]:
    if not isinstance(content, dict) or not isinstance(content.get("text"), str):
        return None, "empty"
    text = content["text"]
    if content.get("encoding") == "base64":
        try:
            text = base64.b64decode(text).decode("utf-8", "replace")
        except ValueError:
            return None, "malformed"
    if not text.strip():
        return None, "empty"
    try:
        return json.loads(text), "json"
    except ValueError:
        return None, "malformed"


def _headers(items: Any) -> dict[str, str]:
    if not isinstance(items, list):
        return {}
    return {str(h.get("name", "")): str(h.get("value", "")) for h in items if isinstance(h, dict)}


def read_har(path: Path, recording: Recording) -> dict[str, int]:
    """Fill `recording` from the HAR file; return what was skipped, by reason."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise HarError(f"cannot read it: {exc.strerror or exc}") from None
    if size > HAR_LIMIT:
        raise HarError(f"it is {size:,} bytes; the limit is {HAR_LIMIT:,}")
    raw = path.read_bytes()
    try:
        har = json.loads(raw)
    except UnicodeDecodeError:
        raise HarError("it is not JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        cut = exc.pos >= len(raw.rstrip()) - 1
        why = "it ends before its JSON does: the file is cut short" if cut else f"it is not JSON: {exc.msg}"
        raise HarError(f"{why} (line {exc.lineno}, column {exc.colno})") from None
    log = har.get("log") if isinstance(har, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(entries, list):
        raise HarError("it is JSON but not HAR: there is no log.entries list")
    submit = recording.submit_op
    skipped: dict[str, int] = {}
    timed = []
    for index, entry in enumerate(entries):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("request"), dict)
            or not isinstance(entry.get("response"), dict)
        ):
            raise HarError(f"log.entries[{index}] has no request or response")
        timed.append((_time(entry, index), index, entry))
    timed.sort(key=lambda item: (item[0], item[1]))
    origin = min((t for t, _, _ in timed), default=0.0)
    for started, index, entry in timed:
        request, response = entry["request"], entry["response"]
        method = str(request.get("method", "")).upper()
        route = urlsplit(str(request.get("url", ""))).path
        duration = entry.get("time")
        duration = float(duration) / 1000 if isinstance(duration, (int, float)) and duration >= 0 else 0.0
        status = response.get("status")
        status = int(status) if isinstance(status, int) else 0
        body, kind = _body(response.get("content"))
        sent = started - origin
        answer = Answer(
            sent,
            sent + duration,
            max(0, status),
            body,
            kind if status > 0 else "none",
            kept_headers(_headers(response.get("headers"))),
        )
        exchange = recording.exchange(method, route)
        if exchange is None:
            reason = "other traffic" if method not in ("OPTIONS",) else "CORS preflight"
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        kind, task_id = exchange
        if kind == "submit":
            posted = request.get("postData")
            text = posted.get("text") if isinstance(posted, dict) else None
            mime = posted.get("mimeType") if isinstance(posted, dict) else None
            request_body = (
                recording.request_body(str(mime) if mime else None, text.encode()) if isinstance(text, str) else None
            )
            params = posted.get("params") if isinstance(posted, dict) else None
            if request_body is None and isinstance(params, list):  # a form, as its fields only
                request_body = {str(p.get("name")): p.get("value") for p in params if isinstance(p, dict)}
            recording.submission(request_body, answer, route)
            continue
        if kind == "query":
            found = recording.poll(task_id or "", answer)
        else:
            found = recording.action(kind, task_id or "", answer)
        if found is None:
            reason = f"{'polls' if kind == 'query' else kind + 's'} of tasks not submitted in this file"
            skipped[reason] = skipped.get(reason, 0) + 1
    if not recording.submissions:
        raise HarError(
            f"it holds no submission ({submit.method} {submit.route or submit.path}) among its {len(entries)} entries: "
            "nothing to record"
        )
    return skipped
