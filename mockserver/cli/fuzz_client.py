"""`mockserver fuzz-client`: a client of the API, in any language, against generated server behaviours."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mockserver.cli.options import contract_option, fail
from mockserver.clock import MAX_SPEED


@click.command("fuzz-client", context_settings={"allow_interspersed_args": False})
@click.option(
    "--examples", default=100, show_default=True, type=click.IntRange(1), help="How many behaviours to generate."
)
@click.option("--seed", type=int, default=None, help="Seed for the generated behaviours (reproducible runs).")
@click.option(
    "--time-limit",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Seconds the client may take per behaviour.",
)
@click.option(
    "--out",
    default=Path("fuzz-client-failures"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the scenario that breaks the client.",
)
@click.option(
    "--env",
    "env",
    multiple=True,
    help="NAME=VALUE for the client's environment; {base_url}, {api_key} and {callback_secret} are filled in. Repeatable.",
)
@click.option(
    "--speed",
    default=20.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True, max=MAX_SPEED),
    help="Scenario seconds per real second while the client runs.",
)
@contract_option()
@click.option("--skip", multiple=True, help="A property not to judge (see --help for the list). Repeatable.")
@click.option(
    "--min-poll-interval",
    default=0.05,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds a client must leave between polls of one task.",
)
@click.option(
    "--polls-after-terminal",
    default=1,
    show_default=True,
    type=click.IntRange(0),
    help="Polls a client may still send once its task is over.",
)
@click.option(
    "--replay",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Play this scenario file once instead of generating behaviours.",
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write a JSON report here.")
@click.option(
    "--callback-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A certificate (PEM) the fake trusts for the client's HTTPS callback receiver.",
)
@click.argument("command", nargs=-1, required=True)
def fuzz_client(
    examples: int,
    seed: int | None,
    time_limit: float,
    out: Path,
    env: tuple[str, ...],
    speed: float,
    contract: str,
    skip: tuple[str, ...],
    min_poll_interval: float,
    polls_after_terminal: int,
    replay: Path | None,
    json_path: Path | None,
    callback_ca: Path | None,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND (a client of the API, in any language) against generated server behaviours.

    \b
    The client gets MOCK_BASE_URL and MOCK_API_KEY in its environment, and is judged on:
      submits              it submits its generation (a client that cannot start does not pass)
      valid-requests       every request valid under the contract and authenticated
      poll-rate            polls of a task at least --min-poll-interval apart
      stops-polling        no more than --polls-after-terminal polls once the task is over
      no-early-success     exit 0 only after receiving the task completed with results
      exit-code            exit 0 when it completed with results, non-zero when it failed or was refused
      waits-for-results    after a first 'completed' without results, it polls again before it ends
      retry-after          after a 429 with Retry-After, the next request waits that long
      no-duplicate-submit  no second submit after one that may have created the task, unless it says so
      callbacks            with a callback URL: the right outcome whatever the callbacks do, a bad
                           signature refused, a duplicate handled once
      time-limit           done within --time-limit seconds
    The first runs play one behaviour of each class the properties judge (a 429 on submit, a task
    completed before its results, a failed task, ...); the rest are explored freely. Under a
    contract that documents callbacks, they are signed with a secret given to the client as
    MOCK_CALLBACK_SECRET ({callback_secret} in --env), and a client that gives a callback URL
    also meets lost, duplicated, late, early and badly signed callbacks.
    On a failure the behaviour is shrunk to the smallest that still breaks the client and written to
    --out as a scenario, with a command that replays it. Exit status 1 on a failure."""
    from rich.console import Console

    from contracts import ContractError
    from mockserver.yamlfile import FileProblem

    try:
        from contracts.client_properties import Properties
        from mockserver.fuzzclient import FuzzOptions, FuzzRun
        from mockserver.fuzzreport import ConsoleProgress, write_json
    except ImportError as exc:  # pragma: no cover - depends on how the package was installed
        fail(f"mockserver fuzz-client needs hypothesis: pip install 'veo-mockserver[test]' ({exc})")
    try:
        properties = Properties(min_poll_interval=min_poll_interval, polls_after_terminal=polls_after_terminal).without(
            *skip
        )
        options = FuzzOptions(
            command=list(command), examples=examples, seed=seed, time_limit=time_limit, out=out,
            env=_env_mapping(env), speed=speed, contract=contract, properties=properties, replay=replay,
            callback_ca=callback_ca,
        )  # fmt: skip
        console = Console()
        progress = ConsoleProgress(console, options)
        report = FuzzRun(options, on_event=progress.example).run()
    except (ContractError, FileProblem, ValueError) as exc:
        fail(str(exc))
    progress.summary(report)
    if json_path is not None:
        write_json(report, options, json_path)
    sys.exit(0 if report.ok else 1)


def _env_mapping(values: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--env")
        mapping[name] = value
    return mapping
