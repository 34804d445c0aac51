"""Code and data versions, so that Dagster's own staleness (UI badges, "materialize stale and missing",
`agentscaler run`) is right for this graph.

- A **code version** is a hash of the source text of the project modules an asset runs (its asset module
  and the `envgen` / `train` / `evals` packages it calls), computed when the code location loads: editing
  that logic marks the asset stale, editing anything else does not. Hashing the text, not a hand-bumped
  number, means a forgotten bump cannot leave stale data marked fresh.
- A **data version** is a hash of the files an asset wrote (names and bytes, in a fixed order), so an asset
  re-run on unchanged inputs gets the same version and its downstream stays fresh.
- A **config fingerprint** covers what neither sees: the run config an asset ran with and the resources it
  used (the profile). Dagster has no notion of it, so `agentscaler run` records it as a run tag and compares
  (agentscaler_assets.freshness).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from dagster import DataVersion

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_CHUNK = 1 << 20


def _module_files(module: str) -> list[Path]:
    """The source files of a project module (`envgen.catalog.spec`) or package (every .py below it)."""
    base = PROJECT_ROOT.joinpath(*module.split("."))
    if base.is_dir():
        return sorted(base.rglob("*.py"))
    if base.with_suffix(".py").is_file():
        return [base.with_suffix(".py")]
    raise ValueError(f"code version: {module!r} is not a module or package of the project ({PROJECT_ROOT})")


def code_version(*modules: str) -> str:
    """A 16-hex hash of the source text of `modules` (project modules or packages), with names relative
    to the project root so that every clone of the same commit computes the same version."""
    h = hashlib.sha256()
    for f in sorted({f for m in modules for f in _module_files(m)}):
        h.update(f.relative_to(PROJECT_ROOT).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _files(paths: Iterable[Path], skip: Callable[[Path], bool]) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for p in paths:
        if p.is_dir():
            found += [
                (f"{p.name}/{f.relative_to(p).as_posix()}", f)
                for f in sorted(p.rglob("*"))
                if f.is_file() and not skip(f.relative_to(p))
            ]
        elif p.is_file():
            found.append((p.name, p))
    return found


def content_version(*paths: Path, skip: Callable[[Path], bool] = lambda _: False) -> DataVersion:
    """The data version of what an asset wrote: a hash of the files (folders walked; `skip` gets a path
    relative to its folder and leaves out run records such as checkpoints and wall times). A missing path
    counts as empty, so an asset that writes a file only sometimes still gets a version."""
    h = hashlib.sha256()
    for name, f in _files(paths, skip):
        h.update(name.encode() + b"\0")
        with f.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        h.update(b"\0")
    return DataVersion(h.hexdigest()[:24])


def value_version(value: Any) -> str:
    """A 24-hex hash of a JSON-able value (keys sorted), e.g. one domain's row and tool specs."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def config_fingerprint(op_config: Mapping[str, Any] | None, resources: Mapping[str, Any]) -> str:
    """A hash of an asset's run config (as given: omitted keys take their defaults, which the code version
    covers) and of the resources it uses, as their config (a resource that is not a config object counts
    by its type only)."""

    def as_config(resource: Any) -> Any:
        dump = getattr(resource, "model_dump", None)
        if dump is None:
            return type(resource).__qualname__
        return dump(mode="json")

    return value_version(
        {"config": op_config or {}, "resources": {k: as_config(v) for k, v in resources.items()}}
    )
