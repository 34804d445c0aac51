"""The one normalised tool description every stage after the catalog works with.

Specs arrive in many formats (OpenAI tool lists, plain JSON-Schema functions, our bundled catalog files);
they are all normalised into `ToolSpec` so that the graph, schema and task stages never see a format.
Stored as Parquet rows with the JSON-Schema parts as JSON text, because Arrow cannot hold schemas whose
shapes differ from row to row.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from envgen.catalog.json_schema import SCALAR_TYPES, SpecError, check_declared

__all__ = ["SCALAR_TYPES", "SpecError"]  # re-exported: every importer names them from here

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
# Parameter and returned-field names: whatever real APIs use (camelCase, dots, dashes, `$filter`, unicode)
# up to 64 characters, without control characters or surrounding spaces. Storage quotes every name.
FIELD_RE = re.compile(r"^(?=\S)[^\x00-\x1f\x7f]{1,64}(?<=\S)$")


# `<entity>_id`, or camelCase `<entity>Id` / `<entity>ID` (`tweetId`, `deviceID`), as real APIs write it;
# `paid`, `GUID` and `android` are no keys.
_KEY_RE = re.compile(r"^(?P<entity>.*[A-Za-z0-9])(?:_id|(?<=[a-z0-9])I[dD])$")


def is_key(name: str) -> bool:
    """A field that names a record: `<entity>_id` or `<entity>Id` (the catalog's naming rule every later
    stage relies on)."""
    return _KEY_RE.match(name) is not None


def key_entity(name: str) -> str:
    """The entity a key names, in snake case: `order_id` -> `order`, `sourceUserId` -> `source_user`."""
    m = _KEY_RE.match(name)
    if m is None:
        raise ValueError(f"{name!r} is not a key (`<entity>_id` or `<entity>Id`)")
    return snake_name(m.group("entity"))


def snake_name(name: str) -> str:
    """A field's name as lower-case snake words (`startDate` -> `start_date`, `phoneNumber` ->
    `phone_number`, `Zip-Code` -> `zip_code`): real catalogs name fields every way."""
    return re.sub(r"[^a-z0-9]+", "_", re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()).strip("_")


def source_of(origin: str) -> str:
    """The file a spec came from: a JSON-lines file's lines (`file.jsonl:12`) are one source."""
    head, _, tail = origin.rpartition(":")
    return head if head and tail.isdigit() else origin


def key_prefix(entity: str) -> str:
    """The prefix of an entity's key values (`order` -> `ORD-`, `flight_leg` -> `FLX-`), so
    generated catalogs, seeded rows and sampled arguments agree on what an id looks like."""
    letters = "".join(p[0] for p in entity.split("_")) if "_" in entity else entity[:3]
    return letters.upper().ljust(3, "X") + "-"


@dataclass(frozen=True)
class ToolSpec:
    """A tool: its name, what it does, its inputs and outputs (JSON Schema), where it came from."""

    name: str
    description: str
    parameters: dict[str, Any]
    returns: dict[str, Any]
    source_format: str
    source_origin: str
    tags: tuple[str, ...] = field(default_factory=tuple)
    # The HTTP method the source declared (OpenAPI, ToolBench), lower case; "" when it has none. It decides
    # read or write when the name does not start with a known verb (`skycast__daily_forecast`).
    http_method: str = ""

    @property
    def properties(self) -> dict[str, dict[str, Any]]:
        return self.parameters.get("properties", {})

    @property
    def required(self) -> list[str]:
        return list(self.parameters.get("required", []))

    @property
    def returned_object(self) -> dict[str, Any]:
        """The object schema a tool returns: the object itself or the items of a returned array."""
        if self.returns.get("type") == "array":
            return self.returns.get("items", {}) or {}
        return self.returns

    @property
    def returns_many(self) -> bool:
        return self.returns.get("type") == "array"

    def signature(self) -> str:
        """Name plus sorted parameter names and types: two specs with the same signature are duplicates."""
        params = ",".join(f"{k}:{v.get('type', '?')}" for k, v in sorted(self.properties.items()))
        return f"{self.name}({params})"

    def openai_tool(self) -> dict[str, Any]:
        """The tool as offered to a chat model (OpenAI `tools` entry)."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def to_row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            # Property order is meaningful (a returned object's first `*_id` is its key): never sort keys.
            "parameters": json.dumps(self.parameters),
            "returns": json.dumps(self.returns),
            "source_format": self.source_format,
            "source_origin": self.source_origin,
            "tags": list(self.tags),
            "http_method": self.http_method,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ToolSpec:
        return cls(
            name=row["name"],
            description=row["description"],
            parameters=json.loads(row["parameters"]),
            returns=json.loads(row["returns"]),
            source_format=row["source_format"],
            source_origin=row["source_origin"],
            tags=tuple(row["tags"] or ()),
            http_method=row.get("http_method") or "",
        )


def validate_spec(spec: ToolSpec) -> None:
    """Refuse specs the later stages cannot use, naming the tool and the offending part."""
    if not NAME_RE.match(spec.name or ""):
        raise SpecError(f"tool {spec.name!r}: name must match {NAME_RE.pattern}")
    params = spec.parameters
    if params.get("type", "object") != "object" or not isinstance(params.get("properties", {}), dict):
        raise SpecError(f"tool {spec.name!r}: parameters must be a JSON-Schema object with properties")
    for pname, pschema in spec.properties.items():
        if not FIELD_RE.match(pname):
            raise SpecError(
                f"tool {spec.name!r}: parameter name {pname!r} is empty, too long or has control characters"
            )
        check_declared(spec.name, pname, pschema)
    missing = [r for r in spec.required if r not in spec.properties]
    if missing:
        raise SpecError(f"tool {spec.name!r}: required parameters {missing} are not declared")
    for fname in spec.returned_object.get("properties", {}):
        if not FIELD_RE.match(fname):
            raise SpecError(
                f"tool {spec.name!r}: returned field {fname!r} is empty, too long or has control characters"
            )


def specs_to_frame(specs: list[ToolSpec]) -> pl.DataFrame:
    schema = {
        "name": pl.String,
        "description": pl.String,
        "parameters": pl.String,
        "returns": pl.String,
        "source_format": pl.String,
        "source_origin": pl.String,
        "tags": pl.List(pl.String),
        "http_method": pl.String,
    }
    return pl.DataFrame([s.to_row() for s in specs], schema=schema)


def frame_to_specs(frame: pl.DataFrame) -> list[ToolSpec]:
    return [ToolSpec.from_row(r) for r in frame.iter_rows(named=True)]
