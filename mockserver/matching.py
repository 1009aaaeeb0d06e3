"""Which scenario a new task plays. First match wins:

1. the `X-Mock-Scenario: NAME` header (an unknown name is a 400 that lists the known ones);
2. a scenario pushed through the admin API for the next N submissions;
3. the key map (`keys.yaml`, `--keys`): the API key names a scenario;
4. a `match` rule of a scenario, in load order (file name order, shipped folder first);
5. the server's default scenario (settable at run time).

A `mix` scenario then draws one of its members by weight, from the server's seeded random
source, so the same seed and the same submissions give the same blend.
"""

from __future__ import annotations

import random
import re
from collections import deque
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
    def __init__(self, scenarios: Mapping[str, Scenario], default: Scenario, keys: Mapping[str, str], seed: int | None) -> None:
        self.scenarios = scenarios
        self.configured_default = default
        self.default = default
        self.keys = dict(keys)
        self.pushed: deque[list[Any]] = deque()  # [scenario, submissions left]
        self._seed = seed
        self.random = random.Random(seed)
        self.refresh()

    def refresh(self) -> None:
        """Index the rules of the loaded scenarios (again, after scenarios change).

        Most rules only look for a marker in the prompt: one regular expression finds whether any
        of them can match, so a submission with no marker pays for one search, not one per rule."""
        self._rules = [(rule, scenario) for scenario in self.scenarios.values() for rule in scenario.rules]
        markers = [rule.prompt_contains for rule, _ in self._rules if rule.prompt_only]
        self._markers = re.compile("|".join(re.escape(m) for m in markers)) if markers else None
        self._general = [(rule, scenario) for rule, scenario in self._rules if not rule.prompt_only]

    def named(self, name: str, where: str = "admin") -> Scenario:
        scenario = self.scenarios.get(name)
        if scenario is None:
            raise unknown_scenario(name, self.scenarios, where)
        return scenario

    def push(self, name: str, count: int) -> None:
        self.pushed.append([self.named(name), count])

    def reset(self) -> None:
        self.default = self.configured_default
        self.pushed.clear()
        self.random = random.Random(self._seed)

    def choose(self, header: str | None, api_key: str, body: dict[str, Any]) -> tuple[Scenario, str, str | None]:
        """(scenario to play, how it was selected, the mix it was drawn from)."""
        scenario, selected_by = self._select(header, api_key, body)
        if not scenario.mix:
            return scenario, selected_by, None
        names = [name for name, _ in scenario.mix]
        weights = [weight for _, weight in scenario.mix]
        member = self.random.choices(names, weights)[0]
        return self.scenarios[member], selected_by, scenario.name

    def _select(self, header: str | None, api_key: str, body: dict[str, Any]) -> tuple[Scenario, str]:
        if header is not None:
            return self.named(header.strip(), "header"), "header"
        if self.pushed:
            entry = self.pushed[0]
            entry[1] -= 1
            if entry[1] <= 0:
                self.pushed.popleft()
            return entry[0], "pushed"
        mapped = self.keys.get(api_key)
        if mapped is not None:
            return self.scenarios[mapped], "key"
        prompt = body.get("prompt")
        marked = self._markers is not None and isinstance(prompt, str) and self._markers.search(prompt) is not None
        for rule, scenario in self._rules if marked else self._general:
            if rule.matches(api_key, body):
                return scenario, "rule"
        return self.default, "default"
