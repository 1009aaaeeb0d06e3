"""The JSON bodies of the provider API, built from a task and its current state."""

from __future__ import annotations

from typing import Any

from mockserver.lifecycle import State
from mockserver.media import Media
from mockserver.scenarios import UNSET
from mockserver.store import Task

OBJECT = "video.generation.task"


def task_created(task: Task) -> dict[str, Any]:
    """The answer to a successful submit, as the provider's page shows it."""
    return {
        "created": task.created,
        "id": task.id,
        "model": task.model,
        "object": OBJECT,
        "progress": 0,
        "status": "pending",
        "task_info": {"can_cancel": True, "estimated_time": task.scenario.estimated_time},
        "type": "video",
    }


def results(task: Task, state: State, base_url: str, media: Media) -> list[dict[str, Any]] | None:
    if state.status != "completed" or state.results is None:
        return None
    if state.results is not UNSET:
        return list(state.results)
    clip = media.clip_for(task.aspect_ratio, task.generate_audio)
    return [
        {
            "url": f"{base_url}/files/{task.id}.mp4",
            "content_type": "video/mp4",
            "width": clip.width,
            "height": clip.height,
        }
    ]


def task_body(task: Task, state: State, base_url: str, media: Media) -> dict[str, Any]:
    """`GET /v1/tasks/{task_id}`: the task as its scenario says it is now."""
    return {
        "id": task.id,
        "object": OBJECT,
        "type": "video",
        "model": task.model,
        "status": state.status,
        "progress": state.progress,
        "created": task.created,
        "results": results(task, state, base_url, media),
        "error": dict(state.error) if state.status == "failed" and state.error else None,
        "usage": {"credits_reserved": task.scenario.credits_reserved, "user_group": "default"},
    }
