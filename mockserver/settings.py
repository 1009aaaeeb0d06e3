"""One settings object, built once (by the CLI from flags or `MOCKSERVER_*` variables, or by a
test), then passed down. Nothing else in the package reads the environment."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import scenarios as _shipped

SHIPPED_SCENARIOS = _shipped.DIRECTORY
MAX_BODY_BYTES = 1024 * 1024


def mask_url(url: str) -> str:
    """A URL with the password of its user part (and any password query parameter) replaced by
    ***. Plain string work, not a URL parser: a password may hold '#', '/', '?' or '@'."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    at = rest.rfind("@")
    if at >= 0:
        name, colon, _ = rest[:at].partition(":")
        rest = (f"{name}:***" if colon else "***") + rest[at:]
    base, mark, query = rest.partition("?")
    if mark:
        pairs = (item.partition("=") for item in query.split("&"))
        query = "&".join(
            f"{k}=***" if k.lower() in ("password", "pass", "pwd") and eq else f"{k}{eq}{v}" for k, eq, v in pairs
        )
        rest = f"{base}?{query}"
    return f"{scheme}://{rest}"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    contract: str = "seed"
    scenario_dirs: tuple[Path, ...] = ()
    shipped_scenarios: bool = True
    default_scenario: str = "default"
    keys: tuple[Path, ...] = ()
    api_keys: str = r"sk-\S+"  # the keys the fake accepts (a regular expression, matched whole)
    clock: Literal["real", "manual"] = "real"
    speed: float = 1.0
    clock_start: float | None = None
    seed: int | None = None
    public_url: str | None = None
    journal_size: int = 1000
    max_body_bytes: int = MAX_BODY_BYTES
    log_level: str = "info"
    access_log: bool = False  # one line per request on standard output (serve turns it on at info and debug)
    admin_token: str | None = field(default=None, repr=False)  # required by the admin API when set, and off loopback
    task_retention: float = 24 * 3600.0  # scenario seconds a finished task is kept
    header_timeout: float = 10.0  # real seconds a client may take to send a request's headers
    body_timeout: float = 30.0  # real seconds a client may take to send a request's body
    keep_alive_timeout: float = 5.0  # real seconds an idle keep-alive connection stays open
    max_connections: int = 1000  # open connections; more are answered 503 and closed
    gc_freeze: bool = False  # move long-lived tasks out of the cyclic GC (the server does; tests need not)
    store: str = field(default="memory", repr=False)  # "memory" or a redis:// URL (may hold a password)
    store_prefix: str = "mockserver"  # namespaces the keys of a shared store
    workers: int = 1  # server processes on one port (a shared store needs more than one)
    callback_secret: str | None = field(default=None, repr=False)  # signs callbacks (Standard Webhooks, whsec_...)
    callback_allow: tuple[str, ...] = ()  # hosts or networks callbacks may go to, besides loopback
    callback_ca: Path | None = None  # a certificate (PEM) to trust for HTTPS receivers, besides the system's
    callback_concurrency: int = 64  # delivery attempts in flight at once
    tracing: bool = False  # spans over OTLP/HTTP (the `otel` extra): serve turns it on when an OTLP endpoint is set
    metrics: bool = True  # count for GET /__admin/metrics and the dashboard's overview (mockserver.metrics)

    @property
    def loopback(self) -> bool:
        """Whether the fake listens on loopback only (then the admin API may stay open)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def store_display(self) -> str:
        """The store URL with its password masked, for logs, health and errors."""
        return mask_url(self.store)

    @property
    def scenario_directories(self) -> list[Path]:
        shipped = [SHIPPED_SCENARIOS] if self.shipped_scenarios else []
        return [*shipped, *self.scenario_dirs]
