"""How close the synthesized tools come to a benchmark's own tools: nearest neighbours and duplicates.

The paper's environments are synthesized from API collections, and its vertical domains are chosen to be
close to the benchmarks' (retail, airline, telecom). Reviewers asked whether the synthesized schemas
overlap the benchmark schemas themselves; this module answers that question per benchmark tool:

- the nearest synthesized tools and domains, by cosine over the same embedder the tool graph uses
  (TF-IDF by default), fitted on both sides together so the two share one vocabulary;
- exact duplicates (same normalised name and the same parameter names) and near duplicates (the same
  normalised name, or the same parameter names (two or more), or a cosine at or above a threshold);
- which training tasks and SFT examples call a flagged tool, so they can be counted and excluded.

Both sides are vectorised by what a caller sees of a tool: its name, description and parameters
(`tool_text`). Returned fields are left out because benchmark tool schemas do not declare them: keeping
them on one side only would lower every similarity for a reason that has nothing to do with overlap.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from envgen.catalog.spec import ToolSpec
from envgen.graph.embedders import Embedder, TfidfEmbedder
from envgen.graph.similarity import normalise
from envgen.graph.tool_graph import field_words

EXACT = "exact"
NEAR = "near"


@dataclass(frozen=True)
class BenchmarkTool:
    """One tool of a benchmark (`tau2_retail`, `tau_airline`, `acebench`, ...), from its OpenAI schema."""

    benchmark: str
    name: str
    description: str
    parameters: dict[str, Any]

    @classmethod
    def from_openai(cls, benchmark: str, tool: dict[str, Any]) -> BenchmarkTool:
        """`{"type": "function", "function": {...}}` or the bare function object."""
        fn = tool.get("function", tool)
        if not isinstance(fn, dict) or not fn.get("name"):
            raise ValueError(f"{benchmark}: a tool schema without a function name: {str(tool)[:200]}")
        params = fn.get("parameters") or {}
        return cls(benchmark, str(fn["name"]), str(fn.get("description") or ""), params)


def normalised_name(name: str) -> str:
    """`getOrderDetails`, `get_order_details` and `Get-Order-Details` all become `getorderdetails`."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def parameter_names(parameters: dict[str, Any]) -> frozenset[str]:
    props = parameters.get("properties") if isinstance(parameters, dict) else None
    return frozenset(normalised_name(p) for p in (props or {}))


def tool_text(name: str, description: str, parameters: dict[str, Any]) -> str:
    """Name words, description and each parameter's name, type and description."""
    props = parameters.get("properties") if isinstance(parameters, dict) else None
    words = [name.replace("_", " "), re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name), description]
    return " ".join(words + field_words(props or {}))


@dataclass(frozen=True)
class ContaminationSettings:
    top_k: int = 3  # nearest synthesized tools (and domains) listed per benchmark tool (and benchmark)
    near_threshold: float = 0.6  # cosine at or above which a pair counts as a near duplicate

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if not 0.0 < self.near_threshold <= 1.0:
            raise ValueError(f"near_threshold must be in (0, 1], got {self.near_threshold}")


def _check_level(level: str) -> None:
    if level not in (EXACT, NEAR):
        raise ValueError(f"level must be {EXACT!r} or {NEAR!r}, not {level!r}")


@dataclass
class ContaminationReport:
    """`nearest`: per benchmark tool its top-k synthesized tools; `domains`: per benchmark its top-k
    synthesized domains; `flagged`: every (synthesized, benchmark) pair that is an exact or near duplicate."""

    nearest: pl.DataFrame
    domains: pl.DataFrame
    flagged: pl.DataFrame

    def flagged_tools(self, level: str = NEAR) -> set[str]:
        """Synthesized tool names flagged at `level` (`exact` only, or `near`, which includes exact)."""
        _check_level(level)
        rows = self.flagged if level == NEAR else self.flagged.filter(pl.col("kind") == EXACT)
        return set(rows["synthesized_tool"].to_list())


_NEAREST_SCHEMA = {
    "benchmark": pl.String,
    "benchmark_tool": pl.String,
    "rank": pl.Int64,
    "synthesized_tool": pl.String,
    "domain": pl.String,
    "similarity": pl.Float64,
    "same_name": pl.Boolean,
    "same_parameters": pl.Boolean,
}


def _kind(row: dict[str, Any], threshold: float, n_params: int) -> str | None:
    if row["same_name"] and row["same_parameters"]:
        return EXACT
    if row["same_name"] or (row["same_parameters"] and n_params >= 2) or row["similarity"] >= threshold:
        return NEAR
    return None


def _vectors(
    synthesized: list[ToolSpec], benchmark_tools: list[BenchmarkTool], embedder: Embedder | None
) -> tuple[Any, Any]:
    """Unit vectors of the synthesized tools and of the benchmark tools, from one fit of the embedder."""
    texts = [tool_text(s.name, s.description, s.parameters) for s in synthesized]
    texts += [tool_text(b.name, b.description, b.parameters) for b in benchmark_tools]
    x = normalise((embedder or TfidfEmbedder()).embed(texts))
    return x[: len(synthesized)], x[len(synthesized) :]


def contamination_report(
    synthesized: list[ToolSpec],
    domain_of: dict[str, str],
    benchmark_tools: list[BenchmarkTool],
    settings: ContaminationSettings | None = None,
    embedder: Embedder | None = None,
) -> ContaminationReport:
    """Nearest neighbours and duplicates of every benchmark tool among the synthesized ones.

    `domain_of` maps a synthesized tool name to its domain (tools in no domain are reported as `-`).
    Exact name and parameter-set matches are found for every pair, not only among the top k.
    """
    settings = settings or ContaminationSettings()
    if not synthesized or not benchmark_tools:
        empty = pl.DataFrame(schema=_NEAREST_SCHEMA)
        return ContaminationReport(empty, _domain_frame([]), _flagged_frame([]))
    syn, bench = _vectors(synthesized, benchmark_tools, embedder)
    sims = bench @ syn.T
    sims = sims.toarray() if sp.issparse(sims) else np.asarray(sims)
    syn_names = [normalised_name(s.name) for s in synthesized]
    syn_params = [parameter_names(s.parameters) for s in synthesized]
    nearest, flagged = [], []
    for bi, b in enumerate(benchmark_tools):
        b_name, b_params = normalised_name(b.name), parameter_names(b.parameters)
        order = np.argsort(-sims[bi], kind="stable")
        exact_hits = [
            i for i in range(len(synthesized)) if syn_names[i] == b_name or syn_params[i] == b_params
        ]
        for rank, si in enumerate(order[: settings.top_k], start=1):
            nearest.append(_pair(b, synthesized[si], domain_of, sims[bi, si], rank, b_name, b_params))
        candidates = dict.fromkeys([*exact_hits, *np.flatnonzero(sims[bi] >= settings.near_threshold)])
        for si in candidates:
            row = _pair(b, synthesized[si], domain_of, sims[bi, si], 0, b_name, b_params)
            kind = _kind(row, settings.near_threshold, len(b_params))
            if kind:
                flagged.append({**row, "kind": kind})
    nearest_frame = pl.DataFrame(nearest, schema=_NEAREST_SCHEMA)
    return ContaminationReport(
        nearest_frame,
        _domain_frame(_nearest_domains(syn, bench, synthesized, domain_of, benchmark_tools, settings.top_k)),
        _flagged_frame(flagged),
    )


def _pair(
    b: BenchmarkTool,
    s: ToolSpec,
    domain_of: dict[str, str],
    similarity: float,
    rank: int,
    b_name: str,
    b_params: frozenset[str],
) -> dict[str, Any]:
    return {
        "benchmark": b.benchmark,
        "benchmark_tool": b.name,
        "rank": rank,
        "synthesized_tool": s.name,
        "domain": domain_of.get(s.name, "-"),
        "similarity": round(float(similarity), 4),
        "same_name": normalised_name(s.name) == b_name,
        "same_parameters": parameter_names(s.parameters) == b_params,
    }


def _flagged_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = {k: v for k, v in _NEAREST_SCHEMA.items() if k != "rank"} | {"kind": pl.String}
    frame = pl.DataFrame([{k: r[k] for k in schema} for r in rows], schema=schema)
    return frame.sort("benchmark", "benchmark_tool", "similarity", descending=[False, False, True])


def _domain_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = {"benchmark": pl.String, "rank": pl.Int64, "domain": pl.String, "similarity": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def _centroids(x: Any, groups: list[str]) -> tuple[list[str], np.ndarray]:
    """Unit-length mean vector of each group's rows, in sorted group order."""
    labels = sorted(set(groups))
    index = {g: k for k, g in enumerate(labels)}
    member = sp.csr_matrix(
        (np.ones(len(groups), np.float32), ([index[g] for g in groups], np.arange(len(groups)))),
        shape=(len(labels), len(groups)),
    )
    means = member @ x
    return labels, np.asarray(normalise(means).toarray() if sp.issparse(means) else normalise(means))


def _nearest_domains(
    syn: Any,
    bench: Any,
    synthesized: list[ToolSpec],
    domain_of: dict[str, str],
    benchmark_tools: list[BenchmarkTool],
    top_k: int,
) -> list[dict[str, Any]]:
    """Each benchmark's centroid against each synthesized domain's centroid (tools in no domain ignored)."""
    keep = [i for i, s in enumerate(synthesized) if s.name in domain_of]
    if not keep:
        return []
    domain_labels, domain_vecs = _centroids(syn[keep], [domain_of[synthesized[i].name] for i in keep])
    bench_labels, bench_vecs = _centroids(bench, [b.benchmark for b in benchmark_tools])
    sims = bench_vecs @ domain_vecs.T
    rows = []
    for bi, label in enumerate(bench_labels):
        for rank, di in enumerate(np.argsort(-sims[bi], kind="stable")[:top_k], start=1):
            rows.append(
                {
                    "benchmark": label,
                    "rank": rank,
                    "domain": domain_labels[di],
                    "similarity": round(float(sims[bi, di]), 4),
                }
            )
    return rows


def closest_domains(
    synthesized: list[ToolSpec],
    domain_of: dict[str, str],
    benchmark_tools: list[BenchmarkTool],
    embedder: Embedder | None = None,
) -> dict[str, tuple[str, float]]:
    """For each benchmark, the synthesized domain whose tools are most like its tools (centroid cosine),
    no domain given to two benchmarks (the most similar pairs are matched first): how a user's catalog
    gets a vertical set without domains named `retail` or `airline`. {benchmark: (domain, similarity)}."""
    if not synthesized or not benchmark_tools:
        return {}
    syn, bench = _vectors(synthesized, benchmark_tools, embedder)
    keep = [i for i, s in enumerate(synthesized) if s.name in domain_of]
    if not keep:
        return {}
    domains, domain_vecs = _centroids(syn[keep], [domain_of[synthesized[i].name] for i in keep])
    benches, bench_vecs = _centroids(bench, [b.benchmark for b in benchmark_tools])
    sims = bench_vecs @ domain_vecs.T
    pairs = sorted(
        (-sims[b, d], benches[b], domains[d]) for b in range(len(benches)) for d in range(len(domains))
    )
    chosen: dict[str, tuple[str, float]] = {}
    for neg, bench, domain in pairs:
        if bench not in chosen and domain not in {d for d, _ in chosen.values()}:
            chosen[bench] = (domain, round(float(-neg), 4))
    return chosen


def called_tools(messages: Iterable[dict[str, Any]]) -> set[str]:
    """Names of the tools the assistant calls in a chat transcript (OpenAI message format)."""
    names = set()
    for m in messages:
        for call in m.get("tool_calls") or []:
            fn = call.get("function", call)
            if isinstance(fn, dict) and fn.get("name"):
                names.add(str(fn["name"]))
    return names


def tasks_using(tasks: pl.DataFrame, tools: set[str]) -> pl.DataFrame:
    """Rows of a `tasks.parquet` frame whose gold calls use any of `tools`, with the tools they use."""
    rows = []
    for row in tasks.select("task_id", "domain", "split", "gold_calls").iter_rows(named=True):
        used = sorted({c["name"] for c in json.loads(row["gold_calls"])} & tools)
        if used:
            rows.append(
                {"task_id": row["task_id"], "domain": row["domain"], "split": row["split"], "tools": used}
            )
    schema = {"task_id": pl.String, "domain": pl.String, "split": pl.String, "tools": pl.List(pl.String)}
    return pl.DataFrame(rows, schema=schema)


FLAGGED_FILE = "flagged_tools.json"  # under `contamination/`: {"exact": [...], "near": [...]} tool names


def read_flagged(path: Path, level: str) -> set[str]:
    """The tool names a contamination report flagged at `level` (`exact`, or `near`, which includes exact)."""
    _check_level(level)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: materialise contamination_report first")
    return set(json.loads(path.read_text())[level])
