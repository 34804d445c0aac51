"""Tool graph and domains on the bundled catalog."""

from collections import Counter

from envgen.graph.tool_graph import GraphConfig, assign_domains, build_graph, feeds_edges, similar_edges


def test_similar_edges_respect_the_threshold(bundled_specs):
    low = similar_edges(bundled_specs, 0.2)
    high = similar_edges(bundled_specs, 0.5)
    assert len(high) < len(low)
    assert all(w > 0.5 and i < j for i, j, w in high)


def test_feeds_edges_join_a_returned_key_to_a_required_input(bundled_specs):
    for i, j, field in feeds_edges(bundled_specs):
        assert field in bundled_specs[i].returned_object["properties"]
        assert field in bundled_specs[j].required


def test_louvain_domains_follow_the_catalog_domains(bundled_graph, bundled_specs):
    _, _, domains, dropped = bundled_graph
    tags = {s.name: s.tags[0] for s in bundled_specs}
    assert domains.height >= 30 and not dropped
    for row in domains.iter_rows(named=True):
        purity = Counter(tags[t] for t in row["tools"]).most_common(1)[0][1] / len(row["tools"])
        assert purity >= 0.8, row["slug"]
    # and each catalog domain mostly lands in one Louvain domain (no domain split in pieces)
    assert len(set(domains["name"])) == len(set(tags.values()))
    assert set(domains.filter(domains["vertical"])["name"]) == {"retail", "airline", "telecom"}


def test_slugs_are_stable_across_resynthesis(bundled_specs, bundled_graph):
    _, _, domains, _ = bundled_graph
    cfg = GraphConfig()
    _, edges = build_graph(list(reversed(bundled_specs)), cfg)
    again, _ = assign_domains(bundled_specs, edges, cfg)
    assert dict(zip(again["slug"], again["tools"].to_list(), strict=True)) == dict(
        zip(domains["slug"], domains["tools"].to_list(), strict=True)
    )


def test_oversized_communities_are_split_on_their_own_subgraph(bundled_specs, bundled_graph):
    """Louvain's resolution limit merges look-alike domains at scale; a community above
    `max_domain_size` is re-clustered alone, so no domain stays larger than that when it can be split."""
    _, edges, _, _ = bundled_graph
    cfg = GraphConfig(max_domain_size=8, min_domain_size=2)
    domains, _ = assign_domains(bundled_specs, edges, cfg)
    tags = {s.name: s.tags[0] for s in bundled_specs}
    assert domains["n_tools"].max() <= 8 + cfg.min_domain_size  # small leftovers may merge back in
    assert domains.height > 40
    # the pieces are still pieces of one catalog domain each
    impure = [r["slug"] for r in domains.iter_rows(named=True) if len({tags[t] for t in r["tools"]}) > 1]
    assert len(impure) <= domains.height // 10
