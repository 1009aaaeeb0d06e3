"""`create_app(settings)`: the Starlette application of one fake server.

Routes: the provider API (`mockserver.api`), the admin API under `/__admin` (`mockserver.admin`).
Every error, including unknown routes, wrong methods and anything unexpected, is answered in the
provider's error shape, never as HTML or a stack trace.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from mockserver.admin import AdminApi
from mockserver.api import ProviderApi
from mockserver.errors import ApiError
from mockserver.journal import JournalMiddleware
from mockserver.runtime import Runtime
from mockserver.settings import Settings

ROUTES_HINT = (
    "The API has POST /v1/videos/generations and GET /v1/tasks/{task_id}; "
    "the admin API is under /__admin (see GET /__admin/health)."
)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    where = f"{request.method} {request.url.path[:200]}"
    if exc.status_code == 404:
        error = ApiError(404, f"No route for {where}. {ROUTES_HINT}", code="unknown_route")
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        error = ApiError(
            405, f"Method not allowed: {where}. Allowed: {allowed}.", code="method_not_allowed", headers=exc.headers
        )
    else:
        error = ApiError(exc.status_code, str(exc.detail), headers=exc.headers)
    return error.response()


async def _unexpected(request: Request, exc: Exception) -> Response:
    request.app.state.runtime.errors.append(exc)
    return ApiError(500, "The mock server failed unexpectedly; its log has the details.").response()


def create_app(settings: Settings | None = None) -> Starlette:
    runtime = Runtime(settings or Settings())
    app = Starlette(
        routes=[*ProviderApi(runtime).routes(), Mount("/__admin", routes=AdminApi(runtime).routes())],
        middleware=[Middleware(JournalMiddleware, journal=runtime.journal, now=runtime.clock.now)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _unexpected},
    )
    app.router.redirect_slashes = False  # a redirect would make a client re-send a billable submit
    app.state.runtime = runtime
    return app
