"""Where callbacks may go: loopback, and the hosts and networks `--callback-allow` names.

A destination is checked before every attempt: its scheme (http or https), its host by name or,
once resolved, by every address it resolves to. A refused destination is never contacted: the
attempt is recorded as refused, with the reason. (A name that resolves to an allowed address
when checked and to another when connected is the resolver's doing; a shared environment that
fears it names addresses, not hosts.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK: tuple[IpNetwork, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class Destinations:
    def __init__(self, allow: tuple[str, ...] = ()) -> None:
        """`allow`: host names (`hooks.qa.example`), addresses or networks (`10.1.2.3`,
        `10.0.0.0/8`); ValueError for an entry that is none of these."""
        self.networks: list[IpNetwork] = list(LOOPBACK)
        self.hosts: set[str] = {"localhost"}
        for entry in allow:
            entry = entry.strip()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not entry.replace("-", "").replace(".", "").isalnum():
                    raise ValueError(
                        f"--callback-allow {entry!r} is not a host name, an address or a network (10.0.0.0/8)"
                    ) from None
                self.hosts.add(entry.lower().rstrip("."))

    def describe(self) -> str:
        return ", ".join([*sorted(self.hosts), *(str(network) for network in self.networks)])

    async def refusal(self, url: str) -> str | None:
        """Why a callback may not go to `url`, or None."""
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port
        except ValueError as exc:
            return f"the URL cannot be read: {exc}"
        if parts.scheme not in ("http", "https"):
            return f"only http and https URLs are called, not {parts.scheme or 'one without a scheme'}"
        if not host:
            return "the URL has no host"
        name = host.lower().rstrip(".")
        if name in self.hosts:
            return None
        try:
            address = ipaddress.ip_address(name)
            addresses = {address}
        except ValueError:
            try:
                found = await asyncio.get_running_loop().getaddrinfo(name, port or 443, type=socket.SOCK_STREAM)
            except OSError as exc:
                return f"{name} does not resolve ({exc.strerror or exc})"
            addresses = {ipaddress.ip_address(str(item[4][0]).split("%")[0]) for item in found}
        outside = sorted(str(address) for address in addresses if not any(address in net for net in self.networks))
        if outside:
            shown = name if outside == [name] else f"{name} ({', '.join(outside)})"
            return (
                f"{shown} is not an allowed destination: callbacks go to loopback, and to the hosts "
                f"and networks --callback-allow names (now: {self.describe()})"
            )
        return None
