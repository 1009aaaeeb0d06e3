"""What the commands share: the scenario options, the `--contract` option, the defaults they show
and how a command stops on a problem. Light on purpose: every command's module imports this, and
`mockserver --help` imports every command's module."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from mockserver.settings import SHIPPED_SCENARIOS, Settings

DEFAULTS = Settings()


def scenario_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--scenarios, --no-shipped-scenarios and --keys (serve, scenarios list)."""
    command = click.option(
        "--keys",
        "key_files",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        envvar="MOCKSERVER_KEYS",
        help="A key map (YAML: API key -> scenario name), read after the keys.yaml of each scenario folder. Repeatable.",
    )(command)
    command = click.option(
        "--no-shipped-scenarios",
        "no_shipped",
        is_flag=True,
        envvar="MOCKSERVER_NO_SHIPPED_SCENARIOS",
        help=f"Do not load the shipped scenarios ({SHIPPED_SCENARIOS}).",
    )(command)
    return click.option(
        "--scenarios",
        "scenario_dirs",
        multiple=True,
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        envvar="MOCKSERVER_SCENARIOS",
        help="A folder of scenario files, loaded after the shipped ones (a same-named scenario replaces "
        "the shipped one). Repeatable; the variable takes a list separated by ':'.",
    )(command)


def contract_option(
    help: str = "'seed', 'current' or the path of an OpenAPI document.", envvar: str | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--contract, defaulting to the seed contract as `serve` does."""
    return click.option("--contract", default=DEFAULTS.contract, show_default=True, envvar=envvar, help=help)


def fail(message: str) -> NoReturn:
    """Stop the command: the message on standard error, exit status 2."""
    click.echo(f"mockserver: {message}", err=True)
    sys.exit(2)
