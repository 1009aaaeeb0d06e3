"""Errors the fake answers with, always in the provider's shape.

    ApiError                      -> {"error": {"message", "type", "code"?, "param"?}}
      (status, type and code chosen where it is raised)

Every message says what was received, what was expected and what to do next. Scenario-file and
contract problems are not answered over HTTP: they stop the server at start-up
(`mockserver.scenarios.ScenarioError`, `contracts.ContractError`).
"""

from __future__ import annotations

from collections.abc import Mapping

from mockserver.responses import JsonResponse

STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found",
    405: "invalid_request_error",
    408: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    416: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "server_error",
    503: "service_unavailable_error",
    504: "server_error",
}


class ApiError(Exception):
    """An answer in the provider's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        message = message.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates on the wire
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or STATUS_TYPES.get(status, "invalid_request_error")
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def body(self) -> dict[str, dict[str, str]]:
        error = {"message": self.message, "type": self.type}
        if self.code is not None:
            error["code"] = self.code
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}

    def response(self) -> JsonResponse:
        return JsonResponse(self.body(), status_code=self.status, headers=self.headers)
