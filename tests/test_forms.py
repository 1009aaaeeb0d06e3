"""Request bodies sent as forms (mockserver.forms): multipart and urlencoded bodies built by httpx
read back into the object the schema describes, values coerced by the schema, every refusal a 400
that says what to send, and arbitrary bytes never anything but a dict or that 400."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockserver.errors import ApiError
from mockserver.forms import MAX_FIELDS, is_form, parse_form

URL = "http://fake.test/v1/videos"
MULTIPART = "multipart/form-data; boundary=b0undary"
URLENCODED = "application/x-www-form-urlencoded"

# OpenAI's CreateVideoBody, as its OpenAPI document has it (seconds and size are string enums)
OPENAI = {
    "type": "object",
    "required": ["prompt"],
    "additionalProperties": False,
    "properties": {
        "model": {"type": "string", "enum": ["sora-2", "sora-2-pro"]},
        "prompt": {"type": "string", "minLength": 1, "maxLength": 32000},
        "input_reference": {"type": "string", "format": "binary"},
        "seconds": {"type": "string", "enum": ["4", "8", "12"]},
        "size": {"type": "string", "enum": ["720x1280", "1280x720", "1024x1792", "1792x1024"]},
    },
}

SCHEMA = {
    "type": "object",
    "properties": {
        "prompt": {"type": "string"},
        "n": {"type": "integer"},
        "ratio": {"type": "number"},
        "loop": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "frames": {"type": "array", "items": {"type": "integer"}},
        "meta": {
            "type": "object",
            "properties": {"seed": {"type": "integer"}},
            "additionalProperties": {"type": "string"},
        },
        "image": {"type": "string", "format": "binary"},
    },
}


def encoded(data: Any = None, files: Any = None) -> tuple[str, bytes]:
    """The Content-Type and the body httpx itself sends for these fields."""
    request = httpx.Request("POST", URL, data=data, files=files)
    return request.headers.get("content-type", URLENCODED), request.read()  # no fields: no Content-Type


def multipart(*parts: bytes, boundary: bytes = b"b0undary", close: bool = True) -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return body + (b"--" + boundary + b"--\r\n" if close else b"")


def field(name: str, value: bytes, *headers: str) -> bytes:
    lines = [f'Content-Disposition: form-data; name="{name}"', *headers]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + value


def refused(content_type: str, raw: bytes, schema: dict | None = SCHEMA) -> str:
    with pytest.raises(ApiError) as raised:
        parse_form(content_type, raw, schema)
    assert raised.value.status == 400
    return raised.value.message


# -- recognising a form ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("multipart/form-data; boundary=x", "multipart"),
        ("Multipart/Form-Data ; boundary=x", "multipart"),
        ("multipart/form-data", "multipart"),
        ("application/x-www-form-urlencoded", "urlencoded"),
        ("application/x-www-form-urlencoded; charset=UTF-8", "urlencoded"),
        ("application/json", None),
        ("multipart/mixed; boundary=x", None),
        ("text/plain", None),
        ("", None),
        (None, None),
    ],
)
def test_is_form(content_type: str | None, kind: str | None) -> None:
    assert is_form(content_type) == kind


# -- round trips of what httpx sends ---------------------------------------------------------------


def test_a_body_like_the_one_openais_sdk_sends() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4 + b"\r\n--not-the-boundary\r\n"
    content_type, raw = encoded(
        data={
            "prompt": 'A "calm" lake at dawn,\nmist rising — 4K',
            "model": "sora-2",
            "seconds": "8",
            "size": "1280x720",
        },
        files={"input_reference": ("input.png", png, "image/png")},
    )
    body = parse_form(content_type, raw, OPENAI)
    assert body == {
        "prompt": 'A "calm" lake at dawn,\nmist rising — 4K',
        "model": "sora-2",
        "seconds": "8",  # a string enum: it stays a string
        "size": "1280x720",
        "input_reference": f"<file input.png, {len(png)} bytes, image/png>",
    }
    assert jsonschema_rs.Draft202012Validator(OPENAI).is_valid(body)


def test_multipart_round_trip_with_coercion() -> None:
    content_type, raw = encoded(
        data={"prompt": "a cat é", "n": "5", "ratio": "1.5", "loop": "true", "tags": ["a", "b"], "meta": '{"seed": 3}'},
        files={"image": ('in put".png', b"\x00\xff" * 10, "image/png"), "other": ("x.bin", b"123", "application/zip")},
    )
    assert parse_form(content_type, raw, SCHEMA) == {
        "prompt": "a cat é",
        "n": 5,
        "ratio": 1.5,
        "loop": True,
        "tags": ["a", "b"],
        "meta": {"seed": 3},
        "image": '<file in put".png, 20 bytes, image/png>',
        "other": "<file x.bin, 3 bytes, application/zip>",  # a file the schema does not know
    }


def test_urlencoded_round_trip_with_coercion() -> None:
    content_type, raw = encoded(
        data={"prompt": "a cat é & a dog = 2+2", "n": "-3", "loop": "0", "frames": ["1", "2", "3"], "unknown": "7"}
    )
    assert content_type == URLENCODED
    assert parse_form(content_type, raw, SCHEMA) == {
        "prompt": "a cat é & a dog = 2+2",
        "n": -3,
        "loop": False,
        "frames": [1, 2, 3],
        "unknown": "7",  # unknown names stay strings: the contract's validator decides
    }


@pytest.mark.parametrize("kind", ["multipart", "urlencoded"])
def test_without_a_schema_everything_stays_strings(kind: str) -> None:
    data = {"n": "5", "loop": "true", "tags": ["1", "2"], "tags[]": "3", "meta[seed]": "4"}
    content_type, raw = encoded(data=data, files={"f": ("a.txt", b"hi", "text/plain")} if kind == "multipart" else None)
    expected: dict[str, Any] = {"n": "5", "loop": "true", "tags": ["1", "2"], "tags[]": "3", "meta[seed]": "4"}
    if kind == "multipart":
        expected["f"] = "<file a.txt, 2 bytes, text/plain>"
    assert parse_form(content_type, raw, None) == expected


def test_an_empty_form() -> None:
    assert parse_form(URLENCODED, b"", SCHEMA) == {}
    assert parse_form(MULTIPART, b"--b0undary--\r\n", SCHEMA) == {}


# -- coercion ------------------------------------------------------------------------------------

_COERCIONS = [
    ({"type": "integer"}, "5", 5),
    ({"type": "integer"}, "-12", -12),
    ({"type": "integer"}, "5.5", "5.5"),  # not an integer: left for the validator to refuse
    ({"type": "integer"}, " 5", " 5"),
    ({"type": "integer"}, "5.0", 5.0),
    ({"type": "number"}, "5.5", 5.5),
    ({"type": "number"}, "5", 5),
    ({"type": "number"}, "1e3", 1000.0),
    ({"type": "number"}, "1e999", "1e999"),
    ({"type": "number"}, "nan", "nan"),
    ({"type": "boolean"}, "true", True),
    ({"type": "boolean"}, "False", False),
    ({"type": "boolean"}, "1", True),
    ({"type": "boolean"}, "0", False),
    ({"type": "boolean"}, "yes", "yes"),
    ({"type": "string"}, "5", "5"),
    ({"type": "string", "enum": ["4", "8", "12"]}, "8", "8"),
    ({"type": "integer", "enum": [4, 8, 12]}, "8", 8),
    ({"enum": [4, 8, 12]}, "8", 8),  # the enum's values give the type
    ({"enum": ["auto", 4]}, "4", 4),
    ({"const": True}, "true", True),
    ({"type": ["integer", "string"]}, "5", "5"),  # a string wherever a string is allowed
    ({"type": ["integer", "null"]}, "", None),
    ({"type": ["integer", "null"]}, "null", None),
    ({"type": "integer", "nullable": True}, "null", None),
    ({"type": "string", "nullable": True}, "", ""),
    ({"anyOf": [{"type": "string", "enum": ["auto"]}, {"type": "integer"}]}, "auto", "auto"),
    ({"anyOf": [{"type": "string", "enum": ["auto"]}, {"type": "integer"}]}, "10", 10),
    ({"oneOf": [{"type": "number"}, {"type": "boolean"}]}, "true", True),
    ({"type": "object"}, '{"a": [1, 2]}', {"a": [1, 2]}),
    ({"type": "object"}, "{not json", "{not json"),
    ({"type": "object"}, "[1]", "[1]"),  # JSON, but not an object
    ({"type": "array", "items": {"type": "integer"}}, "[1, 2]", [1, 2]),
    ({"type": "array", "items": {"type": "integer"}}, "7", [7]),  # one value of a list
    ({"type": "array", "items": {"type": "object"}}, '{"a": 1}', [{"a": 1}]),
    ({"type": "array"}, "x", ["x"]),
    ({"type": "string", "format": "binary"}, "not a file", "not a file"),
    ({}, "5", "5"),
    ({"description": "anything"}, "true", "true"),
]


@pytest.mark.parametrize(("schema", "text", "expected"), _COERCIONS)
def test_coercion(schema: dict, text: str, expected: Any) -> None:
    for content_type, raw in (encoded(data={"x": text}), encoded(data={"x": text}, files={"f": ("f", b"")})):
        value = parse_form(content_type, raw, {"type": "object", "properties": {"x": schema}})["x"]
        assert value == expected and type(value) is type(expected), (content_type, value)


def test_a_ref_is_followed_with_resolve() -> None:
    definitions = {"Seconds": {"type": "integer"}, "Tags": {"type": "array", "items": {"$ref": "#/Seconds"}}}

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        return definitions[schema["$ref"].removeprefix("#/")]

    schema = {"type": "object", "properties": {"s": {"$ref": "#/Seconds"}, "t": {"$ref": "#/Tags"}}}
    assert parse_form(URLENCODED, b"s=4&t=1&t=2", schema, resolve) == {"s": 4, "t": [1, 2]}
    assert parse_form(URLENCODED, b"s=4&t=1&t=2", schema) == {"s": "4", "t": ["1", "2"]}  # no resolve: untyped


def test_a_schema_that_refers_to_itself_ends() -> None:
    nested = {"type": "array", "items": {"$ref": "#/Nested"}}
    schema = {"type": "object", "properties": {"x": {"$ref": "#/Nested"}}}
    value = parse_form(URLENCODED, b"x=1", schema, lambda ref: nested)["x"]
    for _ in range(5):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    branching = {"anyOf": [{"$ref": "#/Branching"}] * 10}  # 10**9 branches if followed to the end
    schema = {"type": "object", "properties": {"x": {"$ref": "#/Branching"}}}
    assert parse_form(URLENCODED, b"x=1", schema, lambda ref: branching) == {"x": "1"}


def test_properties_of_branches_are_known() -> None:
    schema = {
        "oneOf": [
            {"type": "object", "properties": {"model": {"const": "a"}, "n": {"type": "integer"}}},
            {"type": "object", "properties": {"model": {"const": "b"}, "loop": {"type": "boolean"}}},
        ]
    }
    assert parse_form(URLENCODED, b"model=b&n=3&loop=true", schema) == {"model": "b", "n": 3, "loop": True}


# -- lists and objects -----------------------------------------------------------------------------


def test_lists_from_repeated_names_and_brackets() -> None:
    assert parse_form(URLENCODED, b"frames=1&frames=2", SCHEMA) == {"frames": [1, 2]}
    assert parse_form(URLENCODED, b"frames[]=1&frames[]=2", SCHEMA) == {"frames": [1, 2]}
    assert parse_form(URLENCODED, b"frames[]=1", SCHEMA) == {"frames": [1]}
    assert parse_form(URLENCODED, b"frames=1&frames[]=2", SCHEMA) == {"frames": [1, 2]}
    assert parse_form(URLENCODED, b"tags[]=", SCHEMA) == {"tags": [""]}


def test_a_repeated_name_of_a_single_value_is_a_list_the_validator_refuses() -> None:
    assert parse_form(URLENCODED, b"n=1&n=2", SCHEMA) == {"n": [1, 2]}
    assert parse_form(URLENCODED, b"x[]=1&x[]=2", SCHEMA) == {"x[]": ["1", "2"]}  # unknown: names as sent


def test_objects_from_bracketed_keys_as_openais_sdk_writes_them() -> None:
    assert parse_form(URLENCODED, b"meta[seed]=4&meta[note]=5", SCHEMA) == {"meta": {"seed": 4, "note": "5"}}
    assert parse_form(URLENCODED, b"n[a]=1", SCHEMA) == {"n[a]": "1"}  # n is no object: a name of its own


def test_a_name_sent_as_a_value_and_as_an_object_is_refused() -> None:
    message = refused(URLENCODED, b"meta=1&meta[seed]=2")
    assert "'meta' both as a value and as an object" in message
    assert "both as a value" in refused(URLENCODED, b"meta[seed]=2&meta=1")


def test_files_for_a_list_property() -> None:
    schema = {"type": "object", "properties": {"images": {"type": "array", "items": {"type": "string"}}}}
    content_type, raw = encoded(
        files=[("images", ("a.png", b"1", "image/png")), ("images", ("b.jpg", b"22", "image/jpeg"))]
    )
    assert parse_form(content_type, raw, schema) == {
        "images": ["<file a.png, 1 bytes, image/png>", "<file b.jpg, 2 bytes, image/jpeg>"]
    }


# -- multipart details ---------------------------------------------------------------------------


def test_a_quoted_boundary_preamble_epilogue_and_padding() -> None:
    raw = b"preamble\r\n--a b:c  \r\n" + field("prompt", b"x\r\n--a b:cd") + b"\r\n--a b:c--\r\nepilogue"
    assert parse_form('multipart/form-data; boundary="a b:c"', raw, SCHEMA) == {"prompt": "x\r\n--a b:cd"}


def test_bare_newlines_from_a_hand_made_body() -> None:
    raw = b'--b0undary\nContent-Disposition: form-data; name="n"\n\n5\n--b0undary--\n'
    assert parse_form(MULTIPART, raw, SCHEMA) == {"n": 5}


def test_part_headers() -> None:
    raw = multipart(
        field("prompt", b"hello", "Content-Type: text/plain; charset=UTF-8"),
        field("meta", b'{"seed": 1}', "Content-Type: application/json"),
        field("image", b"\x00\x01", "Content-Type: application/octet-stream"),  # binary without a filename
        b"content-disposition: FORM-DATA; name=n;\r\n\tfilename*=UTF-8''%E2%82%AC.txt\r\n\r\n42",
        b"Content-Disposition: form-data; name=x; filename*=rot13''%41%E9\r\n\r\n",
        field("loop", b"true", "Content-Transfer-Encoding: 8bit", "X-Other: ignored"),
        b'Content-Disposition: form-data; name="say %22hi%22"\r\n\r\nx',
    )
    assert parse_form(MULTIPART, raw, SCHEMA) == {
        "prompt": "hello",
        "meta": {"seed": 1},
        "image": "<file 2 bytes, application/octet-stream>",
        "n": "<file €.txt, 2 bytes, application/octet-stream>",
        "x": "<file A\ufffd, 0 bytes, application/octet-stream>",  # an unknown charset: read as UTF-8
        "loop": True,
        'say "hi"': "x",
    }


def test_an_empty_file_input_and_odd_filenames() -> None:
    raw = multipart(
        b'Content-Disposition: form-data; name="image"; filename=""\r\nContent-Type: application/octet-stream\r\n\r\n',
        b'Content-Disposition: form-data; name="other"; filename="a\\\\b\x07.png"\r\n\r\nxyz',
    )
    assert parse_form(MULTIPART, raw, SCHEMA) == {
        "image": "<file 0 bytes, application/octet-stream>",
        "other": "<file a\\b?.png, 3 bytes, application/octet-stream>",
    }


# -- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "raw", "says"),
    [
        ("multipart/form-data", multipart(field("a", b"1")), "has no boundary parameter"),
        ('multipart/form-data; boundary=""', multipart(field("a", b"1")), "is not 1 to 70 printable ASCII"),
        (
            "multipart/form-data; boundary=other",
            multipart(field("a", b"1")),
            "does not contain its boundary line '--other'",
        ),
        (MULTIPART, b"", "does not contain its boundary"),
        (MULTIPART, b"just text", "does not contain its boundary"),
        (MULTIPART, multipart(field("a", b"1"), close=False), "ends without its closing boundary line '--b0undary--'"),
        (MULTIPART, multipart(field("a", b"1"))[:-20], "ends without its closing boundary"),
        (
            MULTIPART,
            multipart(b"Content-Disposition: form-data\r\n\r\n1"),
            "Part 1 of the multipart body has no field name",
        ),
        (MULTIPART, multipart(field("a", b"1"), b'Content-Disposition: form-data; name=""\r\n\r\n1'), "Part 2"),
        (MULTIPART, multipart(b"Content-Type: text/plain\r\n\r\n1"), "(Content-Disposition: none)"),
        (MULTIPART, multipart(b'Content-Disposition: attachment; name="a"\r\n\r\n1'), "no field name"),
        (MULTIPART, multipart(b'Content-Disposition: form-data; name="a"\r\n1'), "no blank line after its headers"),
        (MULTIPART, multipart(b'Content-Disposition: form-data; name="a"\r\nnot a header\r\n\r\n1'), "'Name: value'"),
        (MULTIPART, multipart(field("prompt", b"caf\xe9")), "The value of form field 'prompt' is not valid UTF-8"),
        (MULTIPART, multipart(field("a", b"1", "Content-Type: text/plain; charset=latin-1")), "charset 'latin-1'"),
        (MULTIPART, multipart(field("a", b"MQ==", "Content-Transfer-Encoding: base64")), "Content-Transfer-Encoding"),
        (MULTIPART, multipart(*[field(f"f{i}", b"1") for i in range(MAX_FIELDS + 1)]), "more than 1000 parts"),
        (MULTIPART, multipart(field("meta", b"[" * 100 + b"]" * 100)), "nested too deeply"),
        (MULTIPART, multipart(field("meta", b'{"a": "\\ud800"}')), "lone UTF-16 surrogate"),
        (URLENCODED, b"prompt=caf\xe9", "not valid UTF-8 (bad byte at offset 10)"),
        (URLENCODED, b"prompt=caf%E9", "The value of form field 'prompt' is percent-encoded bytes that are not"),
        (URLENCODED, b"caf%E9=1", "The name of form field 'caf\ufffd'"),
        (URLENCODED, b"&".join([b"a=1"] * (MAX_FIELDS + 1)), "more than 1000 fields"),
        (URLENCODED, b"=1", "a field with no name"),
        (URLENCODED + "; charset=iso-8859-1", b"a=1", "Unsupported charset 'iso-8859-1'"),
        ("application/json", b"{}", "Unsupported Content-Type 'application/json'"),
    ],
)
def test_refusals_say_what_was_received_and_what_to_send(content_type: str, raw: bytes, says: str) -> None:
    message = refused(content_type, raw)
    assert says in message, message
    assert (
        "send" in message
        or "this fake reads at most" in message
        or "nested too deeply" in message
        or "not a" in message
    )


def test_field_errors_name_the_param() -> None:
    with pytest.raises(ApiError) as raised:
        parse_form(MULTIPART, multipart(field("prompt", b"\xff")), SCHEMA)
    assert raised.value.param == "prompt" and raised.value.body()["error"]["type"] == "invalid_request_error"


def test_a_thousand_fields_are_read() -> None:
    assert len(parse_form(URLENCODED, b"&".join(b"f%d=1" % i for i in range(MAX_FIELDS)), SCHEMA)) == MAX_FIELDS
    assert (
        len(parse_form(MULTIPART, multipart(*[field(f"f{i}", b"1") for i in range(MAX_FIELDS)]), SCHEMA)) == MAX_FIELDS
    )


# -- fuzz ----------------------------------------------------------------------------------------

_BOUNDARIES = st.text(st.characters(codec="ascii"), max_size=80) | st.sampled_from(["b0undary", "", '"', "a b", "--"])
_CONTENT_TYPES = st.one_of(
    _BOUNDARIES.map(lambda boundary: f"multipart/form-data; boundary={boundary}"),
    _BOUNDARIES.map(lambda boundary: f'multipart/form-data; boundary="{boundary}"; charset=utf-8'),
    st.text(max_size=60).map(lambda rest: "multipart/form-data;" + rest),
    st.text(max_size=40).map(lambda rest: "application/x-www-form-urlencoded" + rest),
)
_PIECES = st.sampled_from(
    [
        b"--b0undary",
        b"--b0undary--",
        b"\r\n",
        b"\n",
        b"\r\n\r\n",
        b'Content-Disposition: form-data; name="n"',
        b'Content-Disposition: form-data; name="meta"; filename="x"',
        b"Content-Disposition: form-data; name=tags[]",
        b"Content-Type: application/json",
        b"Content-Type: text/plain; charset=",
        b"; filename*=rot13''%41",
        b"; filename*=nope''",
        b"name=",
        b"meta[seed]=",
        b'{"seed": [1, {"a": "\\ud800"}]}',
        b"[[[[",
        b"5",
        b"true",
        b"%E9",
        b"&",
        b"=",
        b"\xff\xfe",
        b"\x00",
    ]
)
_BODIES = st.one_of(st.binary(max_size=400), st.lists(_PIECES | st.binary(max_size=8), max_size=30).map(b"".join))


def _check(content_type: str, raw: bytes) -> None:
    for schema in (SCHEMA, OPENAI, None):
        try:
            body = parse_form(content_type, raw, schema)
        except ApiError as exc:
            assert exc.status == 400 and exc.message
            json.dumps(exc.body())
            continue
        assert isinstance(body, dict)
        json.dumps(body).encode("utf-8")  # JSON, and real Unicode


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content_type=_CONTENT_TYPES, raw=_BODIES)
def test_arbitrary_bytes_and_boundaries_give_a_dict_or_a_400(content_type: str, raw: bytes) -> None:
    _check(content_type, raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cut=st.integers(0, 10_000),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.binary(min_size=1, max_size=6)), max_size=4),
    data=st.dictionaries(st.sampled_from(["prompt", "n", "tags", "meta", "x"]), st.text(max_size=20), max_size=4),
)
def test_damaged_real_bodies_give_a_dict_or_a_400(cut: int, flips: list[tuple[int, bytes]], data: dict) -> None:
    for content_type, raw in (
        encoded(data=data, files={"image": ("a.png", b"\x89PNG", "image/png")}),
        encoded(data=data),
    ):
        body = bytearray(raw)
        for at, junk in flips:
            at %= len(body) + 1
            body[at : at + len(junk)] = junk
        _check(content_type, bytes(body[: len(body) - cut % (len(body) + 1)]))
