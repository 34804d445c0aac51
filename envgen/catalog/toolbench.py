"""ToolBench (RapidAPI-derived) tool JSON to ToolSpecs: one tool per entry of `api_list`.

Two shapes carry an `api_list`: a tool file (the tool's name at the top, its APIs below) and a query file
(a list of user queries, each with the APIs it may use, every API entry naming its own `tool_name`,
`api_name`, `api_description` and often an example `template_response`). A query file's APIs are
collected across its records, each distinct tool + API once; an example response, where no response
schema is given, becomes the returned record's fields (the JSON type of each scalar value).

RapidAPI types are upper-case strings. The ones that travel as text (dates, times, geo points, enums whose
values are not listed) become strings so the API stays usable; ARRAY is a list of strings and OBJECT a
record of any fields (stored as JSON); FILE, which a simulated tool cannot hold, is refused for that API.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from envgen.catalog.json_schema import parameter
from envgen.catalog.openapi import EMPTY_RETURNS, Outcome, Resolver, snake_case
from envgen.catalog.spec import FIELD_RE, SpecError, ToolSpec, validate_spec

FORMAT = "toolbench"
MAX_NAME = 64  # NAME_RE's limit
TYPES = {
    "STRING": "string",
    "DATE": "string",
    "TIME": "string",
    "GEOPOINT": "string",
    "ENUM": "string",
    "NUMBER": "number",
    "INTEGER": "integer",
    "BOOLEAN": "boolean",
    # RapidAPI lists travel as comma-separated text or JSON arrays; both are lists of strings to a model.
    "ARRAY": "array",
    "OBJECT": "object",
}
# What a string-typed value must look like, told to the model since the type no longer says it; RapidAPI
# often spells it in the type itself (`DATE (YYYY-MM-DD)`, `TIME (24-hour HH:MM)`), which then wins.
_HINTS = {"DATE": "YYYY-MM-DD", "GEOPOINT": "latitude,longitude"}
_TYPE_RE = re.compile(r"^\s*([A-Za-z_]+)\s*(?:\((.*)\))?\s*$")


def detect(doc: Any) -> bool:
    """One tool per file as ToolBench ships them, or a list of such tools; `api_list` is the tell."""
    tools = doc if isinstance(doc, list) else [doc]
    return bool(tools) and all(isinstance(t, dict) and isinstance(t.get("api_list"), list) for t in tools)


def tool_name(tool: str, api: str) -> str:
    """`<tool>__<api>` within NAME_RE: a name starting with a digit gets `tool_` in front; a long name
    loses the end of its tool part first (the API part tells one tool's APIs apart), and a name whose API
    part alone is too long is cut and given a short hash so distinct APIs stay distinct."""
    if tool[:1].isdigit():
        tool = f"tool_{tool}"
    full = f"{tool}__{api}"
    if len(full) <= MAX_NAME:
        return full
    room = MAX_NAME - 2 - len(api)
    if room >= 8:
        return f"{tool[:room].rstrip('_')}__{api}"
    digest = hashlib.sha1(full.encode()).hexdigest()[:8]
    return f"{full[: MAX_NAME - 9].rstrip('_')}_{digest}"


def _is_query_record(record: dict[str, Any]) -> bool:
    """A query-file record: no tool name of its own, APIs that each name their tool."""
    apis = record["api_list"]
    return not (record.get("tool_name") or record.get("standardized_name")) and all(
        isinstance(a, dict) and a.get("tool_name") for a in apis
    )


def _query_tools(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A query file's APIs regrouped as tool files: one per tool, each distinct API once, first seen first."""
    tools: dict[str, dict[str, Any]] = {}
    seen: set[tuple[str, str]] = set()
    for record in records:
        for api in record["api_list"]:
            name = str(api["tool_name"])
            api_name = str(api.get("api_name") or api.get("name") or "")
            if (name, api_name) in seen:
                continue
            seen.add((name, api_name))
            tool = tools.setdefault(
                name, {"tool_name": name, "category": api.get("category_name"), "api_list": []}
            )
            tool["api_list"].append(api)
    return list(tools.values())


def parse(doc: Any, origin: str) -> Outcome:
    specs: list[ToolSpec] = []
    refused: list[tuple[str, str]] = []
    records = doc if isinstance(doc, list) else [doc]
    if records and all(_is_query_record(r) for r in records):
        records = _query_tools(records)
    for i, tool in enumerate(records):
        raw = tool.get("standardized_name") or tool.get("tool_name") or tool.get("name") or tool.get("title")
        prefix = snake_case(raw) if isinstance(raw, str) else ""
        if not prefix:
            refused.append((f"#{i}", f"ToolBench tool #{i} has no tool_name or standardized_name"))
            continue
        # the tool's own name first (it is what the tool names start with), then its RapidAPI category
        category = snake_case(str(tool.get("category") or tool.get("category_name") or ""))
        tags = (prefix, category) if category and category != prefix else (prefix,)
        for j, api in enumerate(tool["api_list"]):
            try:
                specs.append(_api(api, j, prefix, tags, tool, origin))
            except SpecError as exc:
                api_name = snake_case(str(api.get("name") or "")) if isinstance(api, dict) else ""
                refused.append((tool_name(prefix, api_name) if api_name else f"{prefix}/#{j}", str(exc)))
    return specs, refused


def _api(api: Any, j: int, prefix: str, tags: tuple[str, ...], tool: dict[str, Any], origin: str) -> ToolSpec:
    if not isinstance(api, dict):
        raise SpecError(f"tool {prefix!r}: api #{j} is not an object")
    api_name = snake_case(str(api.get("name") or api.get("api_name") or ""))
    if not api_name:
        raise SpecError(f"tool {prefix!r}: api #{j} has no name")
    name = tool_name(prefix, api_name)
    props: dict[str, Any] = {}
    required: list[str] = []
    for group, is_required in (("required_parameters", True), ("optional_parameters", False)):
        for p in api.get(group) or []:
            if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not p["name"]:
                raise SpecError(f"tool {name!r}: an entry of {group} has no name")
            src = p.get("type")
            m = _TYPE_RE.match(str(src or ""))
            rapid = m.group(1).upper() if m else ""
            hint = (m.group(2) if m else None) or _HINTS.get(rapid)
            desc = str(p.get("description") or "").strip()
            if hint and TYPES.get(rapid) == "string":
                desc = f"{desc} ({hint})".strip()
            node = {"type": TYPES.get(rapid, src), "description": desc, "default": p.get("default")}
            props[p["name"]] = parameter(name, p["name"], node)
            if is_required and p["name"] not in required:
                required.append(p["name"])
    spec = ToolSpec(
        name=name,
        description=str(
            api.get("description") or api.get("api_description") or tool.get("tool_description") or ""
        ).strip(),
        parameters={"type": "object", "properties": props, "required": required},
        returns=_returns(api.get("schema"), api.get("template_response")),
        source_format=FORMAT,
        source_origin=origin,
        tags=tags,
        http_method=str(api.get("method") or "").lower(),
    )
    validate_spec(spec)
    return spec


def _returns(schema: Any, example: Any = None) -> dict[str, Any]:
    """RapidAPI's optional response `schema` when it is a usable JSON Schema, else the fields of an example
    response (`template_response`); both are often empty or junk, and a missing response shape should not
    cost us the API, so anything else means 'returns a record'."""
    if not isinstance(schema, dict) or not (
        schema.get("properties") or schema.get("type") in ("object", "array")
    ):
        return _example_returns(example)
    try:
        return Resolver(schema).returns(schema)
    except (SpecError, AttributeError, TypeError):
        return dict(EMPTY_RETURNS)


_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))


def _example_returns(example: Any) -> dict[str, Any]:
    """The scalar fields of an example record (or of a list's first record), typed by their values; ToolBench
    writes the types themselves as values too (`"name": "str"`), read as that type."""
    record = example[0] if isinstance(example, list) and example else example
    if not isinstance(record, dict):
        return dict(EMPTY_RETURNS)
    spelled = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
    fields: dict[str, Any] = {}
    for name, value in record.items():
        kind = spelled.get(value) if isinstance(value, str) else None
        kind = kind or next((t for py, t in _JSON_TYPES if isinstance(value, py)), None)
        if kind and isinstance(name, str) and FIELD_RE.match(name):
            fields[name] = {"type": kind, "description": ""}
    shape = {"type": "object", "properties": fields}
    return {"type": "array", "items": shape} if isinstance(example, list) else shape
