"""Check real responses against the contract with schemathesis's own checks.

    validator = ResponseValidator(Contract.load("seed"))
    validator.validate(httpx_response)      # raises ContractViolation (an AssertionError)

Only responses to operations the contract describes are checked (a request to any other path
returns None from `operation_for`). The checks are schemathesis's: status code, content type,
response headers and response schema conformance. This module needs the `test` extra.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import schemathesis
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from contracts._contract import Contract

CHECKS = (status_code_conformance, content_type_conformance, response_headers_conformance, response_schema_conformance)


class ContractViolation(AssertionError):
    """A response does not conform to the contract; the message is schemathesis's report."""


def _with_readable_request(response: Any) -> Any:
    """schemathesis reads the request body; a streamed (chunked) one cannot be read again."""
    if not isinstance(response, httpx.Response):
        return response
    try:
        _ = response.request.content  # raises for a streamed request body
    except httpx.RequestNotRead:
        request = response.request
        replay = httpx.Request(request.method, request.url, headers=request.headers, content=b"(streamed body)")
        copy = httpx.Response(response.status_code, headers=response.headers, content=response.content, request=replay)
        copy.elapsed = response.elapsed
        return copy
    return response


class ResponseValidator:
    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.schema = schemathesis.openapi.from_dict(contract.document)
        self._routes = [
            (operation.method, operation.path_regex, operation.path) for operation in contract.operations.values()
        ]

    def operation_for(self, method: str, path: str) -> tuple[Any, dict[str, str]] | None:
        for route_method, regex, template in self._routes:
            match = regex.match(path)
            if match and route_method == method.upper():
                return self.schema[template][method.upper()], match.groupdict()
        return None

    def validate(self, response: Any) -> bool:
        """Check one response (httpx or requests). Returns False when the contract does not cover it;
        raises ContractViolation when it breaks the contract."""
        request = response.request
        found = self.operation_for(request.method, urlsplit(str(request.url)).path)
        if found is None:
            return False
        operation, path_parameters = found
        response = _with_readable_request(response)
        case = operation.Case(path_parameters=path_parameters)
        try:
            case.validate_response(response, checks=list(CHECKS))
        except FailureGroup as group:
            raise ContractViolation(str(group)) from None
        return True
