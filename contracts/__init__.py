"""The OpenAPI contract of the veo-3.1-extend task API: the single source of truth.

`openapi/seed.yaml` and `openapi/current.yaml` describe the two versions of the provider's model
page; `openapi/common.yaml` holds what they share. Load one with `Contract.load("seed")`,
`Contract.load("current")` or `Contract.load(path)`: the result is bundled into one
self-contained document and its request validators are compiled once; `contract.shapes` holds
the submit and query operations it finds and the shapes of their answers (`contracts._shape`),
from which the fake renders every answer.
"""

from contracts._contract import Contract, Operation, ResponseSpec, Violation, best_error, describe_error
from contracts._document import BUILTIN_NAMES, ContractError, load_document

__all__ = [
    "BUILTIN_NAMES",
    "Contract",
    "ContractError",
    "Operation",
    "ResponseSpec",
    "Violation",
    "best_error",
    "describe_error",
    "load_document",
]
