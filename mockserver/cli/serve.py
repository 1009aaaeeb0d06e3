"""`mockserver serve`: the fake on a port, until SIGTERM or Ctrl-C.

Every option can also come from a `MOCKSERVER_*` variable (named in `--help`); a flag wins over its
variable. A broken contract or scenario file stops `serve` before it listens, with the file, line
and field of the problem, and exit status 2.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from mockserver.cli.options import DEFAULTS, contract_option, fail, scenario_options
from mockserver.clock import MAX_SPEED
from mockserver.settings import Settings, mask_url

OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")  # OpenTelemetry's own


def _traces_to() -> str | None:
    """Where traces go, when the standard variables name an OTLP endpoint and the `otel` extra is
    installed. Without the extra, start-up says so (here, once, whatever the workers) and serving
    goes on: the variable is often set for every service of an environment, and a fake that
    refused to start over its traces would stop the tests it is there for."""
    variable = next((name for name in OTLP_ENDPOINTS if os.environ.get(name, "").strip()), None)
    if variable is None:
        return None  # nothing of OpenTelemetry is imported
    try:
        import mockserver.tracing  # noqa: F401
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("opentelemetry"):
            raise
        click.echo(
            f"mockserver: {variable} is set, but traces need the 'otel' extra (pip install 'veo-mockserver[otel]'): "
            "serving without traces",
            err=True,
        )
        return None
    endpoint = os.environ[variable].strip()
    return endpoint if variable == OTLP_ENDPOINTS[0] else endpoint.rstrip("/") + "/v1/traces"


@click.command()
@click.option("--host", default=DEFAULTS.host, show_default=True, envvar="MOCKSERVER_HOST", help="Interface to bind.")
@click.option(
    "--port", default=DEFAULTS.port, show_default=True, type=click.IntRange(0, 65535), envvar="MOCKSERVER_PORT"
)
@contract_option(
    "'seed', 'current' or the path of an OpenAPI document: requests are validated against it.",
    envvar="MOCKSERVER_CONTRACT",
)
@scenario_options
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
    "--metrics/--no-metrics",
    default=DEFAULTS.metrics,
    show_default=True,
    envvar="MOCKSERVER_METRICS",
    help="Count requests, tasks and client polls for GET /__admin/metrics (Prometheus) and the dashboard's overview.",
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
    metrics: bool,
    log_level: str,
) -> None:
    """Serve the fake API (and its admin API under /__admin)."""
    if workers > 1 and store == "memory":
        fail(
            f"--workers {workers} needs a shared store: with --store memory each worker would keep its own "
            "tasks, and a client would see its task vanish. Run Redis and add --store redis://HOST:6379/0"
        )
    traces_to = _traces_to()
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
        tracing=traces_to is not None,
        metrics=metrics,
    )
    from contracts import ContractError
    from mockserver import serving
    from mockserver.state import StoreUnavailable
    from mockserver.yamlfile import FileProblem

    try:
        app = serving.check(settings)
    except (ContractError, FileProblem, ValueError, StoreUnavailable) as exc:
        fail(f"cannot start: {exc}")
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
    if traces_to is not None:
        click.echo(f"mockserver: traces over OTLP/HTTP to {mask_url(traces_to)} (docs/tracing.md)", err=True)
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
    if settings.metrics:
        from mockserver.metrics import INSTALL_HINT, available

        if not available():
            click.echo(f"mockserver: no /__admin/metrics for Prometheus ({INSTALL_HINT} adds it)", err=True)
        elif workers > 1:
            click.echo(
                f"mockserver: metrics at http://{shown}:{port}/__admin/metrics, each worker its own (a scrape reaches "
                "one of them: run one worker per replica to scrape them all)",
                err=True,
            )
    if not settings.loopback and settings.admin_token is None:
        click.echo(
            f"mockserver: listening on {host}, not loopback: the admin API refuses every request "
            "until you set --admin-token (MOCKSERVER_ADMIN_TOKEN)",
            err=True,
        )
    serving.run(settings, app)
