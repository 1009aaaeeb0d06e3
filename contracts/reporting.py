"""Reporters for `mockserver check`: they consume the events of `contracts.deployment` and
write what a person or a CI system reads. None of them sees the token: the events are masked.

    ConsoleReporter   progress while running, then a summary and each failure with a curl line
    write_json        the whole report as JSON
    write_junit       one JUnit test case per probe, failures with their details
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from contracts.deployment import Event, Finding, Polled, ProbeFinished, ProbeStarted, Report, RunFinished


class ConsoleReporter:
    def __init__(self, console: Console) -> None:
        self.console = console
        self._status: Status | None = None

    def handle(self, event: Event) -> None:
        if isinstance(event, ProbeStarted):
            self._stop()
            self._status = self.console.status(f"{escape(event.description)} ...")
            self._status.start()
        elif isinstance(event, Polled):
            if self._status is not None:
                self._status.update(
                    escape(f"Following {event.task_id}: {event.status} {event.progress}% (poll {event.polls})")
                )
        elif isinstance(event, ProbeFinished):
            self._stop()
            result = event.result
            mark = "[green]ok    [/]" if result.ok else "[red]FAILED[/]"
            again = f", {result.repeats} repeated" if result.repeats else ""
            found = "" if result.ok else f" [red]({len(result.findings)} finding(s){again})[/]"
            self.console.print(f"{mark} {escape(result.description)}{found} [dim]{result.duration:.2f} s[/]")
        elif isinstance(event, RunFinished):
            self._stop()
            self.summary(event.report)

    def _stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def summary(self, report: Report) -> None:
        console = self.console
        for number, finding in enumerate(report.findings, start=1):
            console.rule(f"[red]Failure {number}[/]: {escape(finding.check)}")
            console.print(escape(_finding_text(finding)), soft_wrap=True)
        table = Table(
            title=f"mockserver check: {escape(report.base_url)} against the '{escape(report.contract)}' contract"
        )
        table.add_column("probes")
        table.add_column("passed")
        table.add_column("failed")
        table.add_column("tasks that may have been billed")
        table.add_column("time")
        passed = sum(1 for probe in report.probes if probe.ok)
        table.add_row(
            str(len(report.probes)),
            str(passed),
            str(len(report.probes) - passed),
            f"{report.spent} (budget {report.billable})",
            f"{report.duration:.2f} s",
        )
        console.print(table)
        console.print(
            "[green]The deployment keeps its contract.[/]"
            if report.ok
            else "[red]The deployment breaks its contract.[/]"
        )


def _finding_text(finding: Finding) -> str:
    exchange = finding.exchange
    answer = f"HTTP {exchange.status}" if exchange.status is not None else f"no answer ({exchange.error})"
    lines = [
        finding.message,
        "",
        f"Request:  {exchange.method} {exchange.url}",
        f"Received: {answer} {exchange.response[:500]}",
        f"Reproduce: {exchange.curl()}",
    ]
    return "\n".join(lines)


def report_dict(report: Report) -> dict:
    return {
        "base_url": report.base_url,
        "contract": report.contract,
        "ok": report.ok,
        "billable": report.billable,
        "spent": report.spent,
        "duration_s": round(report.duration, 3),
        "probes": [
            {
                "name": probe.name,
                "description": probe.description,
                "ok": probe.ok,
                "duration_s": round(probe.duration, 3),
                "exchanges": [asdict(exchange) | {"curl": exchange.curl()} for exchange in probe.exchanges],
                "findings": [
                    {"check": f.check, "message": f.message, "request": f"{f.exchange.method} {f.exchange.url}",
                     "status": f.exchange.status, "curl": f.exchange.curl()}
                    for f in probe.findings
                ],
            }
            for probe in report.probes
        ],
    }  # fmt: skip


def write_json(report: Report, path: Path) -> None:
    path.write_text(json.dumps(report_dict(report), indent=2) + "\n")


def write_junit(report: Report, path: Path) -> None:
    failures = sum(1 for probe in report.probes if not probe.ok)
    suite = ET.Element(
        "testsuite",
        name="mockserver check",
        tests=str(len(report.probes)),
        failures=str(failures),
        errors="0",
        time=f"{report.duration:.3f}",
    )
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="base_url", value=report.base_url)
    for probe in report.probes:
        case = ET.SubElement(
            suite, "testcase", classname=f"contract.{report.contract}", name=probe.name, time=f"{probe.duration:.3f}"
        )
        for finding in probe.findings:
            failure = ET.SubElement(case, "failure", message=finding.message[:500], type=finding.check)
            failure.text = _finding_text(finding)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
