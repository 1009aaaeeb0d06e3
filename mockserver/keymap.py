"""Key maps: which scenario a new task plays, by the API key that submitted it.

A key map is a YAML mapping of API key to scenario name:

    sk-qa-ratelimit: rate-limited
    sk-qa-policy: content-policy

It is read from `keys.yaml` in each scenario folder and from every `--keys FILE`, in that
order; a later file may map a key again. QA hands the application a different key and nothing
else. Keys are compared exactly; they never appear in logs or the journal (`key_id` does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from mockserver.scenarios import KEYMAP_FILE, Scenario
from mockserver.yamlfile import FileProblem, read_documents


class KeyMapError(FileProblem):
    """A key map file is unreadable or names a scenario that is not loaded."""


def key_map_files(scenario_dirs: Iterable[Path], extra: Iterable[Path]) -> list[Path]:
    found = [directory / KEYMAP_FILE for directory in scenario_dirs if (directory / KEYMAP_FILE).is_file()]
    return [*found, *extra]


def load_key_maps(
    paths: Iterable[Path], scenarios: Mapping[str, Scenario], sources: dict[str, Path] | None = None
) -> dict[str, str]:
    """API key -> scenario name; `sources`, when given, is filled with the file of each key."""
    keys: dict[str, str] = {}
    for path in paths:
        documents = read_documents(path, KeyMapError, secret_keys=True)
        if len(documents) != 1 or not isinstance(documents[0].data, dict):
            raise KeyMapError(str(path), None, None, "a key map is one YAML mapping of API key to scenario name")
        document = documents[0]
        for number, (key, name) in enumerate(document.data.items(), start=1):
            # the field names the entry by position: the key itself is a credential
            line = document.lines.get((key,))
            if not isinstance(key, str) or not key:
                raise KeyMapError(str(path), line, f"entry {number}", "an API key must be a non-empty string")
            if not isinstance(name, str) or name not in scenarios:
                known = ", ".join(sorted(scenarios))
                raise KeyMapError(
                    str(path), line, f"entry {number}", f"{name!r} is not a loaded scenario (loaded: {known})"
                )
            keys[key] = name
            if sources is not None:
                sources[key] = path
    return keys
