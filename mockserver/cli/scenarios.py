"""`mockserver scenarios list` and `mockserver scenarios validate`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mockserver.cli.options import contract_option, fail, scenario_options

if TYPE_CHECKING:
    from contracts import Contract
    from mockserver.render import Renderer
    from mockserver.scenarios import Scenario


@click.group()
def scenarios() -> None:
    """List and validate scenario files."""


@scenarios.command("list")
@scenario_options
@contract_option("The contract whose status words the scenarios may use ('seed', 'current' or a path).")
def list_scenarios(
    scenario_dirs: tuple[Path, ...], key_files: tuple[Path, ...], no_shipped: bool, contract: str
) -> None:
    """Show every scenario the server would load, with its description."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from contracts import Contract, ContractError
    from mockserver.journal import key_id
    from mockserver.keymap import key_map_files, load_key_maps
    from mockserver.scenarios import KEYMAP_FILE, load_directories
    from mockserver.settings import SHIPPED_SCENARIOS, Settings
    from mockserver.yamlfile import FileProblem

    settings = Settings(scenario_dirs=scenario_dirs, shipped_scenarios=not no_shipped, keys=key_files)
    sources: dict[str, Path] = {}
    try:
        vocabulary = Contract.load(contract).shapes.vocabulary
    except ContractError as exc:
        fail(str(exc))
    try:
        loaded = load_directories(settings.scenario_directories, vocabulary)
        keys = load_key_maps(key_map_files(settings.scenario_directories, settings.keys), loaded, sources)
    except FileProblem as exc:
        fail(str(exc))
    shipped_keys = SHIPPED_SCENARIOS / KEYMAP_FILE
    table = Table(show_lines=True)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("selected by")
    table.add_column("description")
    for scenario in loaded.values():
        # The shipped QA keys are public (README, scenarios/keys.yaml): shown as they are. Keys
        # from your own maps show only as fingerprints.
        mapped = [
            key if sources[key] == shipped_keys else key_id(key) for key, name in keys.items() if name == scenario.name
        ]
        table.add_row(escape(scenario.name), escape(_selection(scenario, mapped)), escape(scenario.description))
    Console(width=max(Console().width, 120)).print(table)


def _selection(scenario: Scenario, mapped_keys: list[str]) -> str:
    ways = [f"X-Mock-Scenario: {scenario.name}"]
    ways.extend(f"api key {key}" for key in mapped_keys)
    for rule in scenario.rules:
        ways.append(" and ".join(f"{k}={v!r}" for k, v in rule.describe().items()))
    if scenario.mix:
        ways.append("mix of " + ", ".join(f"{name} ({weight:g})" for name, weight in scenario.mix))
    if scenario.sequence:
        ways.append("sequence of " + ", ".join(scenario.sequence))
    return "\n".join(ways)


@scenarios.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@contract_option("Check the scripted answers against this contract too ('seed', 'current' or a path).")
def validate_scenarios(paths: tuple[Path, ...], contract: str) -> None:
    """Check scenario files (or folders of them); exit 1 if any is invalid.

    Mixes may name shipped scenarios as well as the ones given here. With no PATHS, say which
    shipped scenarios CONTRACT can play and why not the others (`serve` leaves those out)."""
    from contracts import Contract, ContractError
    from mockserver import conformity
    from mockserver.media import Media
    from mockserver.render import Renderer
    from mockserver.scenarios import ScenarioError, check_mixes, load_directories, load_file, scenario_files
    from mockserver.settings import SHIPPED_SCENARIOS
    from mockserver.yamlfile import FileProblem

    failed = 0
    found: dict[str, Scenario] = {}
    try:
        loaded_contract = Contract.load(contract)
        renderer = Renderer(loaded_contract, Media())
        vocabulary = loaded_contract.shapes.vocabulary
        conformity.check_answers(
            loaded_contract, renderer, load_directories([SHIPPED_SCENARIOS], vocabulary)["default"]
        )
    except ContractError as exc:
        fail(str(exc))
    if not paths:
        _shipped_report(loaded_contract, renderer)
        return
    for path in paths:
        for file in scenario_files(path) if path.is_dir() else [path]:
            try:
                loaded = load_file(file, vocabulary)
                for scenario in loaded:
                    if scenario.name in found:
                        raise ScenarioError(
                            str(file),
                            None,
                            "name",
                            f"'{scenario.name}' is already the name of a scenario in {found[scenario.name].source}",
                        )
                    conformity.check({scenario.name: scenario}, loaded_contract, renderer)
                    found[scenario.name] = scenario
            except FileProblem as exc:
                failed += 1
                click.echo(f"invalid  {exc}")
                continue
            for scenario in loaded:
                click.echo(f"ok       {file} ({scenario.name})" + (" [off contract]" if scenario.off_contract else ""))
    try:
        check_mixes({**load_directories([SHIPPED_SCENARIOS], vocabulary), **found})
    except ScenarioError as exc:
        failed += 1
        click.echo(f"invalid  {exc}")
    if failed:
        click.echo(f"{failed} invalid scenario file(s)", err=True)
        sys.exit(1)


def _shipped_report(contract: Contract, renderer: Renderer) -> None:
    from mockserver import conformity
    from mockserver.scenarios import load_directories
    from mockserver.settings import SHIPPED_SCENARIOS

    shipped = load_directories([SHIPPED_SCENARIOS], contract.shapes.vocabulary)
    reasons = conformity.unplayable(shipped, contract, renderer)
    for name, scenario in shipped.items():
        if name in reasons:
            click.echo(f"left out  {name} ({Path(scenario.source).name}): {reasons[name]}")
        else:
            click.echo(f"plays    {name}" + (" [off contract]" if scenario.off_contract else ""))
    click.echo(
        f"{len(shipped) - len(reasons)} of {len(shipped)} shipped scenarios play under {contract.path}"
        + ("; serve leaves the others out" if reasons else "")
    )
    if "default" in reasons:
        click.echo(
            "serve cannot start with this contract and the shipped default scenario: fix the contract, or give "
            "serve --scenarios DIR --scenario NAME with a scenario of your own that plays",
            err=True,
        )
        sys.exit(1)
