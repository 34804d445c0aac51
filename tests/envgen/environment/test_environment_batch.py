"""Building many domains in a process pool: same summaries as in-process, failures (a raising build, an
unknown tool, a worker that dies) recorded per domain while the rest build, saved folders load back."""

from __future__ import annotations

import dataclasses
import os

import polars as pl
import pytest

from envgen.catalog.spec import ToolSpec
from envgen.catalog.synthetic import generate_catalog
from envgen.environment.batch import DomainBuild, build_environments
from envgen.environment.build import load_environment, seeded_snapshot
from envgen.environment.runtime import copy_database, state_hash
from envgen.graph.tool_graph import GraphConfig, assign_domains, build_graph


@pytest.fixture(scope="module")
def catalog() -> tuple[list[ToolSpec], pl.DataFrame]:
    specs = generate_catalog(70, seed=2)
    cfg = GraphConfig()
    _, edges = build_graph(specs, cfg)
    domains, _ = assign_domains(specs, edges, cfg)
    return specs, domains


def _without_folder(builds: list[DomainBuild]) -> list[DomainBuild]:
    return [dataclasses.replace(b, folder=None) for b in builds]


class _KillsWorker:
    """Unpickling this ends the process: stands for a worker killed mid-domain (out of memory, say)."""

    def __reduce__(self):
        return (os._exit, (17,))


def _spec(name: str, key: str, extra: dict | None = None) -> ToolSpec:
    obj = {"type": "object", "properties": {key: {"type": "string", **(extra or {})}}}
    return ToolSpec(name, "test tool", {**obj, "required": [key]}, obj, "test", "test")


def test_one_and_two_workers_give_the_same_summaries(catalog, tmp_path):
    specs, domains = catalog
    serial = build_environments(domains, specs, workers=1)
    pooled = build_environments(domains, specs, workers=2, chunk_size=1, out_dir=tmp_path)
    assert _without_folder(pooled) == serial
    assert [b.slug for b in serial] == domains["slug"].to_list()
    for build, tools in zip(serial, domains["tools"].to_list(), strict=True):
        assert not build.failed and not build.refused and sorted(build.kept) == sorted(tools)
        assert build.tables and build.env is None and build.seconds > 0
    assert all(b.folder == tmp_path / b.slug for b in pooled)


def test_failures_are_recorded_per_domain_and_the_rest_build(catalog):
    specs, domains = catalog
    bad = [
        _spec("get_bad_record", "bad\x00key_id"),  # a NUL cannot be in an SQL name: the build raises
        _spec("get_doomed_record", "doomed_record_id", {"description": _KillsWorker()}),
    ]
    extra = pl.DataFrame(
        {
            "slug": ["raises", "unknown", "kills-worker"],
            "name": ["raises", "unknown", "kills_worker"],
            "tools": [["get_bad_record"], ["no_such_tool"], ["get_doomed_record"]],
            "n_tools": [1, 1, 1],
            "vertical": [False, False, False],
        },
        schema=domains.schema,
    )
    # The bad domains sit between good ones and share chunks with them, so the worker death also takes
    # good domains down with it: they must be rebuilt, and only the killer recorded as failed.
    frame = pl.concat([domains.head(2), extra, domains.slice(2)])
    builds = {b.slug: b for b in build_environments(frame, [*specs, *bad], workers=2, chunk_size=2)}
    assert builds["raises"].failed and "unusable SQL identifier" in builds["raises"].error
    assert builds["unknown"].failed and "no_such_tool" in builds["unknown"].error
    assert builds["kills-worker"].failed and "worker process died" in builds["kills-worker"].error
    for slug in domains["slug"]:
        assert not builds[slug].failed and builds[slug].kept, slug


def test_saved_environments_load_back(catalog, tmp_path):
    specs, domains = catalog
    builds = build_environments(domains.head(2), specs, workers=1, out_dir=tmp_path, keep_docs=True)
    for build in builds:
        env, db = load_environment(build.folder)
        assert env == build.env
        saved = copy_database(db)
        assert state_hash(saved, env) == state_hash(seeded_snapshot(env), env)
