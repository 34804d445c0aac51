"""Parameter schemas of any JSON-Schema shape: normalised on import, checked at call time.

Real catalogs take lists (`attendees`, `mediaIds`), records (`shipping_address`) and nested mixtures of
both, and spell types in many dialects (BFCL's `dict`/`float`, RapidAPI's `ARRAY`). Every importer turns a
parameter into one clean JSON Schema here (`parameter`), so the environment can store such values as JSON
columns, seed them and validate a model's arguments against them (`violation`) with an error that names
the offending part (`edits[0].newText`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any


class SpecError(ValueError):
    """A spec that cannot be normalised; the message names the spec and the reason."""


SCALAR_TYPES = {"string", "integer", "number", "boolean"}
STRUCTURED_TYPES = {"array", "object"}
JSON_TYPES = SCALAR_TYPES | STRUCTURED_TYPES
# Type names as the dialects we read write them, lower-cased, to JSON-Schema types.
TYPE_NAMES: Mapping[str, str] = {
    **{t: t for t in JSON_TYPES},
    "str": "string",
    "int": "integer",
    "float": "number",
    "double": "number",
    "bool": "boolean",
    "dict": "object",
    "list": "array",
    "tuple": "array",
}
MAX_DEPTH = 4  # a parameter nested deeper than this is refused: no model fills it reliably
_SCALAR_KEYWORDS = ("format", "minimum", "maximum", "minLength", "maxLength", "pattern")
_ARRAY_KEYWORDS = ("minItems", "maxItems", "uniqueItems")
_PY_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
}


def _type_of(node: dict[str, Any], type_names: Mapping[str, str]) -> str | None:
    """The one type a node declares (`["string", "null"]` is a string); a node with `properties` or
    `items` and no type is an object or an array."""
    t = node.get("type")
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        t = rest[0] if len(rest) == 1 else None
    if t is None:
        t = "object" if "properties" in node else "array" if "items" in node else None
    return type_names.get(t.lower()) if isinstance(t, str) else None


def fits(value: Any, kind: str) -> bool:
    """Whether a value has a JSON-Schema type (a bool is no number, as in JSON Schema; an unknown type
    fits nothing)."""
    if kind not in _PY_TYPES or (isinstance(value, bool) and kind != "boolean"):
        return False
    return isinstance(value, _PY_TYPES[kind])


def parameter(
    tool: str,
    path: str,
    node: Any,
    type_names: Mapping[str, str] = TYPE_NAMES,
    resolve: Callable[[Any], Any] = lambda n: n,
    depth: int = 0,
) -> dict[str, Any]:
    """One parameter as a clean JSON Schema: its type, description, enum, default (kept only when it has
    the type), the scalar constraints, and for arrays and objects their items and properties, recursively.
    Anything else (`any`, a missing type, a file upload, nesting past MAX_DEPTH) is a SpecError naming the
    tool, the parameter's path and the type as the source wrote it."""
    node = resolve(node)
    if not isinstance(node, dict):
        raise SpecError(f"tool {tool!r}: parameter {path!r} has no schema object")
    kind = _type_of(node, type_names)
    if kind is None:
        raise SpecError(f"tool {tool!r}: parameter {path!r} has unsupported type {node.get('type')!r}")
    if depth > MAX_DEPTH:
        raise SpecError(f"tool {tool!r}: parameter {path!r} is nested deeper than {MAX_DEPTH} levels")
    out: dict[str, Any] = {"type": kind, "description": str(node.get("description") or "").strip()}
    if depth and not out["description"]:
        del out["description"]  # a list's items and a record's fields say nothing more than their parent
    enum = node.get("enum")
    if isinstance(enum, list) and enum and kind in SCALAR_TYPES:
        out["enum"] = enum
    default = node.get("default")
    if default is not None and default != "" and fits(default, kind):
        out["default"] = default
    if kind in SCALAR_TYPES:
        out.update({k: node[k] for k in _SCALAR_KEYWORDS if k in node})
    elif kind == "array":
        # An array that does not say what it holds (common, and ACEBench has one) holds strings.
        items = node.get("items") if node.get("items") is not None else {"type": "string"}
        out["items"] = parameter(tool, f"{path}[]", items, type_names, resolve, depth + 1)
        out.update({k: node[k] for k in _ARRAY_KEYWORDS if k in node})
    else:
        props = resolve(node.get("properties")) or {}
        if not isinstance(props, dict):
            raise SpecError(f"tool {tool!r}: parameter {path!r} has properties that are not an object")
        out["properties"] = {
            str(k): parameter(tool, f"{path}.{k}", v, type_names, resolve, depth + 1)
            for k, v in props.items()
        }
        required = node.get("required")
        if isinstance(required, list):
            out["required"] = [r for r in required if r in out["properties"]]
    return out


def returned(tool: str, node: Any) -> dict[str, Any]:
    """What a tool returns as a clean object (or array of objects) schema: each field normalised like a
    parameter, and a field no environment can hold left out rather than costing the tool (a response
    schema describes, it is not sent)."""
    if not isinstance(node, dict):
        return {"type": "object", "properties": {}}
    many = _type_of(node, TYPE_NAMES) == "array"
    record = node.get("items") if many else node
    props = record.get("properties") if isinstance(record, dict) else None
    fields: dict[str, Any] = {}
    for name, field in (props if isinstance(props, dict) else {}).items():
        try:
            fields[str(name)] = parameter(tool, f"returns.{name}", field)
        except SpecError:
            continue
    shape = {"type": "object", "properties": fields}
    return {"type": "array", "items": shape} if many else shape


def check_declared(tool: str, path: str, node: Any, depth: int = 0) -> None:
    """Refuse a schema the environment cannot store or check (already normalised specs pass as they are):
    every node has a JSON type, arrays say what they hold, nesting stays within MAX_DEPTH."""
    kind = node.get("type") if isinstance(node, dict) else None
    if kind not in JSON_TYPES:
        raise SpecError(f"tool {tool!r}: parameter {path!r} has unsupported type {kind!r}")
    if depth > MAX_DEPTH:
        raise SpecError(f"tool {tool!r}: parameter {path!r} is nested deeper than {MAX_DEPTH} levels")
    if kind == "array":
        if not isinstance(node.get("items"), dict):
            raise SpecError(f"tool {tool!r}: parameter {path!r} is an array that does not say what it holds")
        check_declared(tool, f"{path}[]", node["items"], depth + 1)
    if kind == "object":
        props = node.get("properties", {})
        if not isinstance(props, dict):
            raise SpecError(f"tool {tool!r}: parameter {path!r} has properties that are not an object")
        for k, v in props.items():
            check_declared(tool, f"{path}.{k}", v, depth + 1)


def violation(path: str, value: Any, schema: dict[str, Any]) -> str | None:
    """Why a value does not satisfy a parameter schema, naming the part (`edits[1].oldText`), or None.
    Checks type, enum, numeric and length ranges, item counts, and an object's required and declared
    properties (an object that declares none takes any keys)."""
    kind = schema.get("type")
    if not fits(value, kind):
        return f"argument {path!r} must be of type {kind}, got {shown(value)}"
    if schema.get("enum") and value not in schema["enum"]:
        return f"argument {path!r} must be one of {schema['enum']}, got {shown(value)}"
    if kind in ("integer", "number"):
        if "minimum" in schema and value < schema["minimum"]:
            return f"argument {path!r} must be at least {schema['minimum']}, got {shown(value)}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"argument {path!r} must be at most {schema['maximum']}, got {shown(value)}"
    if kind == "string" and "maxLength" in schema and len(value) > schema["maxLength"]:
        return f"argument {path!r} must be at most {schema['maxLength']} characters long"
    if kind == "array":
        if len(value) < schema.get("minItems", 0):
            return f"argument {path!r} needs at least {schema['minItems']} items, got {len(value)}"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"argument {path!r} takes at most {schema['maxItems']} items, got {len(value)}"
        for i, item in enumerate(value):
            if problem := violation(f"{path}[{i}]", item, schema.get("items", {"type": "string"})):
                return problem
    if kind == "object":
        props = schema.get("properties") or {}
        missing = [r for r in schema.get("required", []) if r not in value]
        if missing:
            return f"argument {path!r} lacks required fields {missing}"
        unknown = sorted(set(value) - set(props)) if props else []
        if unknown:
            return f"argument {path!r} has unknown fields {unknown}; it takes {sorted(props)}"
        for k, v in value.items():
            if k in props and (problem := violation(f"{path}.{k}", v, props[k])):
                return problem
    return None


def shown(value: Any, limit: int = 80) -> str:
    """A value as an error message may quote it: a model can send megabytes, the message stays short."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def stored(value: Any) -> str:
    """A list or record as the text a JSON column holds: canonical (sorted keys, no spaces), so equal
    values are equal text and a read can filter on them."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
