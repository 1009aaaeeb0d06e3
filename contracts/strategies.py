"""Hypothesis strategies for server behaviours the contract and the documented reality allow.

Each strategy builds data in the scenario format (`mockserver/scenario.schema.json`), so what it
generates is a scenario the fake can play and can be written out as YAML. Needs the `test` extra.

    timelines()     pending -> processing (progress rising irregularly) -> completed | failed,
                    or never finishing, or the completed-before-results quirk
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# The failure codes a task can end with: the provider's own and the upstream platform's.
TASK_FAILURE_CODES = (
    "generation_failed",
    "content_policy_violation",
    "invalid_parameters",
    "request_cancelled",
    "generation_timeout",
    "resource_exhausted",
    "quota_exceeded",
    "service_unavailable",
    "service_error",
    "generation_failed_no_content",
    "resource_not_found",
    "unknown_error",
)

_seconds = st.integers(min_value=0, max_value=600).map(lambda tenths: tenths / 10)


@st.composite
def timelines(draw: st.DrawFn, max_steps: int = 8) -> list[dict[str, Any]]:
    """A valid timeline: status never moves backward, progress never falls, terminal is final."""
    steps: list[dict[str, Any]] = [{"at": 0, "status": "pending"}]
    at, progress = 0.0, 0
    if draw(st.booleans()):
        at += draw(_seconds)
        steps.append({"at": at, "status": "pending"})
    for _ in range(draw(st.integers(0, max_steps))):
        at += draw(_seconds)
        progress = draw(st.integers(progress, 100))
        step = {"at": at, "status": "processing", "progress": progress}
        if draw(st.booleans()):
            step["ramp"] = draw(st.booleans())
        steps.append(step)
    ending = draw(st.sampled_from(["completed", "failed", "never", "quirk"]))
    at += draw(_seconds)
    if ending == "completed":
        steps.append({"at": at, "status": "completed"})
    elif ending == "failed":
        code = draw(st.sampled_from(TASK_FAILURE_CODES))
        steps.append({"at": at, "status": "failed", "error": {"code": code, "message": f"Failed: {code}."}})
    elif ending == "quirk":
        held = draw(st.integers(1, 3))
        steps.append({"at": at, "status": "completed", "progress": progress, "results": None, "polls": held})
        steps.append({"at": at + draw(_seconds), "status": "completed", "progress": 100})
    return steps
