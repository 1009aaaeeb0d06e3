"""Which scenario a new task plays. First match wins:

1. the `X-Mock-Scenario: NAME` header (an unknown name is a 400 that lists the known ones);
2. a scenario pushed through the admin API for the next N submissions;
3. the key map (`keys.yaml`, `--keys`): the API key names a scenario;
4. a `match` rule of a scenario, in load order (file name order, shipped folder first);
5. the server's default scenario (settable at run time).

A `mix` scenario then draws one of its members by weight, from the server's seeded random
source, so the same seed and the same submissions give the same blend. Steps 2 and 5 and the
draw are state, shared by every replica: the store takes them (`mockserver.state`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mockserver.errors import ApiError
from mockserver.scenarios import Scenario

SCENARIO_HEADER = b"x-mock-scenario"


def unknown_scenario(name: str, scenarios: Mapping[str, Scenario], where: str) -> ApiError:
    known = ", ".join(sorted(scenarios))
    return ApiError(
        400 if where == "header" else 404,
        f"Unknown scenario {name[:80]!r}"
        + (" in the X-Mock-Scenario header" if where == "header" else "")
        + f". Known scenarios: {known}.",
        code="unknown_scenario",
        param=SCENARIO_HEADER.decode() if where == "header" else "scenario",
    )


class Selector:
    """What the request alone says about its scenario: the header, the key map, the match rules.
    The rest (a pushed scenario, the run-time default, drawing a mix member) is state: the store
    decides it (`mockserver.state.Store.submit`)."""

    def __init__(
        self, scenarios: Mapping[str, Scenario], keys: Mapping[str, str], left_out: Mapping[str, str] | None = None
    ) -> None:
        self.scenarios = scenarios
        self.keys = dict(keys)
        self.left_out = dict(left_out or {})  # shipped scenarios the contract cannot play -> why
        self.refresh()

    def refresh(self) -> None:
        """Index the rules of the loaded scenarios (again, after scenarios change).

        Most rules only look for a marker in the prompt: one regular expression finds whether any
        of them can match, so a submission with no marker pays for one search, not one per rule."""
        self._rules = [(rule, scenario) for scenario in self.scenarios.values() for rule in scenario.rules]
        markers = [rule.prompt_contains for rule, _ in self._rules if rule.prompt_only and rule.prompt_contains]
        self._markers = re.compile("|".join(re.escape(m) for m in markers)) if markers else None
        self._general = [(rule, scenario) for rule, scenario in self._rules if not rule.prompt_only]

    def named(self, name: str, where: str = "admin") -> Scenario:
        scenario = self.scenarios.get(name)
        if scenario is None:
            if name in self.left_out:
                raise ApiError(
                    400 if where == "header" else 404,
                    f"Scenario {name!r} is left out: the loaded contract cannot play it ({self.left_out[name][:300]}). "
                    "See mockserver scenarios validate --contract.",
                    code="scenario_left_out",
                    param=SCENARIO_HEADER.decode() if where == "header" else "scenario",
                )
            raise unknown_scenario(name, self.scenarios, where)
        return scenario

    def header(self, header: str | None) -> Scenario | None:
        """The scenario an `X-Mock-Scenario` header names (400 for an unknown name)."""
        return None if header is None else self.named(header.strip(), "header")

    def fallback(self, api_key: str, body: dict[str, Any]) -> tuple[Scenario | None, str]:
        """The key map's scenario, else the first matching rule's: (scenario, "key" or "rule"), or
        (None, "default") when neither applies."""
        mapped = self.keys.get(api_key)
        if mapped is not None:
            return self.scenarios[mapped], "key"
        prompt = body.get("prompt")
        marked = self._markers is not None and isinstance(prompt, str) and self._markers.search(prompt) is not None
        for rule, scenario in self._rules if marked else self._general:
            if rule.matches(api_key, body):
                return scenario, "rule"
        return None, "default"
