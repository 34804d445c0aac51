"""Read API spec files in the formats we accept and normalise them into `ToolSpec`s.

Every file is read on its own and every spec validated on its own, so one bad spec is reported (origin,
name, reason) and the rest of the catalog still loads. Each foreign format lives in its own module
(`openapi`, `toolbench`, `bfcl`) with its own `detect`; this module only dispatches, in a fixed order
from the most to the least distinctive shape, so a document is never claimed by a looser format first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from envgen.catalog import bfcl, openapi, toolbench
from envgen.catalog.json_schema import parameter, returned
from envgen.catalog.spec import SpecError, ToolSpec, source_of, validate_spec

try:  # PyYAML comes with dagster; without it YAML files are refused by name, never silently skipped
    import yaml
except ImportError:  # pragma: no cover - depends on the environment
    yaml = None

BUNDLED_FORMAT = "agentscaler-catalog/1"
ACCEPTED_FORMATS = (
    "agentscaler-catalog/1, OpenAPI 3 (JSON or YAML), ToolBench tool JSON (api_list), "
    "BFCL functions or question records, xLAM functions or records, OpenAI tool lists (alone or as a "
    "request body's `tools`/`functions`), JSON-Schema function specs"
)
SUFFIXES = (".json", ".jsonl", ".yaml", ".yml")
# (detect, parse) per foreign format, tried in this order before the generic function shapes.
IMPORTERS: tuple[tuple[Callable[[Any], bool], Callable[[Any, str], openapi.Outcome]], ...] = (
    (openapi.detect, openapi.parse),
    (toolbench.detect, toolbench.parse),
    (bfcl.detect, bfcl.parse),
)


@dataclass
class Refusal:
    origin: str
    name: str
    reason: str


@dataclass
class CatalogLoad:
    specs: list[ToolSpec] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    # Repeats of a tool already loaded, dropped rather than refused but kept here so a per-source funnel can
    # say where each offered spec went: exact duplicates (same name and signature) and variants (same name
    # in the same file, or with overlapping parameters: one API described again, as BFCL's records do).
    repeats: list[Refusal] = field(default_factory=list)
    variants: list[Refusal] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return len(self.repeats)


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
    if fmt != "agentscaler" and isinstance(params.get("properties"), dict):
        # Foreign files spell types their own way (`dict`, `["string", "null"]`) and nest lists and records:
        # one clean schema per parameter. The bundled catalog is already clean and is kept byte for byte.
        props = {str(k): parameter(name, str(k), v) for k, v in params["properties"].items()}
        params = {"type": "object", "properties": props, "required": list(params.get("required") or [])}
        returns = returned(name, returns)
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


def _functions(
    entries: Any, fmt: str, origin: str, unwrap: Callable[[Any], Any]
) -> tuple[list[ToolSpec], list[Refusal]]:
    specs: list[ToolSpec] = []
    refused: list[Refusal] = []
    for i, entry in enumerate(entries):
        label = entry.get("name", f"#{i}") if isinstance(entry, dict) else f"#{i}"
        try:
            specs.append(_from_function_dict(unwrap(entry), fmt, origin))
        except (SpecError, KeyError, TypeError) as exc:
            refused.append(Refusal(origin, str(label), str(exc)))
    return specs, refused


def parse_document(doc: Any, origin: str) -> tuple[list[ToolSpec], list[Refusal]]:
    """Detect the document's format and normalise each tool in it; refusals carry the reason."""
    if isinstance(doc, dict) and doc.get("format") == BUNDLED_FORMAT:
        return _functions(doc.get("tools", []), "agentscaler", origin, lambda e: e)
    for detect, parse in IMPORTERS:
        if detect(doc):
            specs, reasons = parse(doc, origin)
            return specs, [Refusal(origin, name, reason) for name, reason in reasons]
    if isinstance(doc, dict) and isinstance(doc.get("tools") or doc.get("functions"), list):
        doc = doc.get("tools") or doc["functions"]  # an OpenAI request body: its `tools` (or `functions`)
    if isinstance(doc, list) and doc and all(isinstance(e, dict) and "function" in e for e in doc):
        return _functions(doc, "openai-tools", origin, lambda e: e["function"])
    if isinstance(doc, list):
        return _functions(doc, "json-schema-functions", origin, lambda e: e)
    if isinstance(doc, dict) and "name" in doc:
        return _functions([doc], "json-schema-functions", origin, lambda e: e)
    return [], [Refusal(origin, "*", f"unrecognised document format; accepted: {ACCEPTED_FORMATS}")]


REFUSED_SCHEMA = {"origin": pl.String, "name": pl.String, "reason": pl.String, "kind": pl.String}


def refused_specs_frame(load: CatalogLoad) -> pl.DataFrame:
    """Every offered spec that did not load, with its reason and `kind`: refused, duplicate or variant."""
    rows = [(r.origin, r.name, r.reason, "refused") for r in load.refused]
    rows += [(r.origin, r.name, r.reason, "duplicate") for r in load.repeats]
    rows += [(r.origin, r.name, r.reason, "variant") for r in load.variants]
    return pl.DataFrame(rows, schema=REFUSED_SCHEMA, orient="row")


def _merge(load: CatalogLoad, specs: list[ToolSpec], seen: dict[str, str], kept: dict[str, ToolSpec]) -> None:
    """Keep the first spec of each name: an exact repeat is a duplicate, a same-named spec from the same file
    or whose parameters overlap the first's is a variant (both dropped and recorded); a same-named spec
    from another file with other parameters is refused (two APIs cannot share a name)."""
    for spec in specs:
        sig = spec.signature()
        if seen.get(spec.name) == sig:  # the signature starts with the name: O(1), not a scan of all
            load.repeats.append(Refusal(spec.source_origin, spec.name, "duplicate of a spec already loaded"))
            continue
        if spec.name in seen:
            first = kept[spec.name]
            if _same_file(first, spec) or _overlap(first, spec) >= VARIANT_OVERLAP:
                load.variants.append(
                    Refusal(spec.source_origin, spec.name, f"variant of {seen[spec.name]}; the first is kept")
                )
            else:
                load.refused.append(
                    Refusal(spec.source_origin, spec.name, f"name already used by {seen[spec.name]}")
                )
            continue
        seen[spec.name] = sig
        kept[spec.name] = spec
        load.specs.append(spec)


# Share of parameter names two same-named specs must have in common to be one API described twice.
VARIANT_OVERLAP = 0.5


def _same_file(a: ToolSpec, b: ToolSpec) -> bool:
    """Two specs from one file (one catalog: a name there means one tool, however often it is described)."""
    return source_of(a.source_origin) == source_of(b.source_origin)


def _overlap(a: ToolSpec, b: ToolSpec) -> float:
    """Jaccard overlap of two specs' parameter names (1.0 when neither has any)."""
    x, y = set(a.properties), set(b.properties)
    return len(x & y) / len(x | y) if x | y else 1.0


# Guards against hostile files: a spec file larger than this is refused unread, and a document whose tree
# (aliases expanded, as any walk over it would) is larger or deeper than these is refused whole.
MAX_FILE_BYTES = 64 * 2**20
MAX_NODES = 2_000_000
MAX_DEPTH = 64
# json.JSONDecodeError is a ValueError.
PARSE_ERRORS: tuple[type[Exception], ...] = (ValueError,) + ((yaml.YAMLError,) if yaml else ())


def document_problem(doc: Any) -> str | None:
    """Why a parsed document is unsafe to walk, or None. YAML aliases make a DAG whose expanded size can be
    astronomical from a few lines (a "billion laughs" file), so sizes are counted per shared node once and
    multiplied, without ever expanding anything."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, int, bool]] = [(doc, 1, False)]
    while stack:
        node, depth, children_done = stack.pop()
        if not isinstance(node, dict | list) or id(node) in sizes:
            continue
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        children = list(node.values()) if isinstance(node, dict) else node
        if children_done:
            total = 1 + sum(sizes.get(id(c), 1) for c in children)
            if total > MAX_NODES:
                return f"more than {MAX_NODES:,} values once aliases are expanded"
            sizes[id(node)] = total
            continue
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in children if isinstance(c, dict | list))
    return None


def _line_chunks(origin: str, text: str) -> list[tuple[str, str]]:
    """A JSON-lines text as (origin `file:line`, line) pairs, blank lines left out."""
    return [(f"{origin}:{n}", line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _json_lines_error(exc: Exception, text: str) -> bool:
    """Whether a `.json` file failed to parse as one document because it holds JSON lines (as BFCL ships
    them): the error is "Extra data" after the first value, and the first line is a document itself."""
    if "Extra data" not in str(exc):
        return False
    try:
        json.loads(text.lstrip().split("\n", 1)[0])
    except (ValueError, RecursionError):
        return False
    return True


def read_documents(path: Path) -> tuple[list[tuple[str, Any]], list[Refusal]]:
    """(origin, document) pairs of one file: JSON and YAML are one document each; every line of a JSONL
    file (or of a `.json` file holding JSON lines) is its own document (origin `file:line`) so one bad line
    costs only that line. Files over the size limit, undecodable bytes, nesting past the parser's stack and
    alias bombs are refused by name."""
    origin, suffix = str(path), path.suffix.lower()
    kind = "YAML" if suffix in (".yaml", ".yml") else "JSON"
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        return [], [Refusal(origin, "*", f"file is {size / 2**20:.0f} MiB; the limit is 64 MiB (split it)")]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return [], [Refusal(origin, "*", f"unreadable {kind}: not UTF-8 ({exc.reason} at byte {exc.start})")]
    is_yaml = suffix in (".yaml", ".yml")
    if is_yaml and yaml is None:
        return [], [Refusal(origin, "*", "YAML files need PyYAML, which is not installed; convert to JSON")]
    parse = yaml.safe_load if is_yaml else json.loads
    chunks = _line_chunks(origin, text) if suffix == ".jsonl" else [(origin, text)]
    parsed, refused = [], []
    while chunks:
        where, chunk = chunks.pop(0)
        try:
            doc = parse(chunk)
        except RecursionError:
            refused.append(Refusal(where, "*", f"unreadable {kind}: nested too deeply to parse"))
            continue
        except PARSE_ERRORS as exc:
            if where == origin and suffix == ".json" and _json_lines_error(exc, text):
                chunks = _line_chunks(origin, text)  # JSON lines under a .json name: one document per line
                continue
            refused.append(Refusal(where, "*", f"unreadable {kind}: {str(exc)[:300]}"))
            continue
        problem = document_problem(doc)
        if problem:
            refused.append(Refusal(where, "*", f"refused {kind} document: {problem}"))
        else:
            parsed.append((where, doc))
    return parsed, refused


def spec_files(paths: Iterable[Path]) -> list[Path]:
    """The files `load_paths` reads: every `*.json`, `*.jsonl`, `*.yaml`, `*.yml` under each folder, in
    sorted order, and each file named directly whatever its suffix. Shared with the catalog-watching
    sensor, so that what it fingerprints is exactly what a catalog run would read."""
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise FileNotFoundError(f"catalog source {p} does not exist")
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES))
        else:
            files.append(p)
    return files


def load_paths(paths: Iterable[Path]) -> CatalogLoad:
    """Load every spec file (`*.json`, `*.jsonl`, `*.yaml`, `*.yml`) under the given files or folders, in
    sorted order for determinism; a file named directly is read whatever its suffix (as JSON by default)."""
    load, seen, kept = CatalogLoad(), {}, {}
    for f in spec_files(paths):
        docs, unreadable = read_documents(f)
        load.refused.extend(unreadable)
        for origin, doc in docs:
            specs, refused = parse_document(doc, origin)
            load.refused.extend(refused)
            _merge(load, specs, seen, kept)
    return load


def bundled_catalog_dir() -> Path:
    """The catalog shipped with the package: the embedded default and the test fixture."""
    return Path(str(resources.files("envgen.catalog") / "bundled"))


def load_bundled() -> CatalogLoad:
    return load_paths([bundled_catalog_dir()])
