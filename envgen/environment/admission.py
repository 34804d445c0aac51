"""Admit Louvain domains as environments: only domains whose tools are proven to run get a partition.

Every domain is built and probed once, in parallel (`envgen.environment.batch`). A tool that cannot be
programmed or fails its probes is refused with the reason; a domain left with fewer than `min_tools`
working tools (or whose build raised) is refused as a whole. The accepted domains keep only their working
tools, so each `domain` partition materialises with 100% of its tools executing, and the funnel says
where every API of the catalog went.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from envgen.catalog.spec import ToolSpec
from envgen.environment.batch import build_environments

MIN_TOOLS = 2  # an environment with fewer working tools cannot host a task chain worth the name
POOL_FROM = 64
SIZE_BUCKETS = [(1, 3), (4, 7), (8, 11), (12, 15), (16, 23), (24, 47), (48, None)]


@dataclass
class Admission:
    domains: pl.DataFrame  # accepted: slug, name, tools (working ones), n_tools, vertical, n_refused
    refused_tools: pl.DataFrame  # slug, tool, reason
    refused_domains: pl.DataFrame  # slug, name, n_tools, reason
    funnel: pl.DataFrame  # stage, tools, domains


def admit_domains(
    frame: pl.DataFrame,
    specs: list[ToolSpec],
    without_domain: list[str],
    min_tools: int = MIN_TOOLS,
    workers: int = 2,
    seed: int = 0,
    rows_per_table: int = 12,
    progress: Callable[[int, int], None] | None = None,
) -> Admission:
    """Build every domain of an `assign_domains` frame and split it into accepted and refused.

    Below `POOL_FROM` domains the builds run in this process: starting worker processes costs more than
    the ~0.06 s a domain takes.
    """
    workers = workers if frame.height >= POOL_FROM else 1
    builds = build_environments(
        frame, specs, seed=seed, workers=workers, rows_per_table=rows_per_table, progress=progress
    )
    accepted, refused_tools, refused_domains = [], [], []
    for row, build in zip(frame.iter_rows(named=True), builds, strict=True):
        refused_tools += [(row["slug"], tool, reason) for tool, reason in sorted(build.refused.items())]
        if build.failed or len(build.kept) < min_tools:
            reason = (
                build.error
                or f"{len(build.kept)} of {row['n_tools']} tools run (at least {min_tools} needed)"
            )
            refused_domains.append((row["slug"], row["name"], row["n_tools"], reason))
            continue
        kept = sorted(build.kept)
        accepted.append({**row, "tools": kept, "n_tools": len(kept), "n_refused": len(build.refused)})
    domains = pl.DataFrame(accepted, schema={**frame.schema, "n_refused": pl.Int64}, orient="row").select(
        *frame.columns, "n_refused"
    )
    tools_frame = pl.DataFrame(
        refused_tools, schema={"slug": pl.String, "tool": pl.String, "reason": pl.String}, orient="row"
    )
    domains_frame = pl.DataFrame(
        refused_domains,
        schema={"slug": pl.String, "name": pl.String, "n_tools": pl.Int64, "reason": pl.String},
        orient="row",
    )
    # a build that raised has no kept/refused split: all its tools went down with the domain
    in_refused_domains = sum(
        b.n_tools if b.failed else len(b.kept) for b in builds if b.failed or len(b.kept) < min_tools
    )
    funnel = pl.DataFrame(
        [
            ("APIs in the catalog", len(specs), None),
            ("left without a domain by Louvain", len(without_domain), None),
            ("in Louvain domains", int(frame["n_tools"].sum() or 0), frame.height),
            ("refused: cannot be programmed or failed every probe", tools_frame.height, None),
            ("in domains refused as a whole", in_refused_domains, domains_frame.height),
            ("accepted: proven to run", int(domains["n_tools"].sum() or 0), domains.height),
        ],
        schema={"stage": pl.String, "tools": pl.Int64, "domains": pl.Int64},
        orient="row",
    )
    return Admission(domains, tools_frame, domains_frame, funnel)


def size_histogram(sizes: list[int]) -> pl.DataFrame:
    """How many domains have 1-3, 4-7, ... tools: the shape of the split at a glance."""
    rows = []
    for lo, hi in SIZE_BUCKETS:
        n = sum(1 for s in sizes if s >= lo and (hi is None or s <= hi))
        rows.append((f"{lo}-{hi}" if hi else f"{lo}+", n))
    return pl.DataFrame(rows, schema={"tools": pl.String, "domains": pl.Int64}, orient="row")


def refusal_reasons(refused_tools: pl.DataFrame) -> pl.DataFrame:
    """Refused tools grouped by the kind of reason (the text before the first colon or quote)."""
    kind = (
        pl.col("reason")
        .str.replace(r"^tool '[^']*': ", "")
        .str.replace(r"[:'\"(].*$", "")
        .str.strip_chars()
        .alias("reason")
    )
    return refused_tools.select(kind).group_by("reason").len("tools").sort("tools", descending=True)
