"""Signing in to the dashboard off loopback: the admin token, once, for a session cookie.

Wrong tokens are limited per client address: after `ATTEMPTS` wrong ones within `WINDOW` real
seconds (the machine's clock, not the scenario clock), the address is refused with 429 and
Retry-After until the oldest of them is `WINDOW` seconds old, the right token included, so the
token cannot be guessed at speed. At most `ADDRESSES` addresses are remembered (the least recently
seen is forgotten first), so the limiter's memory stays bounded whoever knocks.
"""

from __future__ import annotations

import hmac
import math
import time
from collections import OrderedDict, deque
from time import monotonic

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mockserver.admin import SESSION_COOKIE, SESSION_SECONDS, UI, session_value
from mockserver.errors import ApiError
from mockserver.runtime import Runtime
from mockserver.ui.base import DashboardBase

ATTEMPTS = 5  # wrong tokens an address may send within WINDOW
WINDOW = 60.0  # real seconds
ADDRESSES = 10_000  # addresses remembered at most


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


class SignIn(DashboardBase):
    """The sign-in form (off loopback, with an admin token) and sign-out."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.wrong_tokens = WrongTokens()

    async def sign_in(self, request: Request) -> Response:
        token = self.rt.settings.admin_token
        closed = token is None and not self.rt.settings.loopback
        target = request.query_params.get("next", UI)
        address = request.client.host if request.client else ""
        failed = False
        wait = self.wrong_tokens.wait(address)
        if request.method == "POST":
            form = await self._form(request)
            target = form.get("next", UI)
            if token is None:
                return self._back(request, target)  # open (loopback): nothing to sign in to
            if wait:
                return self._too_many(request, target, wait)
            failed = not hmac.compare_digest(form.get("token", "").strip().encode(), token.encode())
            if failed:
                self.wrong_tokens.wrong(address)
                wait = self.wrong_tokens.wait(address)
            else:
                self.wrong_tokens.forget(address)
        if request.method == "GET" or failed:  # 200 even when it failed: a browser logs a 4xx page as an error
            return self._page(
                request, "sign-in.html", title="Sign in", nav="", closed=closed, target=target, failed=failed,
                wait=math.ceil(wait), top=None, events="",
            )  # fmt: skip
        assert token is not None
        response = self._back(request, target)
        response.set_cookie(
            SESSION_COOKIE, session_value(token.encode(), int(time.time())), max_age=SESSION_SECONDS,
            path="/__admin", httponly=True, samesite="strict", secure=self._secure(request),
        )  # fmt: skip
        return response

    def _too_many(self, request: Request, target: str, wait: float) -> Response:
        """429 with Retry-After: the sign-in page for a browser, the provider's error shape for others."""
        seconds = math.ceil(wait)
        headers = {"retry-after": str(seconds)}
        if "text/html" in request.headers.get("accept", ""):
            page = self._page(
                request, "sign-in.html", status_code=429, title="Sign in", nav="", closed=False, target=target,
                failed=False, wait=seconds, top=None, events="",
            )  # fmt: skip
            page.headers.update(headers)
            return page
        return ApiError(
            429,
            f"Too many wrong tokens from this address: {ATTEMPTS} within {WINDOW:g} s. Try again in {seconds} s.",
            code="too_many_sign_in_attempts",
            headers=headers,
        ).response()

    async def sign_out(self, request: Request) -> Response:
        await self._form(request)
        response = RedirectResponse(f"{UI}/sign-in", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/__admin")
        return response
