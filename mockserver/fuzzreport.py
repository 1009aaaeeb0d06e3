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
        delivered = f" [dim]callbacks: {escape(callbacks_summary(example.callbacks))}[/]" if example.callbacks else ""
        text = f"{kind}{escape(example.description)} [dim]{example.duration:.2f} s[/]{delivered}"
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
        if report.callbacks_note:
            self.console.print(escape(report.callbacks_note))
        if report.failure is None:
            self.console.print("[green]The client kept every property.[/]")
            return
        describe_failure(self.console, report.failure, report.flaky)


def _request_line(entry: dict[str, Any], t0: float) -> str:
    answer = f"{entry['status']}" if entry["status"] else "no answer"
    fault = f" [{entry['fault']}]" if entry.get("fault") else ""
    body = f" {entry['body'][:120]}" if entry["method"] == "POST" else ""
    return f"  +{entry['wall_time'] - t0:7.3f} s  {entry['method']:4} {entry['path']}  -> {answer}{fault}{body}"


def callbacks_summary(attempts: list[dict[str, Any]]) -> str:
    """A run's delivery attempts in a few words: `delivered 1, retrying 2 (HTTP 500 x2)`."""
    counts: dict[str, int] = {}
    answers: dict[str, int] = {}
    for attempt in attempts:
        counts[attempt["outcome"]] = counts.get(attempt["outcome"], 0) + 1
        if attempt["outcome"] in ("retrying", "failed"):
            said = f"HTTP {attempt['status']}" if attempt["status"] else (attempt["error"] or "no answer")[:40]
            answers[said] = answers.get(said, 0) + 1
    text = ", ".join(f"{outcome} {count}" for outcome, count in counts.items())
    if answers:
        text += " (" + ", ".join(f"{said} x{count}" if count > 1 else said for said, count in answers.items()) + ")"
    return text


def _attempt_line(attempt: dict[str, Any], t0: float) -> str:
    answer = f"HTTP {attempt['status']}" if attempt["status"] else (attempt["error"] or "no answer")
    copy = f" copy {attempt['copy']}" if attempt.get("copy", 1) > 1 else ""
    return (
        f"  +{attempt['wall_time'] - t0:7.3f} s  {attempt['event']:9} attempt {attempt['attempt']}{copy}  "
        f"{attempt['webhook_id']}  -> {answer} ({attempt['outcome']})"
    )


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
    attempts = failure.run.attempts
    if attempts:
        console.print(f"\nThe callbacks the fake sent to the client's receiver ({len(attempts)} attempts):")
        for attempt in attempts[:20]:
            console.print(escape(_attempt_line(attempt, t0)), soft_wrap=True)
    pending = [d for d in failure.run.pending if d["due"] > failure.run.now]
    for delivery in pending[:3]:
        wait = delivery["due"] - failure.run.now
        console.print(
            escape(f"  still to come: {delivery['event']} {wait:.0f} scenario seconds after the client ended")
        )
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
             "requests": len(e.run.entries) if e.run else None, "callbacks": e.callbacks}
            for e in report.examples
        ],
        "callbacks_note": report.callbacks_note,
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
            "callbacks": failure.run.callbacks,
            "flaky": report.flaky,
        }
    path.write_text(json.dumps(data, indent=2) + "\n")
