"""Task ids shaped like a contract's (contracts.ids): UUIDs, ids generated from a pattern, the shape
of a documented example, and today's default; reproducible from a seed, unique enough, and checked
against the schema when the maker is built."""

from __future__ import annotations

import random
import re
import string
import uuid

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.ids import IdMaker, below, example_generator, pattern_generator
from mockserver.state.memory import random_suffix

CREATED = 1_757_165_031
DEFAULT = re.compile(r"task-unified-(\d+)-[a-z0-9]{8}")


def made(schema: dict | None, count: int = 200, seed: int = 7) -> list[str]:
    maker = IdMaker.from_schema(schema)
    bits = random.Random(seed).getrandbits
    return [maker.make(CREATED, bits) for _ in range(count)]


def valid(schema: dict, ids: list[str]) -> bool:
    validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    return all(validator.is_valid(task_id) for task_id in ids)


# -- the default -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        None,
        {"type": "string"},
        {"type": "string", "example": "task-unified-1757165031-uyujaw3d"},  # ours
        {"type": "string", "pattern": r"^task-unified-\d+-[a-z0-9]{8}$"},  # ours
        {"type": "string", "example": "string"},  # a placeholder, not an id
        {"type": "string", "example": "pred-12"},  # too few ids in its shape
    ],
)
def test_the_default_when_nothing_else_is_usable(schema: dict | None) -> None:
    maker = IdMaker.from_schema(schema)
    assert maker.kind == "default" and maker.uses_created
    for task_id in made(schema):
        match = DEFAULT.fullmatch(task_id)
        assert match is not None and match.group(1) == str(CREATED)


def test_the_default_draws_what_the_stores_always_drew() -> None:
    maker, ours, theirs = IdMaker.default(), random.Random(3), random.Random(3)
    for created in range(100):
        assert maker.make(created, ours.getrandbits) == f"task-unified-{created}-{random_suffix(theirs.getrandbits)}"


def test_created_may_be_a_placeholder_the_redis_script_replaces() -> None:
    task_id = IdMaker.default().make("%CREATED%", random.Random(0).getrandbits)
    assert re.fullmatch(r"task-unified-%CREATED%-[a-z0-9]{8}", task_id)


# -- uuid ------------------------------------------------------------------------------------------


def test_uuid_ids_are_version_4_and_reproducible_from_a_seed() -> None:
    schema = {"type": "string", "format": "uuid"}
    maker = IdMaker.from_schema(schema)
    assert maker.kind == "uuid" and not maker.uses_created
    ids = made(schema, 1000)
    for task_id in ids:
        parsed = uuid.UUID(task_id)
        assert str(parsed) == task_id
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert made(schema, 1000) == ids
    assert set(made(schema, 1000, seed=8)).isdisjoint(ids)
    assert valid(schema, ids)


def test_uuid_wins_over_a_pattern_that_uuids_satisfy() -> None:
    schema = {"type": "string", "format": "uuid", "pattern": "^[0-9a-f-]{36}$"}
    assert IdMaker.from_schema(schema).kind == "uuid"


def test_a_pattern_is_tried_when_uuids_do_not_satisfy_it() -> None:
    schema = {
        "type": "string",
        "format": "uuid",
        "pattern": "^00000000-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$",
    }
    maker = IdMaker.from_schema(schema)
    assert maker.kind == "pattern"
    assert valid(schema, made(schema))


# -- patterns --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "shape"),
    [
        ({"pattern": "^[a-z0-9]{26}$"}, r"[a-z0-9]{26}"),
        ({"pattern": "^video_[0-9a-f]{32}$"}, r"video_[0-9a-f]{32}"),
        ({"pattern": r"^gen-[A-Z]{3}\d{4,6}$"}, r"gen-[A-Z]{3}[0-9]{4,6}"),
        ({"pattern": r"^(gen|pred)-[a-z0-9]{12}$"}, r"(gen|pred)-[a-z0-9]{12}"),
        ({"pattern": r"^(?:ab|cd|ef)+-x?$"}, r"(?:ab|cd|ef)+-x?"),
        ({"pattern": r"^\w+$", "maxLength": 10}, r"[A-Za-z0-9_]{1,10}"),
        ({"pattern": r"^\w+$", "minLength": 40, "maxLength": 40}, r"[A-Za-z0-9_]{40}"),
        ({"pattern": r"^[A-Za-z0-9_-]{20,64}$"}, r"[A-Za-z0-9_-]{20,64}"),
        ({"pattern": r"^id_[^a-z\s]{10}$"}, r"id_[^a-z\s]{10}"),
        ({"pattern": r"^.{12}$"}, r"[\x21-\x7e]{12}"),
        ({"pattern": r"^(?<kind>job|run)-\d{8}$"}, r"(job|run)-\d{8}"),  # an ECMA-262 named group
        ({"pattern": r"^[A-Z]{2}\.\d{6}\S\D\W$"}, r"[A-Z]{2}\.\d{6}\S\D\W"),
        ({"pattern": "^v1/[a-z]{3,}/[0-9a-f]{8}$"}, r"v1/[a-z]{3,}/[0-9a-f]{8}"),
        ({"pattern": "[0-9]{10}"}, r"[0-9]{10}"),  # not anchored: the whole id matches anyway
    ],
)
def test_ids_from_a_pattern(schema: dict, shape: str) -> None:
    schema = {"type": "string", **schema}
    maker = IdMaker.from_schema(schema)
    assert maker.kind == "pattern" and maker.source == schema["pattern"] and not maker.uses_created
    ids = made(schema, 1000)
    assert all(re.fullmatch(shape, task_id) for task_id in ids), [i for i in ids if not re.fullmatch(shape, i)][:3]
    assert valid(schema, ids)
    assert made(schema, 1000) == ids  # the same seed, the same ids


def test_every_branch_of_an_alternation_is_used() -> None:
    ids = made({"type": "string", "pattern": "^(gen|pred|job)_[a-z]{10}$"}, 300)
    assert {task_id.split("_")[0] for task_id in ids} == {"gen", "pred", "job"}


def test_lengths_are_fixed_by_the_pattern_and_as_long_as_it_allows() -> None:
    assert {len(task_id) for task_id in made({"pattern": r"^gen-[A-Z]{3}\d{4,6}$"})} == {13}
    assert {len(task_id) for task_id in made({"pattern": r"^\w+$"})} == {24}  # unbounded: 24 copies
    assert {len(task_id) for task_id in made({"pattern": r"^[a-z]{2,}$", "maxLength": 9})} == {9}
    assert {len(task_id) for task_id in made({"pattern": r"^x[a-z]*$", "minLength": 50})} == {50}
    assert {len(task_id) for task_id in made({"pattern": r"^[a-z]{40}$"})} == {40}


def test_optional_parts_are_kept_when_others_can_be_shortened_instead() -> None:
    ids = made({"type": "string", "pattern": r"^(ab|cd)+x?$", "maxLength": 9})
    assert all(len(task_id) == 9 and task_id.endswith("x") for task_id in ids)


@pytest.mark.parametrize(
    "schema",
    [
        {"pattern": "^[a-z0-9]{26}$"},
        {"pattern": "^video_[0-9a-f]{32}$"},
        {"pattern": r"^gen-[A-Z]{3}\d{4,6}$"},
        {"format": "uuid"},
        {"example": "video_68d7512d07848190b3e45da0ecbebcde04310a"},
        {},
    ],
)
def test_ten_thousand_ids_are_unique(schema: dict) -> None:
    ids = made({"type": "string", **schema}, 10_000)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("^(?=a)[a-z]{5}$", "lookahead"),
        ("^[a-z]{5}(?<!x)$", "lookbehind"),
        (r"^(a|b)\1$", "backreference"),
        (r"^(a)?(?(1)b|c)$", "conditional"),
        (r"^\p{L}+$", "cannot be read"),
        ("^[a-z$", "cannot be read"),
        (r"^[^\x20-\x7e]$", "no character"),
        ("^a{20000}$", "at most 10000"),
    ],
)
def test_what_cannot_be_generated_is_a_value_error_saying_so(pattern: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)) as raised:
        pattern_generator(pattern)
    assert repr(pattern) in str(raised.value)
    with pytest.raises(ValueError, match="pattern|regex"):  # the validator may refuse some of them first
        IdMaker.from_schema({"type": "string", "pattern": pattern})


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ({"type": "string", "pattern": "^[a-z]{30}$", "maxLength": 10}, "maxLength is 10"),
        ({"type": "string", "pattern": "^[a-z]{3}$", "minLength": 10}, "minLength is 10"),
        ({"type": "string", "format": "uuid", "maxLength": 10}, "format: uuid"),
        ({"type": "integer"}, "the default format"),
        ({"type": "string", "maxLength": 12}, "the default format"),
        ({"type": "string", "example": "video_68d7512d07848190b3", "maxLength": 5}, "the shape of the example"),
        ({"type": "strin"}, "cannot be compiled"),
    ],
)
def test_a_schema_its_ids_cannot_satisfy_is_a_value_error(schema: dict, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        IdMaker.from_schema(schema)


# -- examples --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "shape"),
    [
        ("video_68d7512d07848190b3e45da0ecbebcde04310a", r"video_[0-9a-f]{38}"),
        ("pred-abc-1234567", r"pred-[a-z0-9]{3}-[a-z0-9]{7}"),  # 'abc-' is too little to be the prefix
        ("gen_Ab12Cd34Ef", r"gen_[A-Za-z0-9]{10}"),
        ("job-run-ABCDEF0123", r"job-run-[0-9A-F]{10}"),
        ("4n8kfm2zq9x1", r"[a-z0-9]{12}"),
        ("550e8400-e29b-41d4-a716-446655440000", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
        ("img_20240101123456", r"img_[0-9]{14}"),
        ("op.abcdefghijkl", r"[a-z]{2}\.[a-z]{12}"),  # no prefix: '.' separates no word
    ],
)
def test_ids_shaped_like_the_example(example: str, shape: str) -> None:
    for schema in ({"type": "string", "example": example}, {"type": "string", "examples": [example, "x"]}):
        maker = IdMaker.from_schema(schema)
        assert maker.kind == "example" and maker.source == example and not maker.uses_created
        ids = made(schema, 500)
        assert all(re.fullmatch(shape, task_id) for task_id in ids), ids[:3]
        assert len(set(ids)) == len(ids) and example not in ids


def test_an_example_is_not_followed_when_there_is_a_pattern() -> None:
    schema = {"type": "string", "pattern": "^[a-z]{20}$", "example": "video_68d7512d07848190b3e45da0ecbebcde04310a"}
    assert IdMaker.from_schema(schema).kind == "pattern"


def test_example_generator_refuses_tails_with_too_few_ids() -> None:
    assert example_generator("pred-123") is None
    assert example_generator("string") is None
    assert example_generator("-_-_") is None


# -- pieces ----------------------------------------------------------------------------------------


def test_below_is_uniform_and_in_range() -> None:
    bits = random.Random(1).getrandbits
    counts = [0] * 6
    for _ in range(60_000):
        counts[below(bits, 6)] += 1
    assert all(9_000 < count < 11_000 for count in counts)
    assert below(bits, 1) == 0


def test_a_run_uses_every_character_of_its_class() -> None:
    generate = pattern_generator("[a-z0-9]{26}")
    bits = random.Random(2).getrandbits
    seen = set("".join(generate(bits) for _ in range(200)))
    assert seen == set(string.ascii_lowercase + string.digits)


# -- generated patterns ----------------------------------------------------------------------------

_ATOMS = st.one_of(
    st.sampled_from(list(string.ascii_letters + string.digits + "_")),
    st.sampled_from([r"\d", r"\w", ".", "[a-z]", "[A-F0-9]", "[^a-z]", "[^0-9A-Z_]", "[xyz-]", r"[\d_]", r"\-", r"\."]),
)
_QUANTIFIERS = st.sampled_from(["", "", "?", "*", "+", "{3}", "{0,2}", "{2,5}", "{1,}"])
_BOUNDED = st.sampled_from(["", "", "{2}", "{1,3}"])


def _patterns() -> st.SearchStrategy[str]:
    """Patterns of quantified atoms and small groups (with alternation, nested). Inside groups, and on
    nested ones, only bounded quantifiers that never match nothing: Python's backtracking matcher,
    the judge here, can take seconds to match an 18-character id against ((a|a?|b){2}){1,3}."""

    def sequences(units: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.lists(units, min_size=1, max_size=3).map("".join)

    def groups(units: st.SearchStrategy[str], quantifiers: st.SearchStrategy[str] = _BOUNDED) -> st.SearchStrategy[str]:
        options = st.lists(sequences(units), min_size=1, max_size=3).map(lambda found: "(" + "|".join(found) + ")")
        return st.tuples(options, quantifiers).map("".join)

    inner = st.recursive(st.tuples(_ATOMS, _BOUNDED).map("".join), groups, max_leaves=3)
    outer = groups(inner, st.sampled_from(["", "?", "{2}", "{1,3}"]))
    return sequences(st.one_of(st.tuples(_ATOMS, _QUANTIFIERS).map("".join), outer))


@settings(max_examples=200, deadline=None)
@given(pattern=_patterns(), anchored=st.booleans(), max_length=st.none() | st.integers(20, 120))
def test_every_id_made_from_a_generated_pattern_matches_it(
    pattern: str, anchored: bool, max_length: int | None
) -> None:
    if anchored:
        pattern = f"^{pattern}$"
    schema: dict = {"type": "string", "pattern": pattern}
    if max_length is not None:
        schema["maxLength"] = max_length
    try:
        maker = IdMaker.from_schema(schema)
    except ValueError as exc:  # only a maxLength the pattern cannot meet
        assert "maxLength" in str(exc), exc
        return
    whole = jsonschema_rs.Draft202012Validator({"pattern": f"^(?:{pattern})$"})  # a second judge, in linear time
    bits = random.Random(pattern).getrandbits
    for _ in range(20):
        task_id = maker.make(CREATED, bits)
        assert re.fullmatch(pattern, task_id), (pattern, task_id)
        assert whole.is_valid(task_id), (pattern, task_id)
        assert max_length is None or len(task_id) <= max_length
