"""Load an OpenAPI document and bundle its external references into one self-contained dict.

The shipped documents share components through `common.yaml`. Every consumer (the fake,
schemathesis, the tests) works on the bundled form, where each external reference
`other.yaml#/components/<kind>/<name>` has become a local `#/components/<kind>/<name>` and the
component it names has been copied in.

Errors: `ContractError` (a `ValueError`) names the file and what is wrong with it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

BUILTIN_DIR = Path(__file__).parent / "openapi"
BUILTIN_NAMES = ("seed", "current")


class ContractError(ValueError):
    """A contract document cannot be found, read or bundled."""


def json_content(content: Any) -> tuple[str, dict[str, Any]]:
    """(media type, media object) of the JSON entry of a `content` map: `application/json`,
    with parameters (`; charset=utf-8`) or a `+json` suffix; ("application/json", {}) if none."""
    if isinstance(content, dict):
        for key, media in content.items():
            kind = str(key).split(";")[0].strip().lower()
            if (kind == "application/json" or kind.endswith("+json")) and isinstance(media, dict):
                return str(key), media
    return "application/json", {}


def form_kind(media_type: str) -> str | None:
    """ "multipart" or "urlencoded" for a form media type (parameters ignored); None for another."""
    kind = media_type.split(";")[0].strip().lower()
    return {"multipart/form-data": "multipart", "application/x-www-form-urlencoded": "urlencoded"}.get(kind)


def server_prefix(document: dict[str, Any], path: Path) -> str:
    """The path part of the first server's URL, which every path of the document is served under
    (`https://api.example.com/v1` and `/videos` serve `/v1/videos`); "" for none or "/". Server
    variables take their defaults."""
    servers = document.get("servers")
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], dict):
        return ""
    url = servers[0].get("url")
    if not isinstance(url, str):
        raise ContractError(f"{path}: at /servers/0/url: a server's url must be a string")
    for name, variable in (servers[0].get("variables") or {}).items():
        if isinstance(variable, dict) and "default" in variable:
            url = url.replace("{" + str(name) + "}", str(variable["default"]))
    if "://" in url:
        url = url.split("://", 1)[1]
        url = "/" + url.split("/", 1)[1] if "/" in url else ""
    prefix = "/" + url.strip("/") if url.strip("/") else ""
    if "{" in prefix or "?" in prefix or "#" in prefix:
        raise ContractError(f"{path}: at /servers/0/url: the server's path {prefix!r} must be a plain path")
    return prefix


def resolve_location(name_or_path: str | Path) -> Path:
    """`seed` / `current` name a shipped document; anything else is a file path."""
    if str(name_or_path) in BUILTIN_NAMES:
        return BUILTIN_DIR / f"{name_or_path}.yaml"
    path = Path(name_or_path)
    if not path.is_file():
        raise ContractError(
            f"contract {str(name_or_path)!r} is neither a shipped name ({', '.join(BUILTIN_NAMES)}) nor a readable file"
        )
    return path


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContractError(f"{path}: cannot read the contract: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ContractError(f"{path}: not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ContractError(f"{path}: an OpenAPI document must be a mapping at the top level")
    return data


class _Bundler:
    def __init__(self, root_path: Path) -> None:
        self.root_path = root_path.resolve()
        self.files: dict[Path, dict[str, Any]] = {}
        self.own: dict[str, Any] = copy.deepcopy(self._load(self.root_path))
        own_components = self.own.pop("components", None) or {}
        self.origin: dict[tuple[str, str], Path] = {
            (kind, name): self.root_path for kind, items in own_components.items() for name in items
        }
        self.components: dict[str, dict[str, Any]] = {kind: {} for kind in own_components}
        self.own_components = own_components

    def _load(self, path: Path) -> dict[str, Any]:
        if path not in self.files:
            self.files[path] = _read(path)
        return self.files[path]

    def run(self) -> dict[str, Any]:
        document = {key: self._walk(value, self.root_path, f"/{_escape(key)}") for key, value in self.own.items()}
        for kind, items in self.own_components.items():
            for name, value in items.items():
                where = f"/components/{_escape(kind)}/{_escape(name)}"
                self.components[kind][name] = self._walk(value, self.root_path, where)
        document["components"] = self.components
        return document

    def _walk(self, node: Any, base: Path, where: str) -> Any:
        """`node` (at `where` in the file `base`) with its references made local."""
        if isinstance(node, list):
            return [self._walk(item, base, f"{where}/{index}") for index, item in enumerate(node)]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            node = {**node, "$ref": self._import(ref, base, where)}
        return {
            key: (value if key == "$ref" else self._walk(value, base, f"{where}/{_escape(key)}"))
            for key, value in node.items()
        }

    def _import(self, ref: str, base: Path, where: str) -> str:
        file_part, _, pointer = ref.partition("#")
        target = (base.parent / file_part).resolve() if file_part else base
        if target == self.root_path:
            return f"#{pointer}"
        at = f"{base}: at {where or '/'}: reference {ref!r}"
        parts = pointer.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "components":
            raise ContractError(f"{at} must point at '#/components/<kind>/<name>' of another file")
        _, kind, name = parts
        if not target.is_file():
            raise ContractError(f"{at}: cannot read {target}: there is no such file")
        source = self._load(target)
        try:
            value = source["components"][kind][name]
        except (KeyError, TypeError):
            raise ContractError(f"{at}: {target.name} has no {pointer}") from None
        seen = self.origin.get((kind, name))
        if seen is None:
            self.origin[(kind, name)] = target
            self.components.setdefault(kind, {})[name] = None  # placeholder against cycles
            self.components[kind][name] = self._walk(copy.deepcopy(value), target, f"/components/{kind}/{name}")
        elif seen != target:
            raise ContractError(f"{base}: component {kind}/{name} is defined in both {seen.name} and {target.name}")
        return f"#/components/{kind}/{name}"


def _escape(part: Any) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def load_document(name_or_path: str | Path) -> tuple[Path, dict[str, Any]]:
    """Return the document's location and its bundled, self-contained form."""
    return load_bundle(name_or_path)[:2]


def load_bundle(name_or_path: str | Path) -> tuple[Path, dict[str, Any], dict[tuple[str, str], Path]]:
    """`load_document`, and the file each component came from ((kind, name) -> path)."""
    path = resolve_location(name_or_path)
    bundler = _Bundler(path)
    document = bundler.run()
    if not str(document.get("openapi", "")).startswith("3."):
        raise ContractError(f"{path}: not an OpenAPI 3.x document (no 'openapi: 3.x' field)")
    if str(document["openapi"]).startswith("3.0"):
        _nullable_as_type(document)
    return path, document, bundler.origin


def _nullable_as_type(node: Any) -> None:
    """OpenAPI 3.0's `nullable: true` written the 3.1 (JSON Schema) way, which the validators read:
    `type: string, nullable: true` becomes `type: [string, "null"]` (and null joins an enum)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("nullable") is True:
                if isinstance(item.get("type"), str):
                    item["type"] = [item["type"], "null"]
                if isinstance(item.get("enum"), list) and None not in item["enum"]:
                    item["enum"] = [*item["enum"], None]
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
