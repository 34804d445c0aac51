"""One bundled domain, built end to end in a few lines: for benchmarks, demos and tests that need a real
environment without the Dagster layer."""

from __future__ import annotations

from pathlib import Path

from envgen.catalog.loaders import load_bundled
from envgen.environment.build import build_environment, save_environment
from envgen.environment.programs import EnvironmentDoc
from envgen.graph.tool_graph import GraphConfig, assign_domains, build_graph


def build_bundled_domain(
    slug: str, folder: Path, seed: int = 0
) -> tuple[EnvironmentDoc, Path, list[tuple[str, str, str]]]:
    """Bundled domain `slug` built and saved under `folder`: (document, snapshot path, graph edges)."""
    specs = load_bundled().specs
    cfg = GraphConfig()
    _, edges = build_graph(specs, cfg)
    domains, _ = assign_domains(specs, edges, cfg)
    match = domains.filter(domains["slug"] == slug)
    if match.is_empty():
        raise ValueError(f"no bundled domain {slug!r}; there are {domains['slug'].to_list()}")
    by_name = {s.name: s for s in specs}
    row = match.row(0, named=True)
    env, snapshot, _ = build_environment(slug, row["name"], [by_name[t] for t in row["tools"]], seed=seed)
    _, db = save_environment(env, snapshot, folder)
    snapshot.close()
    return env, db, [tuple(r) for r in edges.select("src", "dst", "kind").iter_rows()]
