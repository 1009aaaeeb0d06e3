"""`mockserver check`: a deployment of the API (the real one included) against the contract."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from mockserver.cli.options import contract_option, fail


@click.command()
@click.option(
    "--base-url", required=True, help="The deployment to check, e.g. https://api.foxapi.cc or http://127.0.0.1:8000."
)
@click.option(
    "--token",
    envvar="MOCKSERVER_CHECK_TOKEN",
    help="The API key to use. Prefer the MOCKSERVER_CHECK_TOKEN variable: a flag shows in the process list.",
)
@contract_option()
@click.option(
    "--billable",
    default=0,
    show_default=True,
    type=click.IntRange(0, 100),
    help="Also submit at most this many valid (billable) tasks and follow each to its end. 0 spends nothing.",
)
@click.option(
    "--video-url",
    default=None,
    help="A public video to extend in billable tasks (default: the contract's example URL).",
)
@click.option(
    "--poll-interval",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds between polls of a billable task.",
)
@click.option(
    "--max-wait",
    default=900.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds to follow each billable task.",
)
@click.option(
    "--timeout", default=30.0, show_default=True, type=click.FloatRange(0, min_open=True), help="Seconds per request."
)
@click.option(
    "--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), help="Write a JUnit XML report here."
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write a JSON report here.")
def check(
    base_url: str,
    token: str | None,
    contract: str,
    billable: int,
    video_url: str | None,
    poll_interval: float,
    max_wait: float,
    timeout: float,
    junit_path: Path | None,
    json_path: Path | None,
) -> None:
    """Check a deployment of the API (the real one included) against the contract.

    By default only requests the contract says must be refused, or that create nothing, are sent:
    it costs nothing. --billable N adds at most N real tasks. Exit status 1 on any violation."""
    from rich.console import Console
    from rich.markup import escape

    from contracts import Contract, ContractError

    try:
        from contracts.deployment import CheckAborted, DeploymentCheck, RunFinished
        from contracts.reporting import ConsoleReporter, write_json, write_junit
    except ImportError as exc:  # pragma: no cover - depends on how the package was installed
        fail(f"mockserver check needs schemathesis: pip install 'veo-mockserver[check]' ({exc})")
    if not token:
        fail("no API key: set MOCKSERVER_CHECK_TOKEN (or pass --token)")
    if not re.fullmatch(r"[\x21-\x7e]+", token):
        fail("the API key has spaces, control or non-ASCII characters (a stray newline from a file?); it is not shown")
    try:
        loaded = Contract.load(contract)
        runner = DeploymentCheck(
            base_url, token, loaded, billable=billable, poll_interval=poll_interval, max_wait=max_wait,
            video_url=video_url, timeout=timeout,
        )  # fmt: skip
    except (ContractError, ValueError) as exc:
        fail(str(exc))
    console = Console()
    if billable:
        console.print(f"[yellow]This run may create up to {billable} billable task(s) on {escape(base_url)}.[/]")
    reporter = ConsoleReporter(console)
    finished = False
    try:
        for event in runner.run():
            reporter.handle(event)
            finished = finished or isinstance(event, RunFinished)
    except CheckAborted as exc:
        fail(str(exc))
    finally:
        # Even a run that crashed leaves its reports: they list what was sent, and what may have been billed.
        if junit_path is not None:
            write_junit(runner.report, junit_path)
        if json_path is not None:
            write_json(runner.report, json_path)
    sys.exit(0 if finished and runner.report.ok else 1)
