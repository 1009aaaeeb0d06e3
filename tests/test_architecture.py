"""The import rule of ARCHITECTURE.md: a module imports only from its own layer and the layers
below it; `contracts` never imports `mockserver`; no import cycles."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Top to bottom, as ARCHITECTURE.md draws them.
LAYERS = [
    {
        "__init__",
        "__main__",
        "cli",
        "cli.options",
        "cli.serve",
        "cli.check",
        "cli.record",
        "cli.fuzz_client",
        "cli.scenarios",
    },
    {
        "serving",
        "testing",
        "pytest_plugin",
        "fuzzclient",
        "fuzzreport",
        "record",
        "record.model",
        "record.proxy",
        "record.har",
    },
    {"app"},
    {
        "api",
        "admin",
        "accesslog",
        "ui",
        "ui.dashboard",
        "ui.base",
        "ui.views",
        "ui.pages",
        "ui.actions",
        "ui.feed",
        "ui.signin",
    },
    {"runtime"},
    {"callbacks", "callbacks.dispatcher", "callbacks.plan", "callbacks.policy", "callbacks.sender", "tracing"},
    {"state", "state.memory", "state.redis", "state.link", "state.base"},
    {"render", "codegen", "conformity", "lifecycle", "matching", "keymap", "media"},
    {"state.task", "scenarios"},
    {"faults", "journal", "intake", "forms", "incoming", "protocol", "errors", "responses", "attempts"},
    {"settings", "clock", "yamlfile", "clipmaker", "metrics"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT / "mockserver").with_suffix("").parts
    name = ".".join(parts)
    return name.removesuffix(".__init__")  # a package's __init__ is the package


def _imports(path: Path) -> set[str]:
    """The mockserver modules (and the contracts package) a file imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "mockserver":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("mockserver."):
                found.add(node.module.removeprefix("mockserver."))
            elif node.module.split(".")[0] == "contracts":
                found.add("contracts")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mockserver."):
                    found.add(alias.name.removeprefix("mockserver."))
                elif alias.name.split(".")[0] == "contracts":
                    found.add("contracts")
    return found


def test_every_module_has_a_layer() -> None:
    modules = {_module_name(p) for p in (ROOT / "mockserver").rglob("*.py")}
    assert modules - set(RANK) == set(), "add the new module to a layer here and in ARCHITECTURE.md"


def test_imports_only_go_down() -> None:
    upward = []
    graph: dict[str, set[str]] = {}
    for path in (ROOT / "mockserver").rglob("*.py"):
        name = _module_name(path)
        imported = _imports(path) - {"contracts", name}
        graph[name] = imported
        upward += [f"{name} imports {other}" for other in imported if RANK[other] < RANK[name]]
    assert not upward, "\n".join(upward)
    seen: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        if seen.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join([*trail, node]))
        if seen.get(node) == 2:
            return
        seen[node] = 1
        for other in graph.get(node, ()):
            visit(other, [*trail, node])
        seen[node] = 2

    for module in graph:
        visit(module, [])


def test_contracts_never_import_mockserver() -> None:
    for path in (ROOT / "contracts").rglob("*.py"):
        assert not any(m != "contracts" for m in _imports(path)), f"{path} imports mockserver"
