"""BFCL and xLAM function documentation to ToolSpecs.

BFCL writes JSON Schema with Python-flavoured type names (`dict`, `float`, `tuple`, `any`) and ships
functions alone, in lists, or inside question records (`{"id", "question", "function": [...]}`). xLAM
writes a flat `{arg: {"type": "str, optional", "default": ...}}` map and ships it inside records whose
`tools` field is often a JSON string. Both are normalised to JSON-Schema parameters (`json_schema.parameter`:
`dict` is an object, `list`/`tuple` an array); `any`, which a simulated tool can neither store nor check,
is refused per function.
"""

from __future__ import annotations

import json
import re
from typing import Any

from envgen.catalog.json_schema import parameter, returned
from envgen.catalog.openapi import Outcome, snake_case
from envgen.catalog.spec import SpecError, ToolSpec, validate_spec

BFCL, XLAM = "bfcl", "xlam"
_OPTIONAL = (re.compile(r"(.+?)\s*,\s*optional", re.I), re.compile(r"Optional\[(.+)\]"))


def _kind(e: Any) -> str | None:
    """Which of the four shapes an entry has; None for anything that is not specific to BFCL or xLAM."""
    if not isinstance(e, dict):
        return None
    if (
        e.get("type") != "function"
        and isinstance(e.get("function"), list | dict)
        and {"id", "question"} & e.keys()
    ):
        return "bfcl-record"
    if isinstance(e.get("tools"), str | list) and {"id", "query", "answers"} & e.keys():
        return "xlam-record"
    params = e.get("parameters")
    if isinstance(params, dict) and params.get("type") == "dict":
        return BFCL
    if isinstance(params, dict) and params and "properties" not in params:
        if all(isinstance(v, dict) for v in params.values()):  # an argument may itself be called `type`
            return XLAM
    return None


def detect(doc: Any) -> bool:
    """A document is ours when any entry has a BFCL/xLAM-only shape; the other entries of a list are then
    read as BFCL too (its schema is a superset of plain JSON Schema) so their faults get precise reasons."""
    return any(_kind(e) for e in (doc if isinstance(doc, list) else [doc]))


def parse(doc: Any, origin: str) -> Outcome:
    specs: list[ToolSpec] = []
    refused: list[tuple[str, str]] = []
    for i, entry in enumerate(doc if isinstance(doc, list) else [doc]):
        kind = _kind(entry)
        if kind in ("bfcl-record", "xlam-record"):
            _record(entry, kind, i, origin, specs, refused)
        else:
            _one(entry, f"#{i}", origin, specs, refused)
    return specs, refused


def _record(
    rec: dict[str, Any], kind: str, i: int, origin: str, specs: list[ToolSpec], refused: list[tuple[str, str]]
) -> None:
    rid = str(rec.get("id", f"#{i}"))
    fns: Any = rec.get("function") if kind == "bfcl-record" else rec.get("tools")
    if isinstance(fns, str):
        try:
            fns = json.loads(fns)
        except json.JSONDecodeError as exc:
            refused.append((f"record {rid}", f"record {rid}: `tools` is not valid JSON: {exc}"))
            return
    for j, fn in enumerate(fns if isinstance(fns, list) else [fns]):
        _one(fn, f"record {rid}/#{j}", origin, specs, refused)


def _one(fn: Any, label: str, origin: str, specs: list[ToolSpec], refused: list[tuple[str, str]]) -> None:
    """Convert one function, turning its fault into a refusal labelled by its (normalised) name."""
    name = snake_case(fn["name"]) if isinstance(fn, dict) and isinstance(fn.get("name"), str) else ""
    try:
        if not isinstance(fn, dict):
            raise SpecError(f"{label}: expected an object per function, got {type(fn).__name__}")
        if not name:
            raise SpecError(f"{label}: function without a name")
        convert = _xlam if _kind(fn) == XLAM else _bfcl
        specs.append(convert(fn, name, origin))
    except (SpecError, AttributeError, TypeError) as exc:
        refused.append((name or label, str(exc)))


def _bfcl(fn: dict[str, Any], name: str, origin: str) -> ToolSpec:
    params = fn.get("parameters", {"type": "dict", "properties": {}})
    if not isinstance(params, dict):
        raise SpecError(f"tool {name!r}: parameters must be an object schema, got {type(params).__name__}")
    if params.get("type", "dict") not in ("dict", "object"):
        raise SpecError(
            f"tool {name!r}: parameters must be an object schema, got type {params.get('type')!r}"
        )
    raw = params.get("properties") or {}
    if not isinstance(raw, dict):
        raise SpecError(f"tool {name!r}: parameters.properties must be an object")
    props: dict[str, Any] = {}
    for pname, p in raw.items():
        if not isinstance(p, dict):
            raise SpecError(f"tool {name!r}: parameter {pname!r} has no schema object")
        props[pname] = parameter(name, pname, p)
    return _spec(fn, name, props, list(params.get("required") or []), BFCL, origin)


def _xlam(fn: dict[str, Any], name: str, origin: str) -> ToolSpec:
    props: dict[str, Any] = {}
    required: list[str] = []
    for pname, p in fn["parameters"].items():
        src = p.get("type")
        text, optional = str(src or "").strip(), False
        for pattern in _OPTIONAL:
            m = pattern.fullmatch(text)
            if m:
                text, optional = m.group(1).strip(), True
        node = {**_python_type(text or src), "description": p.get("description"), "default": p.get("default")}
        props[pname] = parameter(name, pname, node)
        if not optional and "default" not in p:
            required.append(pname)
    return _spec(fn, name, props, required, XLAM, origin)


_GENERIC = re.compile(r"(?i)(list|tuple|set|dict)\[(.+)\]")


def _python_type(text: Any) -> dict[str, Any]:
    """xLAM's Python type hints as a schema node: `List[str]` is an array of strings, `Dict[str, int]` a
    record; anything else goes through as a type name (`parameter` maps `str`, `int`, ... or refuses)."""
    m = _GENERIC.fullmatch(str(text))
    if m is None:
        return {"type": text}
    if m.group(1).lower() == "dict":
        return {"type": "object"}
    return {"type": "array", "items": _python_type(m.group(2).strip())}


def _spec(
    fn: dict[str, Any], name: str, props: dict[str, Any], required: list[str], fmt: str, origin: str
) -> ToolSpec:
    """Dotted BFCL names (`math.factorial`) carry their namespace, which is the natural tag."""
    raw = str(fn["name"])
    spec = ToolSpec(
        name=name,
        description=str(fn.get("description") or "").strip(),
        parameters={"type": "object", "properties": props, "required": required},
        returns=returned(name, fn.get("response")),  # BFCL's multi-turn docs declare one
        source_format=fmt,
        source_origin=origin,
        tags=(snake_case(raw.split(".")[0]),) if "." in raw else (),
    )
    validate_spec(spec)
    return spec
