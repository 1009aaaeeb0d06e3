"""The worked examples of examples/contracts/ and their clients, as the tests run them: each client
unchanged, in its own process, against a real `mockserver serve`; and every answer the fake gave
checked against the example's contract with schemathesis's response checks."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

import httpx

from contracts import Contract
from contracts.conformance import ResponseValidator

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "examples" / "contracts"


def client_run(base_url: str, client: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run an example client (examples/contracts/clients/CLIENT) against `base_url`, polling fast."""
    env = {"BASE_URL": base_url, "API_KEY": "sk-example", "POLL_INTERVAL": "0.05", "MAX_WAIT": "20"}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / "clients" / client), *args],
        env={**os.environ, **env},
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def journal(base_url: str) -> list[dict]:
    """The fake's journal, oldest first."""
    return list(reversed(httpx.get(f"{base_url}/__admin/requests", params={"limit": 1000}).json()["requests"]))


def answers_conform(base_url: str, contract: Path) -> int:
    """Check every answer of the provider's routes in the fake's journal against `contract` with
    schemathesis's response checks; the number checked."""
    validator = ResponseValidator(Contract.load(contract))
    checked = 0
    for entry in journal(base_url):
        url = f"{base_url}{entry['path']}" + (f"?{entry['query']}" if entry.get("query") else "")
        request = httpx.Request(
            entry["method"], url, headers={"content-type": "application/json"}, content=entry["body"] or b""
        )
        response = httpx.Response(
            entry["status"], headers=entry["response_headers"], content=entry["response"].encode(), request=request
        )
        response.elapsed = datetime.timedelta(milliseconds=entry["duration_ms"] or 0)
        checked += validator.validate(response)
    return checked


def mockserver_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`mockserver ARGS...` in its own process, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "mockserver", *args], check=False, capture_output=True, text=True, timeout=600
    )
