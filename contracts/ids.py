"""Task ids shaped like the contract's: a UUID, a string its pattern matches, or its example's shape.

`IdMaker.from_schema(schema)` reads the schema of a task's id once, at start-up, and works out how
to make one; `IdMaker.make(created, bits)` then costs a few microseconds. The first that applies:

    format: uuid           -> a version-4 UUID made from `bits` (the same seed, the same UUIDs)
    pattern                -> a string the regular expression matches whole
    example / examples[0]  -> the example's prefix (`video_`, `pred-`) and a tail of the same length
                              and characters (hex stays hex, lowercase letters and digits stay so)
    nothing usable, ours   -> task-unified-{created}-{8 lowercase letters or digits}

A pattern is read with Python's own regular-expression parser (`re._parser`) into a tree, and the
tree into functions of `bits`: literals, classes (picking only characters a URL path carries as
they are: letters, digits, `-._~`; a negated one from those outside it), `.`, `\\d \\w`, repeats,
groups and alternation (a random branch).
Anchors are ignored. Lengths come from the pattern alone: a repeat makes as many copies as it may,
up to max(its minimum, 24); then repeats are shortened (to 255 characters without a maxLength) or
lengthened until every id fits minLength and maxLength. Lookarounds and backreferences cannot be
generated: ValueError. Runs of one class cost one draw (hex and digits are formatted from it).

When the maker is built, a few samples are validated against the schema (formats included); one
that fails is a ValueError naming the pattern or format and what cannot be generated, which the
caller reports with the schema's place in the contract. (With both a format and a pattern, the
format is tried first, then the pattern; an example or the default is never taken in their place.)
Ids are random, not unique: the store draws again on a clash.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
import re._constants as sre
import re._parser as sre_parse
import string
from collections.abc import Callable
from typing import Any

import jsonschema_rs

Bits = Callable[[int], int]
Generate = Callable[[Bits], str]

DEFAULT_PREFIX = "task-unified-"
_DEFAULT_ALPHABET = string.ascii_lowercase + string.digits  # in this order: the ids of a seed stay today's
REPEAT_CAP = 24  # copies made by an unbounded repeat (or more, if its minimum asks)
_TABLE_SIZE = 4096  # strings in a run's lookup table of characters
_RUN_PIECE = 48  # characters drawn from one random number at most
_MAX_LENGTH = 10_000  # longest id a pattern and minLength may ask for
_SAMPLE_CREATED = 1_757_165_031
_VISIBLE = "".join(chr(code) for code in range(0x21, 0x7F))
_PRINTABLE = " " + _VISIBLE
_CATEGORIES = {
    sre.CATEGORY_DIGIT: frozenset(string.digits),
    sre.CATEGORY_WORD: frozenset(string.ascii_letters + string.digits + "_"),
    sre.CATEGORY_SPACE: frozenset(" \t\n\r\f\v"),
}
_NOT_CATEGORIES = {
    sre.CATEGORY_NOT_DIGIT: sre.CATEGORY_DIGIT,
    sre.CATEGORY_NOT_WORD: sre.CATEGORY_WORD,
    sre.CATEGORY_NOT_SPACE: sre.CATEGORY_SPACE,
}
_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT}
_UNSUPPORTED = {
    sre.ASSERT: "a lookahead or lookbehind",
    sre.ASSERT_NOT: "a negative lookahead or lookbehind",
    sre.GROUPREF: "a backreference",
    sre.GROUPREF_EXISTS: "a conditional group",
}
_PREFIX = re.compile(r"(?:[A-Za-z]+[_-])+")
_TAIL_CLASSES = (  # the first that holds every letter and digit of an example's tail
    (string.digits, False),
    ("0123456789abcdef", True),  # True: hex only if the tail has a digit ('abcdef' is letters)
    ("0123456789ABCDEF", True),
    (string.ascii_lowercase, False),
    (string.ascii_uppercase, False),
    (string.ascii_lowercase + string.digits, False),
    (string.ascii_uppercase + string.digits, False),
    (string.ascii_letters + string.digits, False),
)
_MIN_TAIL_CHOICES = 2**30  # an example's tail must allow this many ids (else its prefix is shortened)


# -- random pieces -----------------------------------------------------------------------------


def below(bits: Bits, n: int) -> int:
    """A uniform whole number in [0, n) from `bits`."""
    if n <= 1:
        return 0
    width = (n - 1).bit_length()
    while True:
        value = bits(width)
        if value < n:
            return value


@functools.lru_cache(maxsize=64)
def _table(alphabet: str, length: int) -> tuple[str, ...]:
    """Every string of `length` characters of `alphabet`, in order (shared by the runs that use it)."""
    return tuple("".join(letters) for letters in itertools.product(alphabet, repeat=length))


def _run(alphabet: str, count: int) -> Generate:
    """`count` characters, each uniform from `alphabet`, from as few draws as possible."""
    size = len(alphabet)
    if count == 0:
        return lambda bits: ""
    if size == 1:
        text = alphabet * count
        return lambda bits: text
    if count > _RUN_PIECE:
        pieces = [_run(alphabet, _RUN_PIECE)] * (count // _RUN_PIECE)
        if count % _RUN_PIECE:
            pieces.append(_run(alphabet, count % _RUN_PIECE))
        return lambda bits: "".join([piece(bits) for piece in pieces])
    for digits, kind in (("0123456789abcdef", "x"), ("0123456789ABCDEF", "X"), ("01234567", "o"), ("01", "b")):
        if alphabet == digits:
            width, spec = count * (size.bit_length() - 1), f"0{count}{kind}"
            return lambda bits: format(bits(width), spec)
    total = size**count
    width = (total - 1).bit_length()
    if alphabet == string.digits:
        spec = f"0{count}d"

        def decimal(bits: Bits) -> str:
            while True:
                value = bits(width)
                if value < total:
                    return format(value, spec)

        return decimal
    chunk = 1
    while size ** (chunk + 1) <= _TABLE_SIZE and chunk < count:
        chunk += 1
    table = _table(alphabet, chunk)
    modulus = len(table)
    whole, rest = divmod(count, chunk)
    last = _table(alphabet, rest) if rest else None
    steps = range(whole)

    def generate(bits: Bits) -> str:
        while True:
            value = bits(width)
            if value < total:  # draw again rather than favour some strings
                break
        out = []
        for _ in steps:
            value, index = divmod(value, modulus)
            out.append(table[index])
        if last is not None:
            out.append(last[value])
        return "".join(out)

    return generate


def _concat(pieces: list[str | Generate]) -> Generate:
    """One function for literal strings and generating functions in a row (adjacent literals merged)."""
    merged: list[str | Generate] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        elif piece != "":
            merged.append(piece)
    if not merged:
        return lambda bits: ""
    if len(merged) == 1:
        only = merged[0]
        return (lambda bits: only) if isinstance(only, str) else only
    if len(merged) == 2:
        first, second = merged
        if isinstance(first, str):
            return lambda bits: first + second(bits)  # type: ignore[operator]
        if isinstance(second, str):
            return lambda bits: first(bits) + second
        return lambda bits: first(bits) + second(bits)
    functions = [(lambda bits, text=piece: text) if isinstance(piece, str) else piece for piece in merged]
    return lambda bits: "".join([function(bits) for function in functions])


def _choice(options: list[Generate]) -> Generate:
    count = len(options)
    if count == 1:
        return options[0]
    return lambda bits: options[below(bits, count)](bits)


# -- a pattern as a tree -------------------------------------------------------------------------


class _Literal:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _Set:
    """One character of an alphabet (sorted, so that the same seed makes the same ids)."""

    __slots__ = ("alphabet",)

    def __init__(self, alphabet: str) -> None:
        self.alphabet = alphabet


class _Sequence:
    __slots__ = ("items",)

    def __init__(self, items: list[_Node]) -> None:
        self.items = items


class _Branches:
    __slots__ = ("options",)

    def __init__(self, options: list[_Node]) -> None:
        self.options = options


class _Repeat:
    __slots__ = ("count", "high", "item", "low")

    def __init__(self, item: _Node, low: int, high: int | None) -> None:
        self.item = item
        self.low = low
        self.high = high  # None: unbounded
        self.count = min(high, max(low, REPEAT_CAP)) if high is not None else max(low, REPEAT_CAP)


_Node = _Literal | _Set | _Sequence | _Branches | _Repeat


def _lengths(node: _Node) -> tuple[int, int]:
    """The shortest and longest text a node makes, with its repeats' counts as they are."""
    if isinstance(node, _Literal):
        return len(node.text), len(node.text)
    if isinstance(node, _Set):
        return 1, 1
    if isinstance(node, _Sequence):
        low = high = 0
        for item in node.items:
            item_low, item_high = _lengths(item)
            low, high = low + item_low, high + item_high
        return low, high
    if isinstance(node, _Branches):
        spans = [_lengths(option) for option in node.options]
        return min(span[0] for span in spans), max(span[1] for span in spans)
    low, high = _lengths(node.item)
    return low * node.count, high * node.count


def _repeats(node: _Node) -> list[_Repeat]:
    if isinstance(node, _Repeat):
        return [node, *_repeats(node.item)]
    if isinstance(node, _Sequence):
        return [found for item in node.items for found in _repeats(item)]
    if isinstance(node, _Branches):
        return [found for option in node.options for found in _repeats(option)]
    return []


_URL_SAFE = frozenset(string.ascii_letters + string.digits + "-._~")  # RFC 3986 unreserved: safe in a path


def _alphabet(chars: set[str] | frozenset[str], what: str) -> str:
    """The characters to pick from: those a URL path carries as they are (an id goes into the
    query's path: `/`, `?`, `#`, `%` would break it); ValueError when the class has none."""
    choice = chars & _URL_SAFE
    if not choice:
        shown = "".join(sorted(chars))[:20]
        raise ValueError(
            f"{what} matches no character a task id can hold in a URL path (letters, digits, '-', '.', '_', '~'): {shown!r}"
        )
    return "".join(sorted(choice))


def _class_chars(items: list[tuple[Any, Any]]) -> tuple[set[str], bool]:
    chars: set[str] = set()
    negated = False
    for op, value in items:
        if op is sre.NEGATE:
            negated = True
        elif op is sre.LITERAL:
            chars.add(chr(value))
        elif op is sre.RANGE:
            low, high = value
            if negated:  # only what is left of the printable ASCII characters matters
                low, high = max(low, 0x20), min(high, 0x7E)
            elif high - low > 0x10000:
                high = low + 0x10000  # enough to pick from
            chars.update(chr(code) for code in range(low, high + 1))
        elif op is sre.CATEGORY:
            if value in _CATEGORIES:
                chars |= _CATEGORIES[value]
            elif value in _NOT_CATEGORIES:
                chars |= set(_PRINTABLE) - _CATEGORIES[_NOT_CATEGORIES[value]]
            else:
                raise ValueError(f"it uses the character category {value}, which this generator does not know")
        else:
            raise ValueError(f"it uses {op} inside a character class, which this generator does not know")
    return chars, negated


def _tree(items: Any) -> _Node:
    nodes: list[_Node] = []
    for op, value in items:
        if op is sre.LITERAL:
            nodes.append(_Literal(chr(value)))
        elif op is sre.NOT_LITERAL:
            nodes.append(_Set(_alphabet(set(_PRINTABLE) - {chr(value)}, f"[^{chr(value)}]")))
        elif op is sre.ANY:
            nodes.append(_Set(_VISIBLE))
        elif op is sre.IN:
            chars, negated = _class_chars(value)
            if negated:
                chars = set(_PRINTABLE) - chars
            nodes.append(_Set(_alphabet(chars, "a character class")))
        elif op in _REPEATS:
            low, high, item = value
            nodes.append(_Repeat(_tree(item), low, None if high is sre.MAXREPEAT else high))
        elif op is sre.SUBPATTERN:
            nodes.append(_tree(value[-1]))
        elif op is sre.ATOMIC_GROUP:
            nodes.append(_tree(value))
        elif op is sre.BRANCH:
            nodes.append(_Branches([_tree(option) for option in value[1]]))
        elif op is sre.AT:
            continue  # ^ $ \A \Z \b \B: the whole id is generated, nothing around it
        elif op in _UNSUPPORTED:
            raise ValueError(f"it uses {_UNSUPPORTED[op]} (write the pattern without it)")
        else:
            raise ValueError(f"it uses {op}, which this generator does not know")
    return nodes[0] if len(nodes) == 1 else _Sequence(nodes)


_SOFT_MAX = 255  # without maxLength, repeats are shortened until ids are at most this long, if they can be


def _fit(tree: _Node, min_length: int, max_length: int | None) -> None:
    """Change repeat counts until every text the tree makes is within [min_length, max_length]."""
    if min_length > _MAX_LENGTH:
        raise ValueError(f"minLength {min_length} asks for ids longer than this fake makes ({_MAX_LENGTH} characters)")
    repeats = _repeats(tree)
    low, high = _lengths(tree)
    target = _SOFT_MAX if max_length is None else max_length
    while high > target:
        for repeat in sorted(repeats, key=lambda repeat: repeat.low - repeat.count):  # most copies to spare first
            if repeat.count > repeat.low:
                repeat.count -= 1
                shorter = _lengths(tree)
                if shorter[1] < high:
                    low, high = shorter
                    break
                repeat.count += 1
        else:
            break
    ceiling = _MAX_LENGTH if max_length is None else min(max_length, _MAX_LENGTH)
    while low < min_length:
        for repeat in repeats:  # lengthen the first repeat that makes the shortest text longer
            if repeat.high is None or repeat.count < repeat.high:
                repeat.count += 1
                longer = _lengths(tree)
                if longer[0] > low and longer[1] <= ceiling:
                    low, high = longer
                    break
                repeat.count -= 1
        else:
            break
    made = f"{low} characters" if low == high else f"{low} to {high} characters"
    if low < min_length:
        raise ValueError(f"it makes ids of at most {made}, and the schema's minLength is {min_length}")
    if max_length is not None and high > max_length:
        raise ValueError(f"it makes ids of at least {made}, and the schema's maxLength is {max_length}")
    if high > _MAX_LENGTH:
        raise ValueError(f"it makes ids of {made}; this fake makes ids of at most {_MAX_LENGTH}")


def _generator(node: _Node) -> Generate:
    return _concat(_pieces(node))


def _pieces(node: _Node) -> list[str | Generate]:
    if isinstance(node, _Literal):
        return [node.text]
    if isinstance(node, _Set):
        return [_run(node.alphabet, 1)]
    if isinstance(node, _Sequence):
        pieces: list[str | Generate] = []
        runs: list[tuple[str, int]] = []  # adjacent characters of the same alphabet, drawn at once
        for item in node.items:
            if isinstance(item, _Set) or (isinstance(item, _Repeat) and isinstance(item.item, _Set)):
                alphabet = item.alphabet if isinstance(item, _Set) else item.item.alphabet  # type: ignore[union-attr]
                count = 1 if isinstance(item, _Set) else item.count
                if runs and runs[-1][0] == alphabet:
                    runs[-1] = (alphabet, runs[-1][1] + count)
                else:
                    pieces += [_run(*run) for run in runs]
                    runs = [(alphabet, count)]
                continue
            pieces += [_run(*run) for run in runs]
            runs = []
            pieces += _pieces(item)
        return pieces + [_run(*run) for run in runs]
    if isinstance(node, _Branches):
        return [_choice([_generator(option) for option in node.options])]
    if isinstance(node.item, _Literal):
        return [node.item.text * node.count]
    if isinstance(node.item, _Set):
        return [_run(node.item.alphabet, node.count)]
    return [piece for _ in range(node.count) for piece in _pieces(node.item)]


_NAMED_GROUP = re.compile(r"\(\?<(?![=!])")  # ECMA-262 (?<name>...) is Python's (?P<name>...)


def pattern_generator(pattern: str, min_length: int = 0, max_length: int | None = None) -> Generate:
    """A function of `bits` making strings that `pattern` matches whole, of a length within the bounds.
    ValueError for a pattern that cannot be read or generated."""
    try:
        parsed = sre_parse.parse(_NAMED_GROUP.sub("(?P<", pattern))
    except (re.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"pattern {pattern!r} cannot be read as a regular expression: {exc}") from None
    try:
        tree = _tree(parsed)
        _fit(tree, min_length, max_length)
        return _generator(tree)
    except RecursionError:
        raise ValueError(f"pattern {pattern!r} is nested too deeply to be generated") from None
    except ValueError as exc:
        raise ValueError(f"pattern {pattern!r} cannot be generated: {exc}") from None


# -- other shapes --------------------------------------------------------------------------------


def _uuid4(created: int | str, bits: Bits) -> str:
    value = bits(128) & ~(0xF000 << 64) & ~(0xC000 << 48) | (0x4000 << 64) | (0x8000 << 48)
    text = format(value, "032x")
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_SUFFIX = _run(_DEFAULT_ALPHABET, 8)  # the draw of mockserver.state.memory.random_suffix


def _default(created: int | str, bits: Bits) -> str:
    return f"{DEFAULT_PREFIX}{created}-{_SUFFIX(bits)}"


def _choices(tail: str, alphabet: str) -> int:
    return len(alphabet) ** sum(char.isascii() and char.isalnum() for char in tail)


def _prefixes(example: str) -> list[str]:
    """The example's leading words with their separators, longest first ('pred-abc-1' -> ['pred-abc-',
    'pred-']); [''] for an example that starts with none."""
    match = _PREFIX.match(example)
    if match is None:
        return [""]
    return [match.group()[: end + 1] for end, char in reversed(list(enumerate(match.group()))) if char in "_-"]


def example_generator(example: str) -> tuple[str, Generate] | None:
    """The prefix of `example` and a function making tails shaped like the rest; None when the
    example has no tail of ASCII letters and digits that allows at least 2**30 ids."""
    for prefix in _prefixes(example):
        tail = example[len(prefix) :]
        letters = {char for char in tail if char.isascii() and char.isalnum()}
        alphabet = next(
            (
                chars
                for chars, needs_digit in _TAIL_CLASSES
                if letters <= set(chars) and (not needs_digit or letters & set(string.digits))
            ),
            None,
        )
        if letters and alphabet is not None and _choices(tail, alphabet) >= _MIN_TAIL_CHOICES:
            break
    else:
        return None
    pieces: list[str | Generate] = []
    for is_letter, group in itertools.groupby(tail, key=lambda char: char.isascii() and char.isalnum()):
        text = "".join(group)
        pieces.append(_run(alphabet, len(text)) if is_letter else text)
    return prefix, _concat(pieces)


def _ours(text: str) -> bool:
    return text.removeprefix("^").startswith(DEFAULT_PREFIX)


# -- the maker -----------------------------------------------------------------------------------


class IdMaker:
    """Makes task ids of one shape; built once from the id's schema, used on every submission."""

    __slots__ = ("_make", "kind", "source", "uses_created")

    def __init__(self, kind: str, source: str | None, make: Callable[[int | str, Bits], str]) -> None:
        self.kind = kind  # "default", "uuid", "pattern" or "example"
        self.source = source  # the pattern or example followed, if any
        self.uses_created = kind == "default"
        self._make = make

    def __repr__(self) -> str:
        return f"IdMaker({self.kind}{', ' + repr(self.source) if self.source else ''})"

    def make(self, created: int | str, bits: Bits) -> str:
        """A new id; `created` (a number or a placeholder string) appears in it when `uses_created`."""
        return self._make(created, bits)

    @classmethod
    def default(cls) -> IdMaker:
        """`task-unified-{created}-{8 lowercase letters or digits}`, drawn as the stores always have."""
        return cls("default", None, _default)

    @classmethod
    def from_schema(cls, schema: dict[str, Any] | None) -> IdMaker:
        """The maker for ids that satisfy `schema` (the resolved schema of a task's id).
        ValueError, saying what cannot be generated, when its samples do not satisfy it."""
        if not isinstance(schema, dict):
            return cls.default()
        try:
            validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
        except ValueError as exc:  # a schema the validator cannot compile
            raise ValueError(f"the id schema cannot be compiled: {str(exc).splitlines()[0]}") from None
        first: ValueError | None = None
        for build in cls._candidates(schema):  # the first whose samples satisfy the schema
            try:
                maker = build()
                maker._check(validator)
            except ValueError as exc:
                first = first or exc
                continue
            return maker
        assert first is not None
        raise first

    @classmethod
    def _candidates(cls, schema: dict[str, Any]) -> list[Callable[[], IdMaker]]:
        """How ids could be made, in order of preference: the format and the pattern, if the schema
        has either (and nothing else then), else the example's shape and the default."""
        found: list[Callable[[], IdMaker]] = []
        pattern = schema.get("pattern")
        if schema.get("format") == "uuid":
            found.append(lambda: cls("uuid", "format: uuid", _uuid4))
        if isinstance(pattern, str):
            found.append(cls.default if _ours(pattern) else lambda: cls._pattern(pattern, schema))
        if found:
            return found
        examples = schema.get("examples")
        example = schema.get("example", examples[0] if isinstance(examples, list) and examples else None)
        if isinstance(example, str) and not _ours(example) and (shape := example_generator(example)) is not None:
            prefix, tail = shape
            found.append(lambda: cls("example", example, lambda created, bits: prefix + tail(bits)))
        return [*found, cls.default]

    @classmethod
    def _pattern(cls, pattern: str, schema: dict[str, Any]) -> IdMaker:
        bounds = [schema.get("minLength"), schema.get("maxLength")]
        low, high = (bound if isinstance(bound, int) and not isinstance(bound, bool) else None for bound in bounds)
        generate = pattern_generator(pattern, low or 0, high)
        return cls("pattern", pattern, lambda created, bits: generate(bits))

    def _check(self, validator: jsonschema_rs.Validator) -> None:
        draw = random.Random(0x1D5).getrandbits
        for _ in range(16):
            sample = self.make(_SAMPLE_CREATED, draw)
            error = next(iter(validator.iter_errors(sample)), None)
            if error is not None:
                what = {
                    "default": f"the default format {DEFAULT_PREFIX}{{created}}-{{8 letters or digits}}",
                    "uuid": "format: uuid",
                    "pattern": f"pattern {self.source!r}",
                    "example": f"the shape of the example {self.source!r}",
                }[self.kind]
                raise ValueError(
                    f"ids made from {what}, like {sample!r}, do not satisfy the id schema: {error.message}"
                )
