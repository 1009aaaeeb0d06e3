"""Signing in to the dashboard off loopback: the admin token, once, for a session cookie.

Wrong tokens count per client address in the runtime's `attempts.WrongTokens`, the same count as
the admin API's `Authorization: Bearer` tokens: past the limit, the form answers 429 too.
"""

from __future__ import annotations

import hmac
import math
import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mockserver.admin import SESSION_COOKIE, SESSION_SECONDS, UI, session_value
from mockserver.attempts import client_address, too_many
from mockserver.ui.base import DashboardBase


class SignIn(DashboardBase):
    """The sign-in form (off loopback, with an admin token) and sign-out."""

    async def sign_in(self, request: Request) -> Response:
        token = self.rt.settings.admin_token
        closed = token is None and not self.rt.settings.loopback
        target = request.query_params.get("next", UI)
        address = client_address(request.client)
        wrong_tokens = self.rt.wrong_tokens
        failed = False
        wait = wrong_tokens.wait(address)
        if request.method == "POST":
            form = await self._form(request)
            target = form.get("next", UI)
            if token is None:
                return self._back(request, target)  # open (loopback): nothing to sign in to
            if wait:
                return self._too_many(request, target, wait)
            failed = not hmac.compare_digest(form.get("token", "").strip().encode(), token.encode())
            if failed:
                wrong_tokens.wrong(address)
                wait = wrong_tokens.wait(address)
            else:
                wrong_tokens.forget(address)
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
        refusal = too_many(wait)
        if "text/html" in request.headers.get("accept", ""):
            page = self._page(
                request, "sign-in.html", status_code=429, title="Sign in", nav="", closed=False, target=target,
                failed=False, wait=math.ceil(wait), top=None, events="",
            )  # fmt: skip
            page.headers.update(refusal.headers)
            return page
        return refusal.response()

    async def sign_out(self, request: Request) -> Response:
        await self._form(request)
        response = RedirectResponse(f"{UI}/sign-in", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/__admin")
        return response
