"""Admit Louvain domains as environments: only domains whose tools are proven to run get a partition.

Every domain is built and probed once, in parallel (`envgen.environment.batch`). A tool that cannot be
programmed or fails its probes is refused with the reason; a domain left with fewer than `min_tools`
working tools (or whose build raised) is refused as a whole. The accepted domains keep only their working
tools, so each `domain` partition materialises with 100% of its tools executing, and the funnel says
where every API of the catalog went.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from envgen.catalog.spec import ToolSpec, source_of
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
    """Refused tools grouped by the kind of reason (`_reason_kind`)."""
    kinds = pl.DataFrame(
        {"reason": [_reason_kind(r) for r in refused_tools["reason"]]}, schema={"reason": pl.String}
    )
    return kinds.group_by("reason").len("tools").sort("tools", "reason", descending=[True, False])


def _reason_kind(reason: str) -> str:
    """A refusal reason without the tool's name and the particulars (the text before the first colon or
    quote), so reasons can be counted."""
    kind = re.sub(r"^tool '[^']*': ", "", reason)
    return re.sub(r"\s+", " ", re.split(r"[:'\"(]", kind, maxsplit=1)[0]).strip() or reason[:60]


def source_funnel(
    specs: list[ToolSpec],
    refused_specs: pl.DataFrame,
    found: pl.DataFrame,
    without_domain: list[str],
    admission: Admission,
) -> pl.DataFrame:
    """Where each source file's offered tools went: offered, repeats (duplicates and variants of a tool
    already loaded), refused on import, imported, in a domain, admitted (in an environment, proven to
    run), and the reasons for every tool lost, counted.
    `refused_specs` is the catalog's `refused_specs_frame`, `found` the `assign_domains` frame."""
    status: list[tuple[str, str]] = []  # (source, what became of it), one per offered spec
    for r in refused_specs.iter_rows(named=True):
        kind = r["kind"] if r["kind"] != "refused" else f"refused on import: {_reason_kind(r['reason'])}"
        status.append((source_of(r["origin"]), kind))
    admitted = {t for tools in admission.domains["tools"].to_list() for t in tools}
    tool_reason = dict(zip(admission.refused_tools["tool"], admission.refused_tools["reason"], strict=True))
    refused_slugs = dict(
        zip(admission.refused_domains["slug"], admission.refused_domains["reason"], strict=True)
    )
    domain_of = {t: slug for slug, tools in zip(found["slug"], found["tools"], strict=True) for t in tools}
    isolated = set(without_domain)
    for spec in specs:
        name = spec.name
        if name in admitted:
            kind = "admitted"
        elif name in tool_reason:
            kind = f"tool refused: {_reason_kind(tool_reason[name])}"
        elif domain_of.get(name) in refused_slugs:
            kind = f"domain refused: {_reason_kind(refused_slugs[domain_of[name]])}"
        else:
            kind = "in no domain (tied to no other tool)" if name in isolated else "in no domain"
        status.append((source_of(spec.source_origin), kind))
    rows = []
    for src in sorted({src for src, _ in status}):
        kinds = Counter(k for where, k in status if where == src)
        offered = sum(kinds.values())
        repeats = kinds["duplicate"] + kinds["variant"]
        refused_on_import = sum(n for k, n in kinds.items() if k.startswith("refused on import"))
        in_domain = sum(
            n for k, n in kinds.items() if k.startswith(("admitted", "tool refused", "domain refused"))
        )
        lost = sorted(
            ((k, n) for k, n in kinds.items() if k not in REPEATS_AND_ADMITTED), key=lambda x: -x[1]
        )
        rows.append(
            (
                src,
                offered,
                repeats,
                refused_on_import,
                offered - repeats - refused_on_import,
                in_domain,
                kinds["admitted"],
                round(kinds["admitted"] / max(1, offered - repeats), 3),
                "; ".join(f"{k} ({n})" for k, n in lost),
            )
        )
    return pl.DataFrame(
        rows,
        schema={
            "source": pl.String,
            "offered": pl.Int64,
            "repeats": pl.Int64,  # exact duplicates and variants of a tool already loaded
            "refused_on_import": pl.Int64,
            "imported": pl.Int64,
            "in_domain": pl.Int64,
            "admitted": pl.Int64,
            "admitted_share": pl.Float64,  # of distinct offered tools (offered less repeats)
            "lost_because": pl.String,
        },
        orient="row",
    )


REPEATS_AND_ADMITTED = ("admitted", "duplicate", "variant")


def admitted_share(funnel: pl.DataFrame) -> float:
    """Admitted tools over distinct offered ones (offered less repeats), all sources of a `source_funnel`
    together: the share of a user's catalog that became working environments."""
    distinct = int((funnel["offered"] - funnel["repeats"]).sum())
    return round(int(funnel["admitted"].sum()) / max(1, distinct), 3)
