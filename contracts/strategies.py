"""Hypothesis strategies for server behaviours the contract and the documented reality allow.

Each strategy builds data in the scenario format (`mockserver/scenario.schema.json`), so whatever
it generates is a scenario the fake can play and can be written out as YAML. Hypothesis shrinks
towards the simplest behaviour: submit accepted, pending then completed, nothing going wrong.

    timelines()     pending -> processing (progress rising irregularly) -> completed | failed,
                    or never finishing, or the completed-before-results quirk
    submits()       how submit is answered: accepted; refused for good (401, 402, 422 with each
                    documented code, 500, 503); refused a few times then accepted (429 with or
                    without Retry-After, 503); an ambiguous 5xx or dropped connection that
                    created the task anyway
    poll_rules()    transient errors and broken answers on some polls
    behaviours()    a whole scenario: all of the above, plus quirks (a status outside the enum,
                    a task that disappears) and slow answers

Scenario times are in scenario seconds; Retry-After and latency are real seconds.
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
SUBMIT_422_CODES = ("unsupported_advanced_options", "model_not_found", "no_compatible_channel", "invalid_file_type")
FAULTS = ("reset", "empty", "malformed", "truncated")


def _tenths(low: int, high: int) -> st.SearchStrategy[float]:
    return st.integers(min_value=low, max_value=high).map(lambda tenths: tenths / 10)


@st.composite
def timelines(draw: st.DrawFn, max_steps: int = 8, max_step_seconds: float = 60.0) -> list[dict[str, Any]]:
    """A valid timeline: status never moves backward, progress never falls, terminal is final."""
    seconds = _tenths(0, int(max_step_seconds * 10))
    steps: list[dict[str, Any]] = [{"at": 0, "status": "pending"}]
    at, progress = 0.0, 0
    if draw(st.booleans()):
        at += draw(seconds)
        steps.append({"at": at, "status": "pending"})
    for _ in range(draw(st.integers(0, max_steps))):
        at += draw(seconds)
        progress = draw(st.integers(progress, 100))
        step: dict[str, Any] = {"at": at, "status": "processing", "progress": progress}
        if draw(st.booleans()):
            step["ramp"] = draw(st.booleans())
        steps.append(step)
    ending = draw(st.sampled_from(["completed", "failed", "quirk", "never"]))
    at += draw(seconds)
    if ending == "completed":
        steps.append({"at": at, "status": "completed"})
    elif ending == "failed":
        code = draw(st.sampled_from(TASK_FAILURE_CODES))
        steps.append({"at": at, "status": "failed", "error": {"code": code, "message": f"Failed: {code}."}})
    elif ending == "quirk":
        held = draw(st.integers(1, 3))
        steps.append({"at": at, "status": "completed", "progress": progress, "results": None, "polls": held})
        steps.append({"at": at + draw(seconds), "status": "completed", "progress": 100})
    return steps


def _refusal(status: int, code: str | None = None, retry_after: int | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"status": status, "error": {"message": f"Generated HTTP {status}."}}
    if code is not None:
        answer["error"]["code"] = code
    if retry_after is not None:
        answer["headers"] = {"Retry-After": retry_after}
    return answer


@st.composite
def submits(draw: st.DrawFn, retry_after_max: int = 2, faults: bool = True) -> list[dict[str, Any]] | None:
    """How submit is answered (None: accepted at once, as half of all submissions are here)."""
    kind = draw(st.sampled_from(["accepted", "accepted", "accepted", "refused", "transient", "ambiguous"]))
    if kind == "accepted":
        return None
    if kind == "refused":
        status = draw(st.sampled_from([401, 402, 422, 500, 503]))
        code = draw(st.sampled_from(SUBMIT_422_CODES)) if status == 422 else None
        return [_refusal(status, code)]
    if kind == "transient":
        status = draw(st.sampled_from([429, 503]))
        retry_after = draw(st.none() | st.integers(1, retry_after_max)) if status == 429 else None
        return [{"times": draw(st.integers(1, 2)), **_refusal(status, retry_after=retry_after)}, {}]
    ambiguous = (
        {"fault": draw(st.sampled_from(["reset", "empty"]))} if faults and draw(st.booleans()) else _refusal(draw(st.sampled_from([500, 503])))
    )
    return [{"times": 1, "creates_task": True, **ambiguous}, {}]


@st.composite
def poll_rules(draw: st.DrawFn, retry_after_max: int = 2, faults: bool = True) -> list[dict[str, Any]]:
    """Transient errors (500, 503, 429 with or without Retry-After) and broken answers on some polls."""
    rules = []
    for poll in sorted(draw(st.sets(st.integers(1, 8), max_size=3))):
        kinds = ["error", "fault"] if faults else ["error"]
        if draw(st.sampled_from(kinds)) == "fault":
            rules.append({"on": [poll], "fault": draw(st.sampled_from(FAULTS))})
            continue
        status = draw(st.sampled_from([500, 503, 429]))
        retry_after = draw(st.none() | st.integers(1, retry_after_max)) if status == 429 else None
        rules.append({"on": [poll], **_refusal(status, retry_after=retry_after)})
    return rules


@st.composite
def behaviours(
    draw: st.DrawFn,
    *,
    name: str = "generated",
    max_steps: int = 6,
    max_step_seconds: float = 20.0,
    retry_after_max: int = 2,
    faults: bool = True,
    quirks: bool = True,
    latency: bool = True,
) -> dict[str, Any]:
    """A whole server behaviour, as a scenario the fake can play."""
    scenario: dict[str, Any] = {"name": name}
    submit = draw(submits(retry_after_max=retry_after_max, faults=faults))
    if submit is not None:
        scenario["submit"] = submit
    polls = draw(poll_rules(retry_after_max=retry_after_max, faults=faults))
    if polls:
        scenario["polls"] = polls
    timeline = draw(timelines(max_steps=max_steps, max_step_seconds=max_step_seconds))
    if quirks and draw(st.booleans()):
        quirk = draw(st.sampled_from(["cancelled", "disappears"]))
        if quirk == "cancelled" and timeline[-1]["status"] in ("pending", "processing"):
            at = timeline[-1]["at"] + draw(_tenths(0, int(max_step_seconds * 10)))
            timeline.append({"at": at, "status": "cancelled", "error": {"code": "request_cancelled", "message": "Cancelled."}})
            scenario["off_contract"] = "generated: status 'cancelled' is outside the documented enum"
        elif quirk == "disappears":
            scenario["disappears_after"] = draw(_tenths(1, int(max_step_seconds * 10 * max(1, max_steps))))
    scenario["timeline"] = timeline
    if latency and draw(st.booleans()):
        scenario["latency"] = {"poll": draw(_tenths(0, 3)), "submit": draw(_tenths(0, 3))}
    scenario["description"] = describe(scenario)
    return scenario


def describe(scenario: dict[str, Any]) -> str:
    """One line saying what a generated behaviour does, for the YAML file and the report."""
    parts = []
    for answer in scenario.get("submit", []) or []:
        if not answer:
            parts.append("then accepted")
            continue
        what = answer.get("fault") or str(answer.get("status"))
        extra = []
        if answer.get("headers", {}).get("Retry-After") is not None:
            extra.append(f"Retry-After {answer['headers']['Retry-After']}")
        if answer.get("error", {}).get("code"):
            extra.append(answer["error"]["code"])
        if answer.get("creates_task"):
            extra.append("task created anyway")
        times = f" x{answer['times']}" if answer.get("times") else ""
        parts.append(f"submit {what}{times}" + (f" ({', '.join(extra)})" if extra else ""))
    if not parts:
        parts.append("submit accepted")
    for rule in scenario.get("polls", []):
        parts.append(f"poll {rule['on'][0]}: {rule.get('fault') or rule.get('status')}")
    steps = scenario.get("timeline", [])
    if steps:
        last = steps[-1]
        end = last["status"] + (f" ({last['error']['code']})" if "error" in last else "")
        if last["status"] == "completed" and any(s.get("results", 1) is None for s in steps):
            end = "completed before its results, filled in later"
        parts.append(f"{len(steps)} steps, ends {end} at {last['at']:g} s" if last["status"] not in ("pending", "processing") else f"{len(steps)} steps, never finishes")
    if "disappears_after" in scenario:
        parts.append(f"disappears after {scenario['disappears_after']:g} s")
    if "latency" in scenario:
        parts.append(f"latency {scenario['latency']['submit']:g}/{scenario['latency']['poll']:g} s")
    return "Generated: " + "; ".join(parts) + "."
