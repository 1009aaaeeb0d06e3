"""What `mockserver fuzz-client` shows while it runs and when it ends, and its JSON report."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from mockserver.fuzzclient import Example, Failure, FuzzOptions, FuzzReport


class ConsoleProgress:
    def __init__(self, console: Console, options: FuzzOptions) -> None:
        self.console = console
        self.options = options
        self.started = time.perf_counter()

    def example(self, example: Example) -> None:
        if example.phase == "replay":
            label = "replay"
        elif example.phase == "shrink":
            label = "shrinking"
        else:
            label = f"{example.number}/{self.options.examples}"
        mark = "[green]pass[/]" if example.passed else f"[red]FAIL {escape(example.broken[0].property)}[/]"
        kind = f"[cyan]\\[{escape(example.kind)}][/] " if example.kind else ""
        text = f"{kind}{escape(example.description)} [dim]{example.duration:.2f} s[/]"
        self.console.print(f"[dim]{label:>16}[/] {mark} {text}")

    def summary(self, report: FuzzReport) -> None:
        generated = [e for e in report.examples if e.number > 0]
        per_example = sum(e.duration for e in report.examples) / max(len(report.examples), 1)
        self.console.print(
            f"\n{len(report.examples)} run(s) in {report.duration:.1f} s, {per_example:.2f} s per run on average"
            + (f" ({len([e for e in generated if e.passed])} generated behaviours passed)" if generated else "")
        )
        missed = [kind for kind in report.classes if kind not in report.covered]
        if report.classes and report.failure is None:
            if missed:
                self.console.print(
                    f"[yellow]{len(report.covered)} of the {len(report.classes)} behaviour classes were played; not "
                    f"{escape(', '.join(missed))}. Give --examples {len(report.classes)} or more to cover them all.[/]"
                )
            else:
                self.console.print(f"All {len(report.classes)} behaviour classes were played.")
        if report.failure is None:
            self.console.print("[green]The client kept every property.[/]")
            return
        describe_failure(self.console, report.failure, report.flaky)


def _request_line(entry: dict[str, Any], t0: float) -> str:
    answer = f"{entry['status']}" if entry["status"] else "no answer"
    fault = f" [{entry['fault']}]" if entry.get("fault") else ""
    body = f" {entry['body'][:120]}" if entry["method"] == "POST" else ""
    return f"  +{entry['wall_time'] - t0:7.3f} s  {entry['method']:4} {entry['path']}  -> {answer}{fault}{body}"


def describe_failure(console: Console, failure: Failure, flaky: bool) -> None:
    broken = failure.broken[0]
    console.rule(f"[red]The client broke '{escape(broken.property)}'[/]")
    console.print(escape(broken.message))
    for other in failure.broken[1:]:
        console.print(f"[dim]Also broken: {escape(other.property)}: {escape(other.message)}[/]")
    if flaky:
        console.print("[yellow]The client did not fail the same way every time; this is the smallest failure seen.[/]")
    console.print(f"\nBehaviour: {escape(failure.behaviour['description'])}")
    entries = failure.run.entries
    t0 = entries[0]["wall_time"] if entries else 0.0
    console.print(f"\nThe client's requests ({len(entries)}):")
    for entry in entries[:40]:
        console.print(escape(_request_line(entry, t0)), soft_wrap=True)
    if len(entries) > 40:
        console.print(f"  ... {len(entries) - 40} more")
    exit_text = {
        "time-limit": "stopped at the time limit",
        "broken": "stopped as soon as the property broke",
    }.get(failure.run.stopped or "", f"exit status {failure.run.exit_code}")
    console.print(f"\nThe client's output ({exit_text}):")
    console.print(escape(failure.run.output[-2000:] or "(none)"), soft_wrap=True)
    if failure.scenario_file is not None:
        console.print(f"\nScenario written to {escape(str(failure.scenario_file))}. Replay it with:")
        console.print(escape(failure.replay), soft_wrap=True)


def write_json(report: FuzzReport, options: FuzzOptions, path: Path) -> None:
    failure = report.failure
    data: dict[str, Any] = {
        "ok": report.ok,
        "runs": len(report.examples),
        "duration_s": round(report.duration, 3),
        "seconds_per_run": round(sum(e.duration for e in report.examples) / max(len(report.examples), 1), 3),
        "command": options.command,
        "classes_covered": report.covered,
        "classes_not_covered": [kind for kind in report.classes if kind not in report.covered],
        "examples": [
            {"number": e.number, "phase": e.phase, "class": e.kind, "description": e.description, "passed": e.passed,
             "duration_s": round(e.duration, 3), "broken": [b.property for b in e.broken],
             "exit_code": e.run.exit_code if e.run else None, "stopped": e.run.stopped if e.run else None,
             "requests": len(e.run.entries) if e.run else None}
            for e in report.examples
        ],
        "failure": None,
    }  # fmt: skip
    if failure is not None:
        data["failure"] = {
            "broken": [{"property": b.property, "message": b.message, "evidence": b.evidence} for b in failure.broken],
            "behaviour": failure.behaviour,
            "scenario_file": str(failure.scenario_file) if failure.scenario_file else None,
            "replay": failure.replay,
            "exit_code": failure.run.exit_code,
            "output": failure.run.output,
            "requests": failure.run.entries,
            "flaky": report.flaky,
        }
    path.write_text(json.dumps(data, indent=2) + "\n")
