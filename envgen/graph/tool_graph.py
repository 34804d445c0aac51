"""Relate tools and split them into domains (the paper's tool dependency graph + Louvain).

Two kinds of edges: `similar` joins tools whose parameter vectors (TF-IDF over names, types and
descriptions by default, or any `Embedder`) have cosine similarity above a threshold, found by
`envgen.graph.similarity` without forming the all-pairs matrix; `feeds` joins a tool that returns a key
(`*_id`) to a tool that requires it; `family` joins the tools of one API family (one source document, or
one ToolBench tool), so a user's catalog splits along its own APIs where their sizes allow.
Louvain communities over all three (seeded) are the domains; communities smaller than `min_domain_size`
are merged into the neighbour they are most tied to, else into the domain holding most of their family,
and only tools tied to nothing are left without a domain (and reported).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import polars as pl

from envgen.catalog.spec import ToolSpec, is_key, key_entity, source_of
from envgen.graph.embedders import Embedder, TfidfEmbedder
from envgen.graph.similarity import similar_pairs

DOMAIN_SCHEMA = {
    "slug": pl.String,
    "name": pl.String,
    "tools": pl.List(pl.String),
    "n_tools": pl.Int64,
    "vertical": pl.Boolean,
}


@dataclass(frozen=True)
class GraphConfig:
    similarity_threshold: float = 0.35
    feeds_weight: float = 1.0
    # Weight of the edge between two tools of one API family (0: none). Families larger than
    # `max_domain_size` (a generated catalog in one file) get no such edges: they are not one domain.
    family_weight: float = 0.5
    resolution: float = 1.0
    min_domain_size: int = 4
    max_domain_size: int = 40  # larger communities are split by Louvain on their own subgraph
    seed: int = 0


def field_words(fields: dict[str, Any]) -> list[str]:
    """Each JSON-Schema field's name (as words and as is), type and description."""
    parts = []
    for name, schema in fields.items():
        schema = schema if isinstance(schema, dict) else {}
        parts += [
            name.replace("_", " "),
            name,
            str(schema.get("type", "")),
            str(schema.get("description", "")),
        ]
    return parts


def parameter_text(spec: ToolSpec) -> str:
    """What a tool is vectorised by: its parameters' and returned fields' names, types and descriptions."""
    return " ".join(field_words(spec.properties) + field_words(spec.returned_object.get("properties", {})))


def similar_edges(
    specs: list[ToolSpec], threshold: float, embedder: Embedder | None = None
) -> list[tuple[int, int, float]]:
    """Pairs (i < j) whose cosine over the embedder's vectors (TF-IDF by default) is above the threshold."""
    if len(specs) < 2:
        return []
    x = (embedder or TfidfEmbedder()).embed([parameter_text(s) for s in specs])
    i, j, v = similar_pairs(x, threshold)
    return list(zip(i.tolist(), j.tolist(), np.round(v.astype(np.float64), 4).tolist(), strict=True))


def feeds_edges(specs: list[ToolSpec]) -> list[tuple[int, int, str]]:
    """(producer, consumer, field): the producer returns a key the consumer requires."""
    producers: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(specs):
        for f in s.returned_object.get("properties", {}):
            if is_key(f):
                producers[f].append(i)
    edges = []
    for j, s in enumerate(specs):
        for p in s.required:
            edges += [(i, j, p) for i in producers.get(p, []) if i != j]
    return edges


def families(specs: list[ToolSpec]) -> list[str]:
    """The API family of each tool: its file, or, where a file's documents list several tools each (BFCL
    question records, each offering the functions of one API), its document; within a ToolBench file, its
    tool, since a query file mixes the APIs of several tools."""
    docs = Counter(s.source_origin for s in specs)
    files = [source_of(s.source_origin) for s in specs]
    by_records = {
        f for f, s in zip(files, specs, strict=True) if docs[s.source_origin] > 1 and f != s.source_origin
    }
    out = []
    for f, s in zip(files, specs, strict=True):
        origin = s.source_origin if f in by_records else f
        out.append(f"{origin}#{s.tags[0]}" if s.source_format == "toolbench" and s.tags else origin)
    return out


def family_edges(specs: list[ToolSpec], max_size: int) -> list[tuple[int, int]]:
    """Every pair of tools within one family of 2 to `max_size` tools."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(families(specs)):
        members[f].append(i)
    return [
        (a, b)
        for idx in members.values()
        if len(idx) <= max_size
        for k, a in enumerate(idx)
        for b in idx[k + 1 :]
    ]


def build_graph(
    specs: list[ToolSpec], cfg: GraphConfig, embedder: Embedder | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Nodes (tool) and edges (src, dst, kind, weight, field) frames."""
    names = [s.name for s in specs]
    similar = similar_edges(specs, cfg.similarity_threshold, embedder)
    rows = [(names[i], names[j], "similar", w, "") for i, j, w in similar]
    rows += [(names[i], names[j], "feeds", cfg.feeds_weight, f) for i, j, f in feeds_edges(specs)]
    if cfg.family_weight > 0:
        rows += [
            (names[i], names[j], "family", cfg.family_weight, "")
            for i, j in family_edges(specs, cfg.max_domain_size)
        ]
    edges = pl.DataFrame(
        rows,
        schema={
            "src": pl.String,
            "dst": pl.String,
            "kind": pl.String,
            "weight": pl.Float64,
            "field": pl.String,
        },
        orient="row",
    )
    nodes = pl.DataFrame({"tool": names})
    return nodes, edges


def _undirected(names: list[str], edges: pl.DataFrame) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(names)
    for src, dst, w, kind in edges.select("src", "dst", "weight", "kind").iter_rows():
        data = g.get_edge_data(src, dst, {})
        g.add_edge(
            src, dst, weight=data.get("weight", 0.0) + w, family=data.get("family", False) or kind == "family"
        )
    return g


def _one_family(g: nx.Graph, tools: set[str]) -> bool:
    """Whether a few tools are one API family of the source (joined by its family edges)."""
    fam = nx.Graph((a, b) for a, b, d in g.subgraph(tools).edges(data=True) if d.get("family"))
    return len(tools) > 1 and fam.number_of_nodes() == len(tools) and nx.is_connected(fam)


def _induced(graph: nx.Graph, part: set[str]) -> nx.Graph:
    """The subgraph on `part`, its nodes in sorted order. (`graph.subgraph(part)` iterates the set itself,
    whose order changes with Python's string hashing from one process to the next, and Louvain's result
    depends on node order even with a fixed seed.)"""
    sub = nx.Graph()
    sub.add_nodes_from(sorted(part))
    sub.add_edges_from((u, v, d) for u, v, d in graph.edges(sorted(part), data=True) if v in part)
    return sub


def _louvain(g: nx.Graph, cfg: GraphConfig) -> list[set[str]]:
    """Louvain, then oversized communities split again on their own subgraph.

    Modularity has a resolution limit: in a graph of thousands of domains, two look-alike domains joined
    by a few weak edges score better merged than apart. On the merged community's own subgraph the
    total weight is small, so Louvain separates them. A community Louvain cannot split stays whole.
    """
    out: list[set[str]] = []
    todo = [g]
    while todo:
        graph = todo.pop()
        parts = nx.community.louvain_communities(
            graph, weight="weight", resolution=cfg.resolution, seed=cfg.seed
        )
        for part in map(set, parts):
            if len(part) > cfg.max_domain_size and len(parts) > 1:
                todo.append(_induced(graph, part))
            else:
                out.append(part)
    return out


def communities(names: list[str], edges: pl.DataFrame, cfg: GraphConfig) -> tuple[list[set[str]], list[str]]:
    """Louvain communities; a small one that is one API family of the source stays a domain of its own,
    other small ones merge into their best-tied neighbour or, tied to none, are dropped. Returns (kept,
    dropped)."""
    g = _undirected(names, edges)
    comms = _louvain(g, cfg)
    comms.sort(key=lambda c: (-len(c), min(c)))
    big = [c for c in comms if len(c) >= cfg.min_domain_size]
    home = {tool: k for k, c in enumerate(big) for tool in c}
    dropped: list[str] = []
    kept: list[set[str]] = []
    for small in (c for c in comms if len(c) < cfg.min_domain_size):
        # Ties to each big community, read off the small one's own edges (not a scan of every community).
        ties: Counter[int] = Counter()
        for a in small:
            for b, data in g[a].items():
                if b in home:
                    ties[home[b]] += data.get("weight", 0.0)
        if _one_family(g, small):
            kept.append(small)  # a small API of its own (a BFCL record's functions): its own domain
        elif ties and max(ties.values()) > 0:  # as before the rewrite: zero-weight ties do not merge
            best = min(ties, key=lambda k: (-ties[k], k))
            big[best] |= small
        else:
            dropped += sorted(small)
    return big + kept, dropped


def domain_label(specs: list[ToolSpec]) -> str:
    """A readable name: the tools' most common first tag, else their most common entity."""
    tags = Counter(s.tags[0] for s in specs if s.tags)
    if tags:
        label = tags.most_common(1)[0][0]
    else:
        ents = Counter(
            key_entity(k)
            for s in specs
            for k in [*s.properties, *s.returned_object.get("properties", {})]
            if is_key(k)
        )
        label = ents.most_common(1)[0][0] if ents else specs[0].name.split("_")[-1]
    # Tags come from specs: only [a-z0-9_] survives, and the length is bounded, so a slug made from it is
    # always a safe folder name and a valid partition key.
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:48].strip("_") or "domain"


def assign_domains(
    specs: list[ToolSpec], edges: pl.DataFrame, cfg: GraphConfig, vertical: tuple[str, ...] = ()
) -> tuple[pl.DataFrame, list[str]]:
    """One row per domain (slug, name, tools, vertical) and the tools left without a domain.

    Slugs are the readable name, suffixed `-2`, `-3` on collision in the order of each domain's first tool
    name, so the same tools give the same slug on every re-synthesis.
    """
    by_name = {s.name: s for s in specs}
    comms, dropped = communities(list(by_name), edges, cfg)
    labelled = sorted(
        ((domain_label([by_name[t] for t in sorted(c)]), sorted(c)) for c in comms),
        key=lambda x: (x[0], x[1][0]),
    )
    rows, used = [], Counter()
    for label, tools in labelled:
        used[label] += 1
        slug = label.replace("_", "-") + (f"-{used[label]}" if used[label] > 1 else "")
        rows.append(
            {
                "slug": slug,
                "name": label,
                "tools": tools,
                "n_tools": len(tools),
                "vertical": label in vertical,
            }
        )
    return pl.DataFrame(rows, schema=DOMAIN_SCHEMA), dropped
