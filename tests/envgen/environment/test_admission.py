"""Admission of Louvain domains as environments: broken tools and domains are refused with reasons, the
accepted ones keep only working tools, and the funnel accounts for every API."""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from envgen.environment.admission import admit_domains, refusal_reasons, size_histogram
from envgen.graph.tool_graph import DOMAIN_SCHEMA


def _frame(rows):
    return pl.DataFrame(
        [{"slug": s, "name": s, "tools": t, "n_tools": len(t), "vertical": False} for s, t in rows],
        schema=DOMAIN_SCHEMA,
    )


def test_admission_refuses_broken_tools_and_domains_and_accounts_for_every_api(bundled_specs):
    hotel = [s for s in bundled_specs if s.tags[0] == "hotel"]
    # An update that names no record cannot be programmed: one such tool inside hotel, and a domain made
    # only of them (plus one read, so it has a single working tool).
    nothing = {"type": "object", "properties": {"status": {"type": "string", "description": "Outcome."}}}
    orphan = replace(
        hotel[0], name="cancel_everything", parameters={"type": "object", "properties": {}}, returns=nothing
    )
    orphans = [replace(orphan, name=f"cancel_everything_{i}") for i in range(3)]
    lone_read = next(s for s in bundled_specs if s.name == "get_guest_profile")
    specs = [*hotel, orphan, *orphans]
    frame = _frame(
        [
            ("hotel", [s.name for s in hotel] + ["cancel_everything"]),
            ("orphans", [s.name for s in orphans] + [lone_read.name]),
        ]
    )
    adm = admit_domains(frame, specs, without_domain=["stray_tool"], min_tools=2)
    assert adm.domains["slug"].to_list() == ["hotel"]
    assert sorted(adm.domains.row(0, named=True)["tools"]) == sorted(s.name for s in hotel)
    assert adm.domains.row(0, named=True)["n_refused"] == 1
    refused = {(r["slug"], r["tool"]) for r in adm.refused_tools.iter_rows(named=True)}
    assert ("hotel", "cancel_everything") in refused and len(refused) == 4
    assert "cannot say which record it changes" in adm.refused_tools["reason"][0]
    assert adm.refused_domains.row(0, named=True)["reason"] == "1 of 4 tools run (at least 2 needed)"
    funnel = {r["stage"]: (r["tools"], r["domains"]) for r in adm.funnel.iter_rows(named=True)}
    assert funnel["APIs in the catalog"][0] == len(specs)
    assert funnel["left without a domain by Louvain"][0] == 1
    assert funnel["in Louvain domains"] == (18, 2)
    assert funnel["in domains refused as a whole"] == (1, 1)
    assert funnel["accepted: proven to run"] == (13, 1)
    # every tool in a Louvain domain is accounted for exactly once
    assert 18 == funnel["refused: cannot be programmed or failed every probe"][0] + 1 + 13
    reasons = refusal_reasons(adm.refused_tools)
    assert reasons.row(0) == (
        "an update with no `*_id` or natural-key parameter cannot say which record it changes",
        4,
    )


def test_size_histogram_buckets():
    hist = size_histogram([2, 4, 7, 8, 13, 13, 30, 100])
    assert dict(hist.iter_rows()) == {
        "1-3": 1,
        "4-7": 2,
        "8-11": 1,
        "12-15": 2,
        "16-23": 0,
        "24-47": 1,
        "48+": 1,
    }


def test_a_domain_whose_build_fails_is_counted_in_the_funnel(bundled_specs):
    hotel = [s.name for s in bundled_specs if s.tags[0] == "hotel"]
    frame = _frame([("hotel", hotel), ("ghost", ["no_such_tool", "nor_this_one"])])
    adm = admit_domains(frame, bundled_specs, without_domain=[])
    assert adm.refused_domains.row(0, named=True)["reason"].startswith("unknown tools")
    funnel = {r["stage"]: (r["tools"], r["domains"]) for r in adm.funnel.iter_rows(named=True)}
    assert funnel["in domains refused as a whole"] == (2, 1)
    assert funnel["accepted: proven to run"] == (13, 1)
