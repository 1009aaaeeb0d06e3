"""Wrong admin tokens, counted per client address, for the admin API's guard and the dashboard's
sign-in form alike (one count per server process, kept by the runtime).

After `ATTEMPTS` wrong tokens within `WINDOW` real seconds (the machine's clock, not the scenario
clock), an address that sends a token is refused with 429 and Retry-After until the oldest of
them is `WINDOW` seconds old, the right token included: the token cannot be guessed at speed
through either door. An address is the connection's peer; an IPv6 one counts by its /64 (one
host or network holds all of one), an IPv4-mapped one as IPv4. At most `ADDRESSES` addresses are
remembered (the least recently seen is forgotten first), so the memory stays bounded whoever knocks.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict, deque
from collections.abc import Sequence
from time import monotonic

from mockserver.errors import ApiError

ATTEMPTS = 5  # wrong tokens an address may send within WINDOW
WINDOW = 60.0  # real seconds
ADDRESSES = 10_000  # addresses remembered at most


def client_address(client: Sequence[object] | None) -> str:
    """The key an ASGI `client` (host, port) counts under."""
    host = str(client[0]) if client else ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host  # a Unix socket, or a test client's name
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def too_many(wait: float) -> ApiError:
    """The 429 an address over the limit gets, in the provider's shape."""
    seconds = math.ceil(wait)
    return ApiError(
        429,
        f"Too many wrong admin tokens from this address: {ATTEMPTS} within {WINDOW:g} s. Try again in {seconds} s.",
        code="too_many_wrong_tokens",
        headers={"retry-after": str(seconds)},
    )


class WrongTokens:
    """The wrong tokens each client address sent within the window (their times on `monotonic`)."""

    def __init__(self, attempts: int = ATTEMPTS, window: float = WINDOW, addresses: int = ADDRESSES) -> None:
        self.attempts, self.window, self.addresses = attempts, window, addresses
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def wait(self, address: str) -> float:
        """Seconds until `address` may try again (0: now)."""
        times = self._seen.get(address)
        if times is None:
            return 0.0
        now = monotonic()
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._seen[address]
            return 0.0
        return times[0] + self.window - now if len(times) >= self.attempts else 0.0

    def wrong(self, address: str) -> None:
        times = self._seen.pop(address, None)
        if times is None:
            times = deque(maxlen=self.attempts)
            while len(self._seen) >= self.addresses:
                self._seen.popitem(last=False)  # the least recently seen address
        times.append(monotonic())
        self._seen[address] = times  # now the most recently seen

    def forget(self, address: str) -> None:
        self._seen.pop(address, None)

    def __len__(self) -> int:
        """The addresses remembered."""
        return len(self._seen)
