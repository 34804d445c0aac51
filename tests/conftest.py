"""Shared fixtures: the bundled catalog, its graph and domains, and built environments (session-scoped,
because every library test reads them and building all eight takes about a second)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from envgen.catalog.loaders import load_bundled
from envgen.catalog.spec import ToolSpec
from envgen.environment.build import build_environment, save_environment
from envgen.environment.programs import EnvironmentDoc
from envgen.graph.tool_graph import GraphConfig, assign_domains, build_graph
from train.model import SMOKE_TEST_CONFIG, build_tiny_base


@dataclass
class BuiltDomain:
    env: EnvironmentDoc
    snapshot: sqlite3.Connection
    path: Path
    edges: list[tuple[str, str, str]]


@pytest.fixture(scope="session")
def bundled_specs() -> list[ToolSpec]:
    return load_bundled().specs


@pytest.fixture(scope="session")
def bundled_graph(bundled_specs):
    cfg = GraphConfig()
    nodes, edges = build_graph(bundled_specs, cfg)
    domains, dropped = assign_domains(bundled_specs, edges, cfg, ("retail", "airline", "telecom"))
    return nodes, edges, domains, dropped


@pytest.fixture(scope="session")
def built_domains(bundled_specs, bundled_graph, tmp_path_factory) -> dict[str, BuiltDomain]:
    _, edges, domains, _ = bundled_graph
    by_name = {s.name: s for s in bundled_specs}
    edge_list = [tuple(r) for r in edges.select("src", "dst", "kind").iter_rows()]
    out = {}
    for row in domains.iter_rows(named=True):
        env, snap, _ = build_environment(row["slug"], row["name"], [by_name[t] for t in row["tools"]], seed=0)
        folder = tmp_path_factory.mktemp(row["slug"])
        _, db = save_environment(env, snap, folder)
        out[row["slug"]] = BuiltDomain(env, snap, db, edge_list)
    return out


@pytest.fixture(scope="session")
def airline(built_domains) -> BuiltDomain:
    return built_domains["airline"]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, airline) -> Path:
    """A smallest-possible untrained checkpoint for tests that need a real model behind an endpoint."""
    out = tmp_path_factory.mktemp("tiny")
    texts = [t["description"] for t in airline.env.tools] * 20
    build_tiny_base(
        texts,
        out,
        SMOKE_TEST_CONFIG,
    )
    return out
