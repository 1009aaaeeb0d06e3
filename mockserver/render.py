"""The JSON bodies of the provider API, built from a task and its current state.

The constants of those bodies (`object`, `type`) are read from the contract once, when the
`Renderer` is built, so the fake never restates them.
"""

from __future__ import annotations

import json
from typing import Any

from contracts import Contract
from mockserver.lifecycle import State
from mockserver.media import Media
from mockserver.scenarios import UNSET
from mockserver.state.task import Task

_quote = json.encoder.encode_basestring  # the JSON string of a str, as the json module writes it


class Renderer:
    def __init__(self, contract: Contract, media: Media) -> None:
        self.media = media
        self.object = contract.schema_const("Task", "object")
        self.type = contract.schema_const("Task", "type")
        # The submit answer has one shape: fill in a template rather than encode a dict each time.
        self._created = (
            '{"created":%d,"id":%s,"model":%s,"object":' + _quote(self.object) + ',"progress":0,"status":"pending",'
            '"task_info":{"can_cancel":true,"estimated_time":%d},"type":' + _quote(self.type) + "}"
        )

    def created_json(self, task: Task, estimated_time: int) -> bytes:
        """`created()`, already encoded: the same JSON, made faster on the submit path."""
        return (self._created % (task.created, _quote(task.id), _quote(task.model), estimated_time)).encode("utf-8")

    def created(self, task: Task, estimated_time: int) -> dict[str, Any]:
        """The answer to a successful submit, as the provider's page shows it."""
        return {
            "created": task.created,
            "id": task.id,
            "model": task.model,
            "object": self.object,
            "progress": 0,
            "status": "pending",
            "task_info": {"can_cancel": True, "estimated_time": estimated_time},
            "type": self.type,
        }

    def results(self, task: Task, state: State, base_url: str) -> list[dict[str, Any]] | None:
        if state.status != "completed" or state.results is None:
            return None
        if state.results is not UNSET:
            return list(state.results)
        clip = self.media.clip_for(task.aspect_ratio, task.generate_audio)
        return [
            {
                "url": f"{base_url}/files/{task.id}.mp4",
                "content_type": "video/mp4",
                "width": clip.width,
                "height": clip.height,
            }
        ]

    def task(self, task: Task, state: State, base_url: str) -> dict[str, Any]:
        """`GET /v1/tasks/{task_id}`: the task as its scenario says it is now."""
        return {
            "id": task.id,
            "object": self.object,
            "type": self.type,
            "model": task.model,
            "status": state.status,
            "progress": state.progress,
            "created": task.created,
            "results": self.results(task, state, base_url),
            "error": dict(state.error) if state.error is not None and state.status in ("failed", "cancelled") else None,
            "usage": {"credits_reserved": task.scenario.credits_reserved, "user_group": "default"},
        }
