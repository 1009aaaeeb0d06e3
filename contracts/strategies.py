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
                    a task that disappears) and slow answers; `behaviours(kind=...)` draws only
                    behaviours of one class of `CLASSES`
    classes()       the classes of behaviour the client properties judge, in the order a small
                    budget covers them (`mockserver fuzz-client` plays one of each first)
    callback_faults()  how a task's callbacks go wrong (the scenario key `callbacks`): lost,
                    duplicated, late, early, badly signed; `with_callbacks()` adds them to a
                    behaviour, for a client that gives a callback URL (`CALLBACK_CLASSES`)

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

# The classes of behaviour the client properties judge, each with what it is and the properties
# it puts to the test, in the order a small budget covers them: the simplest behaviour first,
# so a bug that shows on any behaviour is shrunk to that one, then the classes most clients get
# wrong. What each class does not fix (the timeline, the other answers) is drawn as usual.
CLASSES: dict[str, str] = {
    "plain": "submit accepted, the task completes with results (exit-code, poll-rate, valid-requests)",
    "rate-limited": "submit answered 429 with Retry-After, then accepted (retry-after)",
    "results-later": "completed before its results, filled in on a later poll (waits-for-results, no-early-success)",
    "failed": "the task fails with a code (stops-polling, exit-code)",
    "ambiguous-5xx": "submit answered 500 or 503, the task created anyway (no-duplicate-submit)",
    "submit-refused": "submit refused for good: 401, 402, 422 with a code, 500 or 503 (exit-code, no-duplicate-submit)",
    "poll-errors": "error answers on polls: 500, 503, 429 (retry-after, poll-rate)",
    "broken-polls": "broken answers on polls: reset, empty, malformed, truncated (poll-rate, time-limit)",
    "dropped-connection": "submit's connection dropped, the task created anyway (no-duplicate-submit)",
    "disappears": "the task disappears: polls answer 404 (stops-polling)",
    "rate-limited-no-retry-after": "submit answered 429 without Retry-After, then accepted (no-duplicate-submit)",
    "slow": "slow answers to submit and polls (poll-rate, retry-after, time-limit)",
}
_NEEDS = {"dropped-connection": "faults", "broken-polls": "faults", "disappears": "quirks", "slow": "latency"}


def classes(*, faults: bool = True, quirks: bool = True, latency: bool = True, results_later: bool = True) -> list[str]:
    """The classes `behaviours()` with these options can draw, in coverage order (`results_later`:
    whether the contract can say a task completed before its results, which it cannot when the
    results are required then, or not in the task at all)."""
    allowed = {"faults": faults, "quirks": quirks, "latency": latency}
    found = [name for name in CLASSES if allowed.get(_NEEDS.get(name, ""), True)]
    return found if results_later else [name for name in found if name != "results-later"]


def _tenths(low: int, high: int) -> st.SearchStrategy[float]:
    return st.integers(min_value=low, max_value=high).map(lambda tenths: tenths / 10)


@st.composite
def timelines(
    draw: st.DrawFn, max_steps: int = 8, max_step_seconds: float = 60.0, ending: str | None = None, quirk: bool = True
) -> list[dict[str, Any]]:
    """A valid timeline: status never moves backward, progress never falls, terminal is final.
    `ending` fixes how it ends: completed, failed, quirk (completed before its results) or never."""
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
    if ending is None:
        ending = draw(
            st.sampled_from(["completed", "failed", "quirk", "never"] if quirk else ["completed", "failed", "never"])
        )
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


def _statuses(wanted: list[int], documented: frozenset[int] | None) -> list[int]:
    """The statuses of `wanted` the contract documents (all of them when it documents none)."""
    if documented is None:
        return wanted
    return [status for status in wanted if status in documented] or wanted


def _refusal(status: int, code: str | None = None, retry_after: int | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"status": status, "error": {"message": f"Generated HTTP {status}."}}
    if code is not None:
        answer["error"]["code"] = code
    if retry_after is not None:
        answer["headers"] = {"Retry-After": retry_after}
    return answer


# Drawn when no kind is given: accepted, refused, transient (429 or 503, then accepted), ambiguous
# (a 5xx or a dropped connection that created the task). The others narrow one of these down.
SUBMIT_KINDS: tuple[str, ...] = ("accepted", "refused", "transient", "ambiguous")
SUBMIT_KINDS += ("rate-limited", "rate-limited-no-retry-after", "ambiguous-5xx", "dropped")


@st.composite
def submits(
    draw: st.DrawFn,
    retry_after_max: int = 2,
    faults: bool = True,
    kind: str | None = None,
    documented: frozenset[int] | None = None,
) -> list[dict[str, Any]] | None:
    """How submit is answered (None: accepted at once, as half of all submissions are here).
    `kind` fixes the kind of answer (one of SUBMIT_KINDS); `documented`, the error statuses the
    contract documents for submit, narrows the statuses drawn to those (when any of them is)."""
    if kind is None:
        kind = draw(st.sampled_from(["accepted", "accepted", "accepted", "refused", "transient", "ambiguous"]))
    if kind == "accepted":
        return None
    if kind == "refused":
        status = draw(st.sampled_from(_statuses([401, 402, 422, 500, 503], documented)))
        code = draw(st.sampled_from(SUBMIT_422_CODES)) if status == 422 and documented is None else None
        return [_refusal(status, code)]
    if kind in ("transient", "rate-limited", "rate-limited-no-retry-after"):
        status = draw(st.sampled_from(_statuses([429, 503], documented))) if kind == "transient" else 429
        retry_after = {
            "transient": st.none() | st.integers(1, retry_after_max),
            "rate-limited": st.integers(1, retry_after_max),
            "rate-limited-no-retry-after": st.none(),
        }[kind]
        refusal = _refusal(status, retry_after=draw(retry_after) if status == 429 else None)
        return [{"times": draw(st.integers(1, 2)), **refusal}, {}]
    if kind == "dropped" or (kind == "ambiguous" and faults and draw(st.booleans())):
        ambiguous: dict[str, Any] = {"fault": draw(st.sampled_from(["reset", "empty"]))}
    elif kind in ("ambiguous", "ambiguous-5xx"):
        ambiguous = _refusal(draw(st.sampled_from(_statuses([500, 503], documented))))
    else:
        raise ValueError(f"unknown kind of submit answer {kind!r}; known: {', '.join(SUBMIT_KINDS)}")
    return [{"times": 1, "creates_task": True, **ambiguous}, {}]


@st.composite
def poll_rules(
    draw: st.DrawFn,
    retry_after_max: int = 2,
    faults: bool = True,
    kind: str | None = None,
    documented: frozenset[int] | None = None,
) -> list[dict[str, Any]]:
    """Transient errors (500, 503, 429 with or without Retry-After) and broken answers on some polls.
    `kind` "errors" or "faults" gives at least one poll that kind of answer, and only that kind."""
    if kind not in (None, "errors", "faults"):
        raise ValueError(f"unknown kind of poll rules {kind!r}; known: errors, faults")
    rules = []
    kinds = {None: ["error", "fault"] if faults else ["error"], "errors": ["error"], "faults": ["fault"]}[kind]
    for poll in sorted(draw(st.sets(st.integers(1, 8), min_size=0 if kind is None else 1, max_size=3))):
        if draw(st.sampled_from(kinds)) == "fault":
            rules.append({"on": [poll], "fault": draw(st.sampled_from(FAULTS))})
            continue
        status = draw(st.sampled_from(_statuses([500, 503, 429], documented)))
        retry_after = draw(st.none() | st.integers(1, retry_after_max)) if status == 429 else None
        rules.append({"on": [poll], **_refusal(status, retry_after=retry_after)})
    return rules


# What each class fixes: the kind of submit answer, of poll rules, the timeline's ending, a quirk,
# slow answers. "plain" fixes everything to nothing going wrong.
_CLASS_PARTS: dict[str, dict[str, Any]] = {
    "plain": {"submit": "accepted", "polls": False, "ending": "completed", "quirk": None, "latency": False},
    "rate-limited": {"submit": "rate-limited"},
    "results-later": {"ending": "quirk"},
    "failed": {"ending": "failed"},
    "ambiguous-5xx": {"submit": "ambiguous-5xx"},
    "submit-refused": {"submit": "refused"},
    "poll-errors": {"polls": "errors"},
    "broken-polls": {"polls": "faults"},
    "dropped-connection": {"submit": "dropped"},
    "disappears": {"quirk": "disappears"},
    "rate-limited-no-retry-after": {"submit": "rate-limited-no-retry-after"},
    "slow": {"latency": True},
}
assert set(_CLASS_PARTS) == set(CLASSES)


@st.composite
def behaviours(
    draw: st.DrawFn,
    *,
    name: str = "generated",
    kind: str | None = None,
    max_steps: int = 6,
    max_step_seconds: float = 20.0,
    retry_after_max: int = 2,
    faults: bool = True,
    quirks: bool = True,
    latency: bool = True,
    documented: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A whole server behaviour, as a scenario the fake can play; with `kind`, one of that class
    (see CLASSES; what the class does not fix is drawn as usual). `documented` ("submit" and
    "poll": the error statuses a contract documents; "cancelled": whether it has a word for a
    cancelled task) keeps the drawn errors to those where it can;
    a behaviour that still needs an undocumented one (a 429 the contract does not list) says so
    with `off_contract`."""
    documented = documented or {}
    results_later = documented.get("results_later", True)
    possible = classes(faults=faults, quirks=quirks, latency=latency, results_later=results_later)
    if kind is not None and kind not in possible:
        raise ValueError(f"no behaviour of class {kind!r} with these options; possible: {', '.join(possible)}")
    fixed = _CLASS_PARTS.get(kind or "", {})
    scenario: dict[str, Any] = {"name": name}
    submit = draw(
        submits(
            retry_after_max=retry_after_max,
            faults=faults,
            kind=fixed.get("submit"),
            documented=documented.get("submit"),
        )
    )
    if submit is not None:
        scenario["submit"] = submit
    if fixed.get("polls", True) is not False:
        polls = draw(
            poll_rules(
                retry_after_max=retry_after_max,
                faults=faults,
                kind=fixed.get("polls"),
                documented=documented.get("poll"),
            )
        )
        if polls:
            scenario["polls"] = polls
    timeline = draw(
        timelines(
            max_steps=max_steps, max_step_seconds=max_step_seconds, ending=fixed.get("ending"), quirk=results_later
        )
    )
    quirk = fixed.get("quirk", "any")
    if quirk == "any":
        quirk = draw(st.sampled_from(["cancelled", "disappears"])) if quirks and draw(st.booleans()) else None
    if quirk == "cancelled" and timeline[-1]["status"] in ("pending", "processing"):
        at = timeline[-1]["at"] + draw(_tenths(0, int(max_step_seconds * 10)))
        cancelled = {"code": "request_cancelled", "message": "Cancelled."}
        timeline.append({"at": at, "status": "cancelled", "error": cancelled})
        if not documented.get("cancelled"):
            scenario["off_contract"] = "generated: status 'cancelled' is outside the documented enum"
    elif quirk == "disappears":
        scenario["disappears_after"] = draw(_tenths(1, int(max_step_seconds * 10 * max(1, max_steps))))
    undocumented = (
        sorted(
            {
                answer["status"]
                for answer in submit or []
                if answer.get("status") not in (None, *documented.get("submit", ()))
            }
            | {
                rule["status"]
                for rule in scenario.get("polls", [])
                if rule.get("status") not in (None, *documented.get("poll", ()))
            }
        )
        if documented
        else []
    )
    if undocumented and "off_contract" not in scenario:
        listed = ", ".join(f"HTTP {status}" for status in undocumented)
        scenario["off_contract"] = f"generated: {listed} is not documented by this contract"
    scenario["timeline"] = timeline
    slow = fixed.get("latency")
    if slow or (slow is None and latency and draw(st.booleans())):
        least = 1 if slow else 0  # a slow behaviour is slow on both: at least 0.1 s
        scenario["latency"] = {"poll": draw(_tenths(least, 3)), "submit": draw(_tenths(least, 3))}
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
        parts.append(
            f"{len(steps)} steps, ends {end} at {last['at']:g} s"
            if last["status"] not in ("pending", "processing")
            else f"{len(steps)} steps, never finishes"
        )
    if "disappears_after" in scenario:
        parts.append(f"disappears after {scenario['disappears_after']:g} s")
    if "latency" in scenario:
        parts.append(f"latency {scenario['latency']['submit']:g}/{scenario['latency']['poll']:g} s")
    return "Generated: " + "; ".join(parts) + "."


CALLBACK_AFTER = 30  # scenario seconds a callback class's task runs at least: time for a callback to go wrong
# The classes of callback behaviour, for a client that gives a callback URL under a contract that
# documents callbacks: each plays a plain behaviour (the task completes) whose callback goes wrong.
CALLBACK_CLASSES: dict[str, str] = {
    "callback-lost": "the callback is never delivered: the client must reach the outcome by polling (callbacks)",
    "callback-duplicate": "the callback is delivered two or three times with one webhook id: handled once (callbacks)",
    "callback-late": "the callback arrives long after polls show the outcome (callbacks, time-limit)",
    "callback-early": "the callback arrives before polls show its state (callbacks, exit-code)",
    "callback-bad-signature": "the callback's signature does not verify: refused, the outcome by polling (callbacks)",
}


@st.composite
def callback_faults(draw: st.DrawFn, kind: str | None = None) -> dict[str, Any]:
    """The `callbacks` key of a scenario: one fault of the callback class `kind` (see
    CALLBACK_CLASSES), or any one of them. Shifts are scenario seconds."""
    if kind is None:
        kind = draw(st.sampled_from(list(CALLBACK_CLASSES)))
    if kind == "callback-lost":
        return {"lost": True}
    if kind == "callback-duplicate":
        return {"duplicate": draw(st.integers(2, 3))}
    if kind == "callback-late":  # longer than a client waits for a callback, shorter than its provider retries
        return {"late": draw(st.integers(600, 3600))}
    if kind == "callback-early":
        return {"early": draw(st.integers(10, CALLBACK_AFTER))}
    if kind == "callback-bad-signature":
        return {"bad_signature": True}
    raise ValueError(f"unknown callback class {kind!r}; known: {', '.join(CALLBACK_CLASSES)}")


def describe_callbacks(faults: dict[str, Any]) -> str:
    """What a behaviour's callbacks do, in words."""
    if faults.get("lost"):
        return "callback lost"
    if faults.get("duplicate"):
        return f"callback delivered x{faults['duplicate']} (one webhook id)"
    if faults.get("late"):
        return f"callback {faults['late']:g} s late"
    if faults.get("early"):
        return f"callback {faults['early']:g} s early"
    if faults.get("bad_signature"):
        return "callback with a bad signature"
    return "callbacks as documented"


def with_callbacks(
    behaviour: st.SearchStrategy[dict[str, Any]], kind: str | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """`behaviour` with a callback fault: of class `kind` (one of CALLBACK_CLASSES), or, without
    one, sometimes any (hypothesis shrinks towards none)."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        scenario = dict(draw(behaviour))
        if kind is None and not draw(st.booleans()):
            return scenario
        faults = draw(callback_faults(kind))
        scenario["callbacks"] = faults
        if kind is not None:  # the task runs a while, so that an early or late callback is early or late
            steps = scenario["timeline"]
            scenario["timeline"] = [steps[0], *({**step, "at": step["at"] + CALLBACK_AFTER} for step in steps[1:])]
        scenario["description"] = describe(scenario).removesuffix(".") + f"; {describe_callbacks(faults)}."
        return scenario

    return build()
