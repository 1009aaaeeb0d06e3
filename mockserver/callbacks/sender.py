"""One delivery attempt over HTTP: a POST of the body, signed the Standard Webhooks way.

Headers: `webhook-id` (one per event: every attempt and copy of it keeps it), `webhook-timestamp`
(the wall clock in Unix seconds: a receiver checks it against its own, whatever the scenario's
clock reads) and, with a secret, `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`
made by the `standardwebhooks` library. A scripted bad signature is made with another secret.

The client follows no redirect (a 3xx is a failed attempt), ignores proxy settings in the
environment (a callback goes where its URL says, or nowhere), reads at most `ANSWER_LIMIT` bytes
of an answer, and trusts the system's certificates and `--callback-ca`'s.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import secrets
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ANSWER_LIMIT = 64 * 1024
_OTHER_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()  # a scripted bad signature's
USER_AGENT = "veo-mockserver-callbacks"


@dataclass(frozen=True)
class Outcome:
    status: int | None  # the receiver's, when it answered
    error: str | None  # why there was no answer (refused, timed out, TLS...)
    answer: bytes  # the first ANSWER_LIMIT bytes of its body
    duration_ms: float

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def check_secret(secret: str) -> None:
    """ValueError unless `secret` is a Standard Webhooks secret: `whsec_` and 24 to 64 bytes in
    base64 (the reference library takes almost anything, and a typo would sign with another key)."""
    if not secret.startswith("whsec_"):
        raise ValueError("--callback-secret must start with whsec_ (a Standard Webhooks secret: whsec_ and base64)")
    try:
        key = base64.b64decode(secret[len("whsec_") :], validate=True)
    except ValueError:
        raise ValueError(
            "--callback-secret is not whsec_ followed by base64 (A-Z, a-z, 0-9, +, /, = padding)"
        ) from None
    if not 24 <= len(key) <= 64:
        raise ValueError(
            f"--callback-secret holds {len(key)} bytes; Standard Webhooks secrets hold 24 to 64 "
            "(python -c \"import base64,os; print('whsec_'+base64.b64encode(os.urandom(32)).decode())\" makes one)"
        )


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<signature>` of a body, by the reference library."""
    from standardwebhooks import Webhook

    return Webhook(secret).sign(webhook_id, datetime.datetime.fromtimestamp(timestamp, datetime.UTC), body)


class Sender:
    def __init__(self, secret: str | None, ca: Path | None, concurrency: int, *, signed: bool = True) -> None:
        if secret is not None:
            check_secret(secret)  # a secret that cannot sign stops start-up, not a delivery
        self.secret = secret if signed else None
        context = ssl.create_default_context()
        if ca is not None:
            context.load_verify_locations(cafile=str(ca))
        self._context = context
        self._limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._client: httpx.AsyncClient | None = None

    def _ensure(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                verify=self._context, follow_redirects=False, trust_env=False, limits=self._limits
            )
        return self._client

    def headers(self, webhook_id: str, body: bytes, media: str, *, bad: bool) -> dict[str, str]:
        timestamp = int(time.time())
        headers = {
            "content-type": media,
            "user-agent": USER_AGENT,
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
        }
        if self.secret is not None or bad:
            secret = self.secret if self.secret is not None and not bad else _OTHER_SECRET
            headers["webhook-signature"] = signature(secret, webhook_id, timestamp, body)
        return headers

    async def send(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
        client = self._ensure()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):  # the whole attempt, however slowly the receiver drips
                async with client.stream("POST", url, content=body, headers=headers, timeout=timeout) as answer:
                    kept = bytearray()
                    async for chunk in answer.aiter_bytes():
                        kept += chunk[: ANSWER_LIMIT - len(kept)]
                        if len(kept) >= ANSWER_LIMIT:
                            break
                    status = answer.status_code
        except (httpx.TimeoutException, TimeoutError):
            return Outcome(None, f"no answer within {timeout:g} s", b"", _ms(started))
        except httpx.HTTPError as exc:
            return Outcome(
                None, f"{type(exc).__name__}: {str(exc)[:200] or 'the connection failed'}", b"", _ms(started)
            )
        except ssl.SSLError as exc:
            return Outcome(None, f"TLS: {str(exc)[:200]}", b"", _ms(started))
        return Outcome(status, None, bytes(kept), _ms(started))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
