"""The public surface grows only on purpose."""

import contracts
import mockserver


def test_mockserver_exports() -> None:
    assert sorted(mockserver.__all__) == ["Runtime", "Scenario", "ScenarioError", "Settings", "create_app"]
    for name in mockserver.__all__:
        assert getattr(mockserver, name) is not None


def test_contracts_exports() -> None:
    assert sorted(contracts.__all__) == [
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
    for name in contracts.__all__:
        assert getattr(contracts, name) is not None
