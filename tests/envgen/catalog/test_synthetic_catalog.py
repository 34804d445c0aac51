"""The synthetic scale catalog: deterministic, exactly sized, valid, separable into its domains by the
tool graph, and every tool programmable and proven to run (else scale runs would measure refusals)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest

from envgen.catalog.spec import key_prefix, validate_spec
from envgen.catalog.synthetic import MAX_TOOLS, MIN_TOOLS, domain_sizes, generate_catalog
from envgen.environment.build import build_environment
from envgen.graph.tool_graph import GraphConfig, assign_domains, build_graph


def _by_domain(specs):
    out = defaultdict(list)
    for s in specs:
        out[s.tags[0]].append(s)
    return out


def test_same_seed_same_catalog_and_exact_size():
    a, b = generate_catalog(300, seed=7), generate_catalog(300, seed=7)
    assert [s.to_row() for s in a] == [s.to_row() for s in b]
    assert [s.name for s in generate_catalog(300, seed=8)] != [s.name for s in a]
    for n in (0, 1, 5, 13, 40, 301):
        assert len(generate_catalog(n)) == n


def test_domain_sizes_sum_to_n_within_bounds():
    for n in (9, 26, 130, 1000, 5003):
        sizes = domain_sizes(n, random.Random(n))
        assert sum(sizes) == n
        assert all(MIN_TOOLS <= k <= MAX_TOOLS for k in sizes), (n, Counter(sizes))


def test_names_unique_specs_valid_and_keys_belong_to_one_domain():
    specs = generate_catalog(600, seed=1)
    assert len({s.name for s in specs}) == len(specs)
    key_domains = defaultdict(set)
    for s in specs:
        validate_spec(s)
        assert len(s.tags) == 2 and s.source_format == "synthetic"
        for f in [*s.properties, *s.returned_object.get("properties", {})]:
            if f.endswith("_id"):
                key_domains[f].add(s.tags[0])
    assert all(len(d) == 1 for d in key_domains.values())  # so `feeds` edges never cross domains
    for tag, tools in _by_domain(specs).items():
        entities = {f[:-3] for s in tools for f in s.properties if f.endswith("_id")}
        assert len({key_prefix(e) for e in entities}) == len(entities), tag


def test_small_catalog_clusters_into_the_generated_domains():
    specs = generate_catalog(150, seed=0)
    cfg = GraphConfig()
    _, edges = build_graph(specs, cfg)
    domains, dropped = assign_domains(specs, edges, cfg)
    tag = {s.name: s.tags[0] for s in specs}
    assert not dropped
    assert domains.height == len(set(tag.values()))
    for tools in domains["tools"].to_list():
        top = Counter(tag[t] for t in tools).most_common(1)[0][1]
        assert top / len(tools) >= 0.9, tools


@pytest.mark.parametrize("seed", [0, 5])
def test_every_generated_tool_executes(seed):
    actions = Counter()
    for tag, tools in _by_domain(generate_catalog(160, seed=seed)).items():
        env, snapshot, report = build_environment(tag, tag, tools, seed=seed)
        snapshot.close()
        assert not report.refused, (tag, report.refused)
        assert sorted(report.kept) == sorted(s.name for s in tools)
        actions.update(p.action for p in env.programs)
    assert set(actions) == {"get", "list", "insert", "update", "delete"}
