"""`mockserver record`: what a deployment does, into a scenario folder that replays it offline."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import click

from mockserver.cli.options import contract_option, fail

if TYPE_CHECKING:
    from contracts import Contract


@click.command()
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
@contract_option(
    "The target's contract (seed, current or a path): which requests are recorded, how its tasks read, "
    "what it is held to."
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
    from rich.console import Console
    from rich.markup import escape

    from contracts import Contract, ContractError
    from mockserver.record.har import HarError, read_har
    from mockserver.record.model import Recording
    from mockserver.record.proxy import RecordingProxy, probe, serve

    console = Console(stderr=True, highlight=False)
    if (target is None) == (har is None):
        fail("say what to record: --target URL (a live deployment) or --from-har FILE.har, not both")
    if out.exists() and any(out.iterdir()):
        fail(f"--out {out} is not empty: give a new or empty folder, so that one recording is not mixed with another")
    try:
        loaded = Contract.load(contract)
    except ContractError as exc:
        fail(str(exc))

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
            fail(f"cannot record from {har}: {exc}")
        if not any(r.submit.kind == "json" for r in recording.submissions):
            fail(f"cannot record from {har}: no submission in it got a JSON answer")
        recording.write()
        for why, count in sorted(skipped.items()):
            console.print(f"skipped {count} entr{'y' if count == 1 else 'ies'}: {why}")
    else:
        if not target.startswith(("http://", "https://")):  # type: ignore[union-attr]
            fail(f"--target must be an http(s) URL, got {target!r}")
        reason = probe(source)
        if reason is not None:
            fail(f"cannot reach --target {source}: {reason}")
        if callback_base is not None and not callback_base.startswith(("http://", "https://")):
            fail(f"--callback-base must be an http(s) URL, got {callback_base!r}")
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
            fail(f"the target never answered a submission with JSON: is {source} the API? Nothing was kept")
        recording.write()
    problems = _check_folder(out, loaded)
    if problems:
        fail(f"the recording in {out} does not validate (a bug in the recorder): {problems}")
    tasks = sum(1 for r in recording.submissions if r.task_id)
    served = "" if contract == "seed" else f"--contract {contract} "  # serve's default is seed too
    console.print(
        f"Recorded {len(recording.submissions)} submission(s), {tasks} task(s), into {out}/ "
        f"({len(recording.written)} files). Replay: mockserver serve {served}--scenarios {out} --scenario recorded"
    )


def _check_folder(folder: Path, contract: Contract) -> str | None:
    """None when every scenario in `folder` loads and plays under `contract`, else the problem."""
    from mockserver import conformity
    from mockserver.media import Media
    from mockserver.render import Renderer
    from mockserver.scenarios import ScenarioError, load_directories
    from mockserver.settings import SHIPPED_SCENARIOS
    from mockserver.yamlfile import FileProblem

    try:
        scenarios = load_directories([SHIPPED_SCENARIOS, folder], contract.shapes.vocabulary)
        renderer = Renderer(contract, Media())
        _, lenient = conformity.leave_out(scenarios, contract, renderer, SHIPPED_SCENARIOS)
        conformity.check(scenarios, contract, renderer, lenient=lenient)
    except (FileProblem, ScenarioError, ValueError) as exc:
        return str(exc)
    return None
