"""The OpenAPI contract of the veo-3.1-extend task API: the single source of truth.

`openapi/seed.yaml` and `openapi/current.yaml` describe the two versions of the provider's model
page; `openapi/common.yaml` holds what they share. Load one with `Contract.load("seed")`,
`Contract.load("current")` or `Contract.load(path)`: the result is bundled into one
self-contained document and its request validators are compiled once; `contract.shapes` holds
the submit and query operations it finds and the shapes of their answers (`Node` trees), from
which the fake renders every answer.
"""

from contracts._contract import Contract, Operation, ResponseSpec, Violation, best_error, describe_error
from contracts._document import BUILTIN_NAMES, ContractError, load_document
from contracts._shape import ABSENT, Node, Shapes

__all__ = [
    "ABSENT",
    "BUILTIN_NAMES",
    "Contract",
    "ContractError",
    "Node",
    "Operation",
    "ResponseSpec",
    "Shapes",
    "Violation",
    "best_error",
    "describe_error",
    "load_document",
]
