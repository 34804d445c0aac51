"""A user's own catalog through catalog -> graph -> domains -> environments, reported per source file.

Runs the library stages the `api_catalog`, `tool_graph` and `domains` assets run (same defaults), on the
given spec files or folders, and prints where every offered tool went: per source, offered, exact
repeats, refused on import, in a domain, admitted (in an environment whose tools are proven to run), the
admitted share, and the reasons for each tool lost; then the domains found, with the sources of their
tools (a coherent domain holds one API family). The default input is `benchmarks/catalogs/`: six
hand-written catalogs in six public formats (OpenAI tool list, an OpenAI request body, JSON-Schema
functions with `response`, JSON lines, ToolBench query records with `api_list`, BFCL functions), with
camelCase names, arrays, nested objects, enums, formats, ranges, return schemas, a file-system API and a
social-media API.

    .venv/bin/python benchmarks/user_catalog.py                       # the bundled test catalogs
    .venv/bin/python benchmarks/user_catalog.py path/to/specs more/specs.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import polars as pl

from envgen.catalog.loaders import load_paths, refused_specs_frame
from envgen.catalog.spec import source_of
from envgen.environment.admission import admit_domains, admitted_share, source_funnel
from envgen.graph.tool_graph import GraphConfig, assign_domains, build_graph

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="*", type=Path, default=[HERE / "catalogs"])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    load = load_paths(args.paths)
    cfg = GraphConfig()
    _, edges = build_graph(load.specs, cfg)
    found, without = assign_domains(load.specs, edges, cfg)
    admission = admit_domains(found, load.specs, without, workers=args.workers)
    funnel = source_funnel(load.specs, refused_specs_frame(load), found, without, admission)
    seconds = time.perf_counter() - t0

    pl.Config.set_tbl_rows(200).set_tbl_cols(20).set_fmt_str_lengths(200).set_tbl_width_chars(250)
    print(funnel.with_columns(pl.col("source").map_elements(lambda s: Path(s).name, return_dtype=pl.String)))
    distinct = int((funnel["offered"] - funnel["repeats"]).sum())
    print(
        f"\nall sources: {int(funnel['offered'].sum())} offered, {distinct} distinct, "
        f"{int(funnel['admitted'].sum())} admitted = {admitted_share(funnel):.1%} of distinct offered tools, "
        f"in {admission.domains.height} domains ({seconds:.1f} s)"
    )
    print("edges by kind:", dict(edges.group_by("kind").len().sort("kind").iter_rows()))
    by_name = {s.name: Path(source_of(s.source_origin)).name for s in load.specs}
    rows = [
        (r["slug"], r["n_tools"], ", ".join(sorted({by_name[t] for t in r["tools"]})))
        for r in admission.domains.iter_rows(named=True)
    ]
    print(pl.DataFrame(rows, schema=["domain", "tools", "sources"], orient="row"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
