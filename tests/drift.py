"""Deployments that are wrong in the ways real APIs drift: the fake, with its answers rewritten."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# (method, path, status, body) -> (status, body)
Rewrite = Callable[[str, str, int, Any], tuple[int, Any]]


class RewriteAnswers:
    """ASGI middleware that rewrites JSON answers of the provider API."""

    def __init__(self, app: ASGIApp, rewrite: Rewrite) -> None:
        self.app, self.rewrite = app, rewrite
        self.state = getattr(app, "state", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    status, body = self.rewrite(
                        scope["method"], scope["path"], start["status"], json.loads(b"".join(chunks))
                    )
                    raw = json.dumps(body).encode()
                    headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                    headers.append((b"content-length", str(len(raw)).encode()))
                    await send({"type": "http.response.start", "status": status, "headers": headers})
                    await send({"type": "http.response.body", "body": raw})

        await self.app(scope, receive, keep)


def _task_bodies(change: Callable[[dict[str, Any]], None]) -> Rewrite:
    def rewrite(method: str, path: str, status: int, body: Any) -> tuple[int, Any]:
        if status == 200 and isinstance(body, dict) and "id" in body:
            change(body)
        return status, body

    return rewrite


def renamed_status(body: dict[str, Any]) -> None:
    if body.get("status") == "processing":
        body["status"] = "running"


def missing_object(body: dict[str, Any]) -> None:
    body.pop("object", None)


def results_as_object(body: dict[str, Any]) -> None:
    if body.get("results"):
        body["results"] = {"video_url": body["results"][0]["url"]}


def _error_500_for_malformed(method: str, path: str, status: int, body: Any) -> tuple[int, Any]:
    if method == "POST" and status == 400:
        return 500, {"error": {"message": "Internal server error", "type": "server_error"}}
    return status, body


def _error_shape(method: str, path: str, status: int, body: Any) -> tuple[int, Any]:
    if status >= 400 and isinstance(body, dict) and "error" in body:
        return status, {"detail": body["error"]["message"]}
    return status, body


DRIFTS: dict[str, Rewrite] = {
    "renamed-status": _task_bodies(renamed_status),
    "missing-object": _task_bodies(missing_object),
    "results-shape": _task_bodies(results_as_object),
    "500-for-malformed-body": _error_500_for_malformed,
    "error-shape": _error_shape,
}
