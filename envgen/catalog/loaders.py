"""Read API spec files in the formats we accept and normalise them into `ToolSpec`s.

Every file is read on its own and every spec validated on its own, so one bad spec is reported (origin,
name, reason) and the rest of the catalog still loads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from envgen.catalog.spec import SpecError, ToolSpec, validate_spec

BUNDLED_FORMAT = "agentscaler-catalog/1"


@dataclass
class Refusal:
    origin: str
    name: str
    reason: str


@dataclass
class CatalogLoad:
    specs: list[ToolSpec] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    duplicates: int = 0


def _from_function_dict(fn: dict[str, Any], fmt: str, origin: str, tags: Iterable[str] = ()) -> ToolSpec:
    """A function dict (`name`, `description`, `parameters`, optional `returns`/`tags`) to a ToolSpec."""
    if not isinstance(fn, dict):
        raise SpecError(f"{origin}: expected an object per tool, got {type(fn).__name__}")
    name = fn.get("name")
    if not name or not isinstance(name, str):
        raise SpecError(f"{origin}: tool without a name")
    params = fn.get("parameters") or {"type": "object", "properties": {}}
    returns = fn.get("returns") or fn.get("response") or {"type": "object", "properties": {}}
    if not isinstance(params, dict) or not isinstance(returns, dict):
        raise SpecError(f"tool {name!r}: parameters and returns must be JSON objects")
    spec = ToolSpec(
        name=name,
        description=str(fn.get("description", "")).strip(),
        parameters=params,
        returns=returns,
        source_format=fmt,
        source_origin=origin,
        tags=tuple(fn.get("tags") or tags),
    )
    validate_spec(spec)
    return spec


def parse_document(doc: Any, origin: str) -> tuple[list[ToolSpec], list[Refusal]]:
    """Detect the document's format and normalise each tool in it; refusals carry the reason."""
    if isinstance(doc, dict) and doc.get("format") == BUNDLED_FORMAT:
        entries, fmt = doc.get("tools", []), "agentscaler"
        unwrap = lambda e: e  # noqa: E731
    elif isinstance(doc, list) and doc and all(isinstance(e, dict) and "function" in e for e in doc):
        entries, fmt = doc, "openai-tools"
        unwrap = lambda e: e["function"]  # noqa: E731
    elif isinstance(doc, list):
        entries, fmt = doc, "json-schema-functions"
        unwrap = lambda e: e  # noqa: E731
    elif isinstance(doc, dict) and "name" in doc:
        entries, fmt = [doc], "json-schema-functions"
        unwrap = lambda e: e  # noqa: E731
    else:
        return [], [Refusal(origin, "*", "unrecognised document format")]
    specs: list[ToolSpec] = []
    refused: list[Refusal] = []
    for i, entry in enumerate(entries):
        label = entry.get("name", f"#{i}") if isinstance(entry, dict) else f"#{i}"
        try:
            specs.append(_from_function_dict(unwrap(entry), fmt, origin))
        except (SpecError, KeyError, TypeError) as exc:
            refused.append(Refusal(origin, str(label), str(exc)))
    return specs, refused


def _merge(load: CatalogLoad, specs: list[ToolSpec], seen: dict[str, str]) -> None:
    """Keep the first spec of each signature; a same-name spec with another signature is refused."""
    for spec in specs:
        sig = spec.signature()
        if sig in seen.values():
            load.duplicates += 1
            continue
        if spec.name in seen:
            load.refused.append(
                Refusal(spec.source_origin, spec.name, f"name already used by {seen[spec.name]}")
            )
            continue
        seen[spec.name] = sig
        load.specs.append(spec)


def load_paths(paths: Iterable[Path]) -> CatalogLoad:
    """Load every `*.json` file under the given files or folders, in sorted order for determinism."""
    load, seen = CatalogLoad(), {}
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise FileNotFoundError(f"catalog source {p} does not exist")
        files.extend(sorted(p.rglob("*.json")) if p.is_dir() else [p])
    for f in files:
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            load.refused.append(Refusal(str(f), "*", f"unreadable JSON: {exc}"))
            continue
        specs, refused = parse_document(doc, str(f))
        load.refused.extend(refused)
        _merge(load, specs, seen)
    return load


def bundled_catalog_dir() -> Path:
    """The catalog shipped with the package: the embedded default and the test fixture."""
    return Path(str(resources.files("envgen.catalog") / "bundled"))


def load_bundled() -> CatalogLoad:
    return load_paths([bundled_catalog_dir()])
