"""The OpenAPI documents: valid OpenAPI 3.1, bundled, and saying what the provider's pages say."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema_rs
import pytest
import schemathesis

from contracts import BUILTIN_NAMES, Contract, ContractError, load_document

SEED_PAGE_EXAMPLE = {
    "created": 1757165031,
    "id": "task-unified-1757165031-uyujaw3d",
    "model": "veo-3.1-extend",
    "object": "video.generation.task",
    "progress": 0,
    "status": "pending",
    "task_info": {"can_cancel": True, "estimated_time": 45},
    "type": "video",
}


@pytest.fixture(params=BUILTIN_NAMES)
def contract(request: pytest.FixtureRequest) -> Contract:
    return Contract.load(request.param)


def schema_validator(contract: Contract, name: str) -> jsonschema_rs.Validator:
    rooted = {"$ref": f"#/components/schemas/{name}", "components": contract.document["components"]}
    return jsonschema_rs.Draft202012Validator(rooted, validate_formats=True)


def test_documents_pass_the_openapi_validator(contract: Contract) -> None:
    schemathesis.openapi.from_dict(contract.document).validate()


def test_every_component_schema_is_valid_json_schema(contract: Contract) -> None:
    for name, schema in contract.document["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name


def test_bundled_documents_have_only_local_references(contract: Contract) -> None:
    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = list(refs(contract.document))
    assert found and all(ref.startswith("#/components/") for ref in found)


def test_the_submit_answer_links_to_the_query(contract: Contract) -> None:
    response = contract.document["paths"]["/v1/videos/generations"]["post"]["responses"]["200"]
    target = contract.document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    link = target["links"]["GetTask"]
    assert link["operationId"] == "getTask"
    assert link["parameters"] == {"task_id": "$response.body#/id"}
    assert "getTask" in contract.operations


def test_every_documented_error_status_is_in_the_contract(contract: Contract) -> None:
    submit = contract.operation("createVideoGeneration").responses
    assert {"200", "400", "401", "402", "422", "429", "500", "503"} <= set(submit)
    assert {"200", "401", "404"} <= set(contract.operation("getTask").responses)


def test_the_seed_page_example_matches_the_submit_answer(contract: Contract) -> None:
    assert schema_validator(contract, "TaskCreated").is_valid(SEED_PAGE_EXAMPLE)
    wrong = {**SEED_PAGE_EXAMPLE, "object": "video.task"}
    assert not schema_validator(contract, "TaskCreated").is_valid(wrong)


def test_task_object_allows_the_quirk_and_refuses_other_shapes(contract: Contract) -> None:
    validator = schema_validator(contract, "Task")
    task = {
        "id": "task-unified-1757165031-uyujaw3d",
        "object": "video.generation.task",
        "type": "video",
        "model": "veo-3.1-extend",
        "status": "completed",
        "progress": 50,
        "created": 1757165031,
        "results": None,
        "error": None,
        "usage": {"credits_reserved": 5, "user_group": "default"},
    }
    assert validator.is_valid(task)
    assert validator.is_valid({**task, "progress": 100, "results": [{"url": "https://cdn.example.com/v.mp4"}]})
    assert not validator.is_valid({**task, "results": {"url": "https://cdn.example.com/v.mp4"}})
    assert not validator.is_valid({**task, "status": "cancelled"})
    assert not validator.is_valid({k: v for k, v in task.items() if k != "object"})


def test_the_versions_differ_only_in_the_request_body_and_the_info() -> None:
    def rest(name: str) -> dict:
        document = copy.deepcopy(Contract.load(name).document)
        del document["info"], document["components"]["schemas"]["VideoExtendRequest"]
        return document

    assert rest("seed") == rest("current")


def test_what_the_request_bodies_differ_in() -> None:
    seed = Contract.load("seed").operation("createVideoGeneration")
    current = Contract.load("current").operation("createVideoGeneration")
    assert "video" in seed.body_properties and "video_url" not in seed.body_properties
    assert "video_url" in current.body_properties and "video" not in current.body_properties
    assert {"auto_fix", "safety_tolerance", "negative_prompt", "seed"} <= current.body_properties
    assert "advanced" in seed.body_properties
    assert seed.body_defaults == {"model": "veo-3.1-extend-fast", "aspect_ratio": "16:9", "generate_audio": True}
    assert current.body_defaults["model"] == "veo-3.1-extend"


def test_a_custom_contract_path_loads(tmp_path: Path) -> None:
    source = Path(Contract.load("seed").path).parent
    for name in ("seed.yaml", "common.yaml"):
        (tmp_path / name).write_text((source / name).read_text())
    assert Contract.load(tmp_path / "seed.yaml").version == "seed"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("openapi: 3.1.0\npaths: {}\n", None),
        ("swagger: '2.0'\n", "not an OpenAPI 3.x document"),
        ("- a list\n", "mapping at the top level"),
        ("openapi: [\n", "not valid YAML"),
        ("openapi: 3.1.0\npaths:\n  /x:\n    $ref: 'missing.yaml#/components/pathItems/X'\n", "cannot read"),
        ("openapi: 3.1.0\npaths:\n  /x:\n    $ref: 'other.yaml#/paths/~1x'\n", "must point at"),
    ],
)
def test_contract_loading_errors_name_the_file(tmp_path: Path, text: str, problem: str | None) -> None:
    path = tmp_path / "api.yaml"
    path.write_text(text)
    if problem is None:
        assert load_document(path)[1]["openapi"] == "3.1.0"
        return
    with pytest.raises(ContractError, match=problem) as caught:
        load_document(path)
    assert "api.yaml" in str(caught.value) or "missing.yaml" in str(caught.value)


def test_an_unknown_contract_name_is_explained() -> None:
    with pytest.raises(ContractError, match="neither a shipped name"):
        Contract.load("future")


def test_the_response_validator_reads_requests_responses_too() -> None:
    import requests

    from contracts.conformance import ContractViolation, ResponseValidator
    from mockserver import Settings
    from mockserver.testing import LiveServer

    validator = ResponseValidator(Contract.load("seed"))
    with LiveServer(Settings(clock="manual")) as server:
        missing = requests.get(f"{server.url}/v1/tasks/abc", headers={"Authorization": "Bearer sk-x"}, timeout=10)
    assert validator.validate(missing) is True
    missing._content = b'{"error": "gone"}'
    with pytest.raises(ContractViolation):
        validator.validate(missing)


def test_the_fakes_error_types_are_the_contracts(contract: Contract) -> None:
    """ApiError picks `error.type` from its status; for every status the contract documents, that
    must be the constant the contract pins, or the fake would answer outside its own contract."""
    from mockserver.errors import STATUS_TYPES

    for operation in contract.operations.values():
        for status, spec in operation.answers.items():
            if spec.error_type is not None:
                assert STATUS_TYPES[int(status)] == spec.error_type, (operation.operation_id, status)
