"""The `mockserver` command: serve the fake, list and validate scenarios.

Every `serve` option can also come from a `MOCKSERVER_*` variable (named in `--help`); a flag
wins over its variable. A broken contract or scenario file stops `serve` before it listens, with
the file, line and field of the problem, and exit status 2.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from contracts import Contract, ContractError
from mockserver import conformity, serving
from mockserver.clock import MAX_SPEED
from mockserver.journal import key_id
from mockserver.keymap import key_map_files, load_key_maps
from mockserver.media import Media
from mockserver.render import Renderer
from mockserver.scenarios import (
    KEYMAP_FILE,
    Scenario,
    ScenarioError,
    check_mixes,
    load_directories,
    load_file,
    scenario_files,
)
from mockserver.settings import SHIPPED_SCENARIOS, Settings
from mockserver.state import StoreUnavailable
from mockserver.yamlfile import FileProblem


def _scenario_options(command: Callable[..., Any]) -> Callable[..., Any]:
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


def _fail(message: str) -> None:
    click.echo(f"mockserver: {message}", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="veo-mockserver", prog_name="mockserver")
def main() -> None:
    """An offline fake of the veo-3.1-extend video generation API."""


DEFAULTS = Settings()


@main.command()
@click.option("--host", default=DEFAULTS.host, show_default=True, envvar="MOCKSERVER_HOST", help="Interface to bind.")
@click.option(
    "--port", default=DEFAULTS.port, show_default=True, type=click.IntRange(0, 65535), envvar="MOCKSERVER_PORT"
)
@click.option(
    "--contract",
    default=DEFAULTS.contract,
    show_default=True,
    envvar="MOCKSERVER_CONTRACT",
    help="'seed', 'current' or the path of an OpenAPI document: requests are validated against it.",
)
@_scenario_options
@click.option(
    "--scenario",
    "default_scenario",
    default=DEFAULTS.default_scenario,
    show_default=True,
    envvar="MOCKSERVER_SCENARIO",
    help="Scenario for tasks that no header or rule assigns.",
)
@click.option(
    "--speed",
    default=DEFAULTS.speed,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True, max=MAX_SPEED),
    envvar="MOCKSERVER_SPEED",
    help="Scenario seconds per real second (60 plays a 90 s lifecycle in 1.5 s).",
)
@click.option(
    "--clock",
    type=click.Choice(["real", "manual"]),
    default=DEFAULTS.clock,
    show_default=True,
    envvar="MOCKSERVER_CLOCK",
    help="'manual' stands still until POST /__admin/clock/advance moves it.",
)
@click.option(
    "--api-keys",
    default=DEFAULTS.api_keys,
    show_default=True,
    envvar="MOCKSERVER_API_KEYS",
    help="The API keys the fake accepts: a regular expression matched against the whole key; others get 401.",
)
@click.option(
    "--seed", type=int, default=None, envvar="MOCKSERVER_SEED", help="Seed for task ids and mixes (reproducible runs)."
)
@click.option(
    "--public-url",
    default=None,
    envvar="MOCKSERVER_PUBLIC_URL",
    help="Base of result URLs (default: the host the client called).",
)
@click.option(
    "--admin-token",
    default=None,
    envvar="MOCKSERVER_ADMIN_TOKEN",
    help="Token the admin API requires (Authorization: Bearer <token>). Required off loopback, where the "
    "admin API refuses every request without it. Prefer the variable: a flag shows in the process list.",
)
@click.option(
    "--task-retention",
    default=DEFAULTS.task_retention,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    envvar="MOCKSERVER_TASK_RETENTION",
    help="Scenario seconds a task is kept once finished (24 hours, as the provider keeps result URLs); then 404.",
)
@click.option(
    "--header-timeout",
    default=DEFAULTS.header_timeout,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    envvar="MOCKSERVER_HEADER_TIMEOUT",
    help="Seconds a client may take to send a request's headers (then 408).",
)
@click.option(
    "--body-timeout",
    default=DEFAULTS.body_timeout,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    envvar="MOCKSERVER_BODY_TIMEOUT",
    help="Seconds a client may take to send a request's body (then 408).",
)
@click.option(
    "--keep-alive-timeout",
    default=DEFAULTS.keep_alive_timeout,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    envvar="MOCKSERVER_KEEP_ALIVE_TIMEOUT",
    help="Seconds an idle keep-alive connection stays open.",
)
@click.option(
    "--max-connections",
    default=DEFAULTS.max_connections,
    show_default=True,
    type=click.IntRange(1),
    envvar="MOCKSERVER_MAX_CONNECTIONS",
    help="Open connections at most; more are answered 503 and closed.",
)
@click.option(
    "--journal-size",
    default=DEFAULTS.journal_size,
    show_default=True,
    type=click.IntRange(1),
    envvar="MOCKSERVER_JOURNAL_SIZE",
)
@click.option(
    "--store",
    default=DEFAULTS.store,
    show_default=True,
    envvar="MOCKSERVER_STORE",
    help="Where the state lives: 'memory' (this process) or redis://[:PASSWORD@]HOST:PORT/DB (also rediss://), "
    "shared by every replica and worker on it. Prefer the variable for a URL with a password.",
)
@click.option(
    "--store-prefix",
    default=DEFAULTS.store_prefix,
    show_default=True,
    envvar="MOCKSERVER_STORE_PREFIX",
    help="Namespace of the keys in a shared store: fakes with different prefixes share one Redis without seeing each other.",
)
@click.option(
    "--workers",
    default=DEFAULTS.workers,
    show_default=True,
    type=click.IntRange(1, 64),
    envvar="MOCKSERVER_WORKERS",
    help="Server processes on this port (more than 1 needs --store redis://...).",
)
@click.option(
    "--callback-secret",
    default=None,
    envvar="MOCKSERVER_CALLBACK_SECRET",
    help="Sign every callback the Standard Webhooks way with this secret (whsec_ and base64). "
    "Prefer the variable: a secret on a command line is seen by others on the machine.",
)
@click.option(
    "--callback-allow",
    default="",
    envvar="MOCKSERVER_CALLBACK_ALLOW",
    help="Where callbacks may go besides loopback: host names, addresses and networks, comma-separated "
    "(hooks.qa.example,10.0.0.0/8). Others are refused and never contacted.",
)
@click.option(
    "--callback-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    envvar="MOCKSERVER_CALLBACK_CA",
    help="A CA certificate (PEM) to trust for HTTPS receivers, besides the system's.",
)
@click.option(
    "--callback-concurrency",
    default=DEFAULTS.callback_concurrency,
    show_default=True,
    type=click.IntRange(1, 1024),
    envvar="MOCKSERVER_CALLBACK_CONCURRENCY",
    help="Callback delivery attempts in flight at once, per server process.",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    envvar="MOCKSERVER_ACCESS_LOG",
    help="A line per request on standard output (at --log-level info or debug), written in batches off the event loop.",
)
@click.option(
    "--log-level",
    default=DEFAULTS.log_level,
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    envvar="MOCKSERVER_LOG_LEVEL",
)
def serve(
    host: str,
    port: int,
    contract: str,
    scenario_dirs: tuple[Path, ...],
    key_files: tuple[Path, ...],
    no_shipped: bool,
    default_scenario: str,
    speed: float,
    clock: str,
    api_keys: str,
    seed: int | None,
    public_url: str | None,
    admin_token: str | None,
    task_retention: float,
    header_timeout: float,
    body_timeout: float,
    keep_alive_timeout: float,
    max_connections: int,
    journal_size: int,
    store: str,
    store_prefix: str,
    workers: int,
    callback_secret: str | None,
    callback_allow: str,
    callback_ca: Path | None,
    callback_concurrency: int,
    access_log: bool,
    log_level: str,
) -> None:
    """Serve the fake API (and its admin API under /__admin)."""
    if workers > 1 and store == "memory":
        _fail(
            f"--workers {workers} needs a shared store: with --store memory each worker would keep its own "
            "tasks, and a client would see its task vanish. Run Redis and add --store redis://HOST:6379/0"
        )
    settings = Settings(
        host=host,
        port=port,
        contract=contract,
        scenario_dirs=scenario_dirs,
        shipped_scenarios=not no_shipped,
        default_scenario=default_scenario,
        keys=key_files,
        api_keys=api_keys,
        clock=clock,  # type: ignore[arg-type]
        speed=speed,
        seed=seed,
        public_url=public_url,
        admin_token=admin_token or None,
        task_retention=task_retention,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        keep_alive_timeout=keep_alive_timeout,
        max_connections=max_connections,
        gc_freeze=True,
        journal_size=journal_size,
        store=store,
        store_prefix=store_prefix,
        workers=workers,
        callback_secret=callback_secret or None,
        callback_allow=tuple(entry.strip() for entry in callback_allow.split(",") if entry.strip()),
        callback_ca=callback_ca,
        callback_concurrency=callback_concurrency,
        log_level=log_level,
        access_log=access_log and log_level in ("info", "debug"),
    )
    try:
        app = serving.check(settings)
    except (ContractError, FileProblem, ValueError, StoreUnavailable) as exc:
        _fail(f"cannot start: {exc}")
    runtime = app.state.runtime
    where = "memory" if store == "memory" else f"{settings.store_display} (prefix {store_prefix!r})"
    click.echo(
        f"mockserver: contract {runtime.contract.version!r} ({runtime.contract.path}), "
        f"{len(runtime.scenarios)} scenarios, default {settings.default_scenario!r}, "
        f"clock {clock} x{speed:g}, store {where}" + (f", {workers} workers" if workers > 1 else ""),
        err=True,
    )
    if runtime.left_out_reasons:
        click.echo(
            f"mockserver: {len(runtime.left_out_reasons)} shipped scenarios left out, as this contract cannot play them: "
            f"{', '.join(sorted(runtime.left_out_reasons))}; their keys in the shipped keys.yaml get the default "
            f"scenario (why: mockserver scenarios validate --contract {runtime.contract.path})",
            err=True,
        )
    spec = runtime.contract.shapes.callbacks
    if spec is not None:
        dispatcher = runtime.callbacks
        signing = (
            "signed (Standard Webhooks)" if dispatcher.signed
            else "unsigned (the contract says signing: none)" if settings.callback_secret
            else "unsigned (--callback-secret signs them)"
        )  # fmt: skip
        click.echo(
            f"mockserver: callbacks to {dispatcher.destinations.describe()}, {signing}, "
            f"events {', '.join(sorted(spec.events))}, {spec.timeout:g} s to answer, "
            f"retries after {', '.join(f'{wait:g}' for wait in spec.retries) or 'none'} s of scenario time",
            err=True,
        )
    if getattr(runtime.state, "took_over", False):
        click.echo(
            "mockserver: no live replica played what this one plays: it took over the store (its tasks stay)", err=True
        )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    try:
        import jinja2  # noqa: F401  # the `ui` extra

        click.echo(f"mockserver: dashboard at http://{shown}:{port}/__admin/ui", err=True)
    except ImportError:
        click.echo("mockserver: no dashboard (pip install 'veo-mockserver[ui]' adds it at /__admin/ui)", err=True)
    if not settings.loopback and settings.admin_token is None:
        click.echo(
            f"mockserver: listening on {host}, not loopback: the admin API refuses every request "
            "until you set --admin-token (MOCKSERVER_ADMIN_TOKEN)",
            err=True,
        )
    serving.run(settings, app)


@main.command()
@click.option(
    "--base-url", required=True, help="The deployment to check, e.g. https://api.foxapi.cc or http://127.0.0.1:8000."
)
@click.option(
    "--token",
    envvar="MOCKSERVER_CHECK_TOKEN",
    help="The API key to use. Prefer the MOCKSERVER_CHECK_TOKEN variable: a flag shows in the process list.",
)
@click.option(
    "--contract",
    default=DEFAULTS.contract,
    show_default=True,
    help="'seed', 'current' or the path of an OpenAPI document.",
)
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
    try:
        from contracts.deployment import CheckAborted, DeploymentCheck, RunFinished
        from contracts.reporting import ConsoleReporter, write_json, write_junit
    except ImportError as exc:  # pragma: no cover - depends on how the package was installed
        _fail(f"mockserver check needs schemathesis: pip install 'veo-mockserver[check]' ({exc})")
    if not token:
        _fail("no API key: set MOCKSERVER_CHECK_TOKEN (or pass --token)")
    if not re.fullmatch(r"[\x21-\x7e]+", token):
        _fail("the API key has spaces, control or non-ASCII characters (a stray newline from a file?); it is not shown")
    try:
        loaded = Contract.load(contract)
        runner = DeploymentCheck(
            base_url, token, loaded, billable=billable, poll_interval=poll_interval, max_wait=max_wait,
            video_url=video_url, timeout=timeout,
        )  # fmt: skip
    except (ContractError, ValueError) as exc:
        _fail(str(exc))
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
        _fail(str(exc))
    finally:
        # Even a run that crashed leaves its reports: they list what was sent, and what may have been billed.
        if junit_path is not None:
            write_junit(runner.report, junit_path)
        if json_path is not None:
            write_json(runner.report, json_path)
    sys.exit(0 if finished and runner.report.ok else 1)


def _env_mapping(values: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--env")
        mapping[name] = value
    return mapping


@main.command()
@click.option(
    "--target",
    help="The deployment to record, e.g. https://api.foxapi.cc: point the application at the recorder instead.",
)
@click.option(
    "--from-har",
    "har",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Record from a HAR 1.2 file instead of a live target.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The scenario folder to write (new or empty).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Where the recorder listens.")
@click.option("--port", default=8001, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--contract",
    default="seed",
    show_default=True,
    help=(
        "The target's contract (seed, current or a path): which requests are recorded, how its tasks read, "
        "what it is held to."
    ),
)
@click.option(
    "--keep-result-urls",
    is_flag=True,
    help="Keep the target's result URLs (credential-looking query parameters redacted) instead of the fake's video.",
)
@click.option("--redact-prompts", is_flag=True, help="Do not keep the prompts.")
@click.option(
    "--callback-base",
    help=(
        "Where the target reaches the recorder for callbacks (default http://HOST:PORT): a submission's callback "
        "URL becomes <this>/__record/callbacks/<token>, forwarded to the application's."
    ),
)
@click.option(
    "--callback-late-after",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0, 86400),
    help="Seconds after a poll showed a state from which its callback is recorded as late.",
)
def record(
    target: str | None,
    har: Path | None,
    out: Path,
    host: str,
    port: int,
    contract: str,
    keep_result_urls: bool,
    redact_prompts: bool,
    callback_base: str | None,
    callback_late_after: float,
) -> None:
    """Record what a deployment does into a scenario folder that replays it offline.

    A recording proxy (--target) or a HAR file (--from-har). The folder gets one scenario per
    submission and `recorded`, which replays the session in order:
    mockserver serve --scenarios DIR --scenario recorded. No key or cookie is ever written."""
    from mockserver.record.har import HarError, read_har
    from mockserver.record.model import Recording
    from mockserver.record.proxy import RecordingProxy, probe, serve

    console = Console(stderr=True, highlight=False)
    if (target is None) == (har is None):
        _fail("say what to record: --target URL (a live deployment) or --from-har FILE.har, not both")
    if out.exists() and any(out.iterdir()):
        _fail(f"--out {out} is not empty: give a new or empty folder, so that one recording is not mixed with another")
    try:
        loaded = Contract.load(contract)
    except ContractError as exc:
        _fail(str(exc))

    def warn(message: str) -> None:
        console.print(f"[yellow]warning:[/] {escape(message)}")

    if target:  # what is written and shown of the target: no user, password, query or fragment
        parts = urlsplit(target)
        netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        source = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    else:
        source = f"HAR file {har.name}"  # type: ignore[union-attr]
    recording = Recording(
        out, loaded, source, keep_result_urls=keep_result_urls, redact_prompts=redact_prompts,
        late_after=callback_late_after, warn=warn,
    )  # fmt: skip
    if har is not None:
        try:
            skipped = read_har(har, recording)
        except HarError as exc:
            _fail(f"cannot record from {har}: {exc}")
        if not any(r.submit.kind == "json" for r in recording.submissions):
            _fail(f"cannot record from {har}: no submission in it got a JSON answer")
        recording.write()
        for reason, count in sorted(skipped.items()):
            console.print(f"skipped {count} entr{'y' if count == 1 else 'ies'}: {reason}")
    else:
        if not target.startswith(("http://", "https://")):  # type: ignore[union-attr]
            _fail(f"--target must be an http(s) URL, got {target!r}")
        reason = probe(source)
        if reason is not None:
            _fail(f"cannot reach --target {source}: {reason}")
        if callback_base is not None and not callback_base.startswith(("http://", "https://")):
            _fail(f"--callback-base must be an http(s) URL, got {callback_base!r}")
        reached_at = callback_base or f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
        say: Callable[[str], None] = console.print
        proxy = RecordingProxy(target, recording, say, callback_base=reached_at)  # type: ignore[arg-type]
        console.print(
            f"Recording {escape(source)} into {out}/: point the application at http://{host}:{port} (Ctrl-C to stop)"
        )
        if proxy.callback_base is not None:
            console.print(
                f"Callbacks: the target is told to deliver to {escape(proxy.callback_base)}/__record/callbacks/..., "
                "forwarded to the application's URL (--callback-base if the target cannot reach that)"
            )
        serve(proxy, host, port)
        if not recording.submissions:
            console.print("Nothing was recorded: no submission went through the recorder.")
            sys.exit(1)
        if not any(r.submit.kind == "json" for r in recording.submissions):
            for name in list(recording.written):
                (out / name).unlink(missing_ok=True)
            _fail(f"the target never answered a submission with JSON: is {source} the API? Nothing was kept")
        recording.write()
    problems = _check_folder(out, loaded)
    if problems:
        _fail(f"the recording in {out} does not validate (a bug in the recorder): {problems}")
    tasks = sum(1 for r in recording.submissions if r.task_id)
    served = "" if contract == "seed" else f"--contract {contract} "  # serve's default is seed too
    console.print(
        f"Recorded {len(recording.submissions)} submission(s), {tasks} task(s), into {out}/ "
        f"({len(recording.written)} files). Replay: mockserver serve {served}--scenarios {out} --scenario recorded"
    )


def _shipped_report(contract: Contract, renderer: Renderer) -> None:
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


def _check_folder(folder: Path, contract: Contract) -> str | None:
    """None when every scenario in `folder` loads and plays under `contract`, else the problem."""
    try:
        scenarios = load_directories([SHIPPED_SCENARIOS, folder], contract.shapes.vocabulary)
        renderer = Renderer(contract, Media())
        _, lenient = conformity.leave_out(scenarios, contract, renderer, SHIPPED_SCENARIOS)
        conformity.check(scenarios, contract, renderer, lenient=lenient)
    except (FileProblem, ScenarioError, ValueError) as exc:
        return str(exc)
    return None


@main.command("fuzz-client", context_settings={"allow_interspersed_args": False})
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
@click.option(
    "--contract",
    default=DEFAULTS.contract,
    show_default=True,
    help="'seed', 'current' or the path of an OpenAPI document.",
)
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
    try:
        from contracts.client_properties import Properties
        from mockserver.fuzzclient import FuzzOptions, FuzzRun
        from mockserver.fuzzreport import ConsoleProgress, write_json
    except ImportError as exc:  # pragma: no cover - depends on how the package was installed
        _fail(f"mockserver fuzz-client needs hypothesis: pip install 'veo-mockserver[test]' ({exc})")
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
        _fail(str(exc))
    progress.summary(report)
    if json_path is not None:
        write_json(report, options, json_path)
    sys.exit(0 if report.ok else 1)


@main.group()
def scenarios() -> None:
    """List and validate scenario files."""


@scenarios.command("list")
@_scenario_options
@click.option(
    "--contract",
    default=DEFAULTS.contract,
    show_default=True,
    help="The contract whose status words the scenarios may use ('seed', 'current' or a path).",
)
def list_scenarios(
    scenario_dirs: tuple[Path, ...], key_files: tuple[Path, ...], no_shipped: bool, contract: str
) -> None:
    """Show every scenario the server would load, with its description."""
    settings = Settings(scenario_dirs=scenario_dirs, shipped_scenarios=not no_shipped, keys=key_files)
    sources: dict[str, Path] = {}
    try:
        vocabulary = Contract.load(contract).shapes.vocabulary
    except ContractError as exc:
        _fail(str(exc))
    try:
        loaded = load_directories(settings.scenario_directories, vocabulary)
        keys = load_key_maps(key_map_files(settings.scenario_directories, settings.keys), loaded, sources)
    except FileProblem as exc:
        _fail(str(exc))
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
@click.option(
    "--contract",
    default=DEFAULTS.contract,
    show_default=True,
    help="Check the scripted answers against this contract too ('seed', 'current' or a path).",
)
def validate_scenarios(paths: tuple[Path, ...], contract: str) -> None:
    """Check scenario files (or folders of them); exit 1 if any is invalid.

    Mixes may name shipped scenarios as well as the ones given here. With no PATHS, say which
    shipped scenarios CONTRACT can play and why not the others (`serve` leaves those out)."""
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
        _fail(str(exc))
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
