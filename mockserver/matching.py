"""Which scenario a new task plays. First match wins:

1. the `X-Mock-Scenario: NAME` header (an unknown name is a 400 that lists the known ones);
2. a `match` rule of a scenario, in load order (file name order, shipped folder first);
3. the server's default scenario.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mockserver.errors import ApiError
from mockserver.scenarios import Scenario

SCENARIO_HEADER = "x-mock-scenario"


def by_name(scenarios: Mapping[str, Scenario], name: str) -> Scenario:
    try:
        return scenarios[name]
    except KeyError:
        known = ", ".join(sorted(scenarios))
        raise ApiError(
            400,
            f"Unknown scenario {name[:80]!r} in the X-Mock-Scenario header. Known scenarios: {known}.",
            code="unknown_scenario",
            param=SCENARIO_HEADER,
        ) from None


def choose(
    scenarios: Mapping[str, Scenario],
    default: Scenario,
    header: str | None,
    api_key: str,
    body: dict[str, Any],
) -> Scenario:
    if header is not None:
        return by_name(scenarios, header.strip())
    for scenario in scenarios.values():
        for rule in scenario.rules:
            if rule.matches(api_key, body):
                return scenario
    return default
