"""ACEBench function specs as OpenAI tools.

ACEBench writes specs in a loose JSON-Schema dialect: types such as `dict`, `float`, `list(string)`,
`objectArray`, `tuple`, `any`; some distractor specs carry their schema under `arguments` instead of
`parameters`; names may contain dots, which the OpenAI API rejects. Tools are converted here, and the safe
name of each is mapped back so calls are judged under ACEBench's own names.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evals.acebench.data import AceBenchData

_TYPE_MAP = {
    "dict": "object",
    "object": "object",
    "float": "number",
    "number": "number",
    "int": "integer",
    "integer": "integer",
    "bool": "boolean",
    "boolean": "boolean",
    "str": "string",
    "string": "string",
    "enum": "string",
    "list": "array",
    "array": "array",
    "tuple": "array",
    "objectArray": "array",
    "list(string)": "array",
    "list(enum)": "array",
}
_ITEM_TYPE = {"list(string)": "string", "list(enum)": "string", "objectArray": "object"}
_SAFE = re.compile(r"[^a-zA-Z0-9_-]")


def spec_parameters(spec: dict[str, Any]) -> dict[str, Any]:
    """The parameter schema of a spec, wherever ACEBench put it."""
    params = spec.get("parameters")
    if params is None:
        params = spec.get("arguments")
    return params if isinstance(params, dict) else {}


def convert_schema(node: Any) -> Any:
    """One ACEBench schema node in JSON Schema; unknown types (`any`) are left untyped."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, val in node.items():
        if key == "type" and isinstance(val, str):
            mapped = _TYPE_MAP.get(val)
            if mapped:
                out["type"] = mapped
            if val in _ITEM_TYPE and "items" not in node:
                out["items"] = {"type": _ITEM_TYPE[val]}
        elif key == "properties" and isinstance(val, dict):
            out["properties"] = {k: convert_schema(v) for k, v in val.items()}
        elif key == "items":
            out["items"] = convert_schema(val)
        elif key in ("description", "enum", "required", "format", "minimum", "maximum", "default"):
            out[key] = val
    if out.get("type") == "object":
        out.setdefault("properties", {})
    return out


def safe_name(name: str) -> str:
    return _SAFE.sub("_", name)[:64] or "function"


def to_openai_tools(functions: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """OpenAI `tools` for one item's functions and the map {offered name: ACEBench name}."""
    tools, name_map = [], {}
    for spec in functions:
        name = str(spec.get("name", ""))
        offered = safe_name(name)
        n = 2
        while offered in name_map and name_map[offered] != name:
            offered = f"{safe_name(name)[:60]}_{n}"
            n += 1
        name_map[offered] = name
        params = convert_schema(spec_parameters(spec)) or {}
        params["type"] = "object"
        params.setdefault("properties", {})
        tools.append(
            {
                "type": "function",
                "function": {
                    "name": offered,
                    "description": str(spec.get("description", "")),
                    "parameters": params,
                },
            }
        )
    return tools, name_map


def acebench_tool_schemas(data: AceBenchData) -> list[dict[str, Any]]:
    """Every distinct function spec of the loaded data as an OpenAI tool, sorted by name (for a
    contamination report: which of ACEBench's tools resemble our synthesised ones)."""
    seen: dict[str, dict[str, Any]] = {}
    for subs in data.items.values():
        for items in subs.values():
            for item in items:
                tools, _ = to_openai_tools(item.functions)
                for tool in tools:
                    seen.setdefault(json.dumps(tool, sort_keys=True, ensure_ascii=False), tool)
    return sorted(seen.values(), key=lambda t: (t["function"]["name"], json.dumps(t, sort_keys=True)))
