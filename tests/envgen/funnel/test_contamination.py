"""The contamination report's pure parts: nearest neighbours, duplicate kinds, domain ranking, task use;
and, on the bundled catalog, its nearest neighbours to tau2's own retail, airline and telecom tools."""

import json

import polars as pl
import pytest

from envgen.catalog.spec import ToolSpec
from envgen.funnel.contamination import (
    EXACT,
    NEAR,
    BenchmarkTool,
    ContaminationSettings,
    called_tools,
    contamination_report,
    normalised_name,
    read_flagged,
    tasks_using,
)
from evals.tau2 import tau2_missing_reason


def _spec(name: str, description: str, params: dict[str, str]) -> ToolSpec:
    props = {p: {"type": "string", "description": d} for p, d in params.items()}
    return ToolSpec(name, description, {"type": "object", "properties": props}, {}, "test", "test")


def _bench(benchmark: str, name: str, description: str, params: dict[str, str]) -> BenchmarkTool:
    tool = _spec(name, description, params).openai_tool()
    return BenchmarkTool.from_openai(benchmark, tool)


SYNTH = [
    _spec("get_order_details", "Look up an order by its id.", {"order_id": "The order id."}),
    _spec(
        "cancel_order",
        "Cancel an order that has not shipped.",
        {"order_id": "The order id.", "reason": "Why."},
    ),
    _spec(
        "book_table",
        "Book a restaurant table for a party.",
        {"restaurant_id": "Where.", "party_size": "How many."},
    ),
    _spec("list_menu", "List a restaurant's menu items.", {"restaurant_id": "Where."}),
]
DOMAIN_OF = {
    "get_order_details": "shop",
    "cancel_order": "shop",
    "book_table": "dining",
    "list_menu": "dining",
}
BENCH = [
    _bench(
        "bench_retail", "getOrderDetails", "Get the status and items of an order.", {"order_id": "Order id."}
    ),
    _bench(
        "bench_retail",
        "cancel_pending_order",
        "Cancel a pending order.",
        {"order_id": "Id.", "reason": "Why."},
    ),
    _bench("bench_retail", "transfer_to_human", "Hand the user over to a human.", {"summary": "Summary."}),
]


@pytest.fixture(scope="module")
def report():
    return contamination_report(SYNTH, DOMAIN_OF, BENCH, ContaminationSettings(top_k=2, near_threshold=0.95))


def test_names_are_compared_across_naming_styles():
    assert normalised_name("getOrderDetails") == normalised_name("get_order_details") == "getorderdetails"


def test_exact_duplicate_needs_the_same_name_and_parameters(report):
    exact = report.flagged.filter(pl.col("kind") == EXACT)
    assert exact.select("benchmark_tool", "synthesized_tool").rows() == [
        ("getOrderDetails", "get_order_details")
    ]
    assert report.flagged_tools(EXACT) == {"get_order_details"}


def test_same_parameter_set_of_two_or_more_is_a_near_duplicate(report):
    near = report.flagged.filter(pl.col("kind") == NEAR)
    assert ("cancel_pending_order", "cancel_order") in near.select(
        "benchmark_tool", "synthesized_tool"
    ).rows()
    # A one-parameter overlap (order_id alone) is too common to count: get_order_details is not near
    # cancel_pending_order, and nothing is flagged for the unrelated transfer tool.
    assert ("cancel_pending_order", "get_order_details") not in near.select(
        "benchmark_tool", "synthesized_tool"
    ).rows()
    assert "transfer_to_human" not in report.flagged["benchmark_tool"].to_list()
    assert report.flagged_tools(NEAR) == {"get_order_details", "cancel_order"}


def test_nearest_tools_are_ranked_by_similarity(report):
    top = report.nearest.filter(pl.col("benchmark_tool") == "cancel_pending_order").sort("rank")
    assert top["rank"].to_list() == [1, 2]
    assert top["synthesized_tool"][0] == "cancel_order" and top["domain"][0] == "shop"
    assert top["similarity"][0] >= top["similarity"][1] > 0


def test_nearest_domain_of_a_retail_benchmark_is_the_shop(report):
    domains = report.domains.sort("rank")
    assert domains["domain"].to_list() == ["shop", "dining"]
    assert domains["similarity"][0] > domains["similarity"][1]


def test_a_lower_threshold_flags_more_and_never_fewer():
    low = contamination_report(SYNTH, DOMAIN_OF, BENCH, ContaminationSettings(near_threshold=0.05))
    high = contamination_report(SYNTH, DOMAIN_OF, BENCH, ContaminationSettings(near_threshold=0.95))
    assert high.flagged_tools(NEAR) <= low.flagged_tools(NEAR)
    assert len(low.flagged_tools(NEAR)) > len(high.flagged_tools(NEAR))


def test_bad_settings_and_schemas_are_refused():
    with pytest.raises(ValueError, match="top_k"):
        ContaminationSettings(top_k=0)
    with pytest.raises(ValueError, match="near_threshold"):
        ContaminationSettings(near_threshold=0)
    with pytest.raises(ValueError, match="bench_x: a tool schema without a function name"):
        BenchmarkTool.from_openai("bench_x", {"type": "function", "function": {"description": "nameless"}})


def test_tasks_and_transcripts_that_use_flagged_tools():
    tasks = pl.DataFrame(
        {
            "task_id": ["t1", "t2"],
            "domain": ["shop", "shop"],
            "split": ["train", "heldout"],
            "gold_calls": [
                json.dumps(
                    [{"name": "get_order_details", "arguments": {}}, {"name": "list_menu", "arguments": {}}]
                ),
                json.dumps([{"name": "list_menu", "arguments": {}}]),
            ],
        }
    )
    used = tasks_using(tasks, {"get_order_details"})
    assert used.select("task_id", "split").rows() == [("t1", "train")]
    assert used["tools"].to_list() == [["get_order_details"]]
    messages = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "1", "function": {"name": "cancel_order", "arguments": "{}"}}],
        },
    ]
    assert called_tools(messages) == {"cancel_order"}


def test_reading_flagged_tools_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="materialise contamination_report"):
        read_flagged(tmp_path / "flagged_tools.json", NEAR)
    (tmp_path / "f.json").write_text(json.dumps({EXACT: ["a"], NEAR: ["a", "b"]}))
    assert read_flagged(tmp_path / "f.json", NEAR) == {"a", "b"}
    with pytest.raises(ValueError, match="level"):
        read_flagged(tmp_path / "f.json", "fuzzy")


@pytest.mark.skipif(tau2_missing_reason() is not None, reason=str(tau2_missing_reason()))
def test_bundled_catalog_against_tau2_tools(bundled_specs, bundled_graph):
    from evals.benchmark_tools import TAU2_DOMAINS, tau2_tool_schemas

    tools = [BenchmarkTool.from_openai(f"tau2_{d}", t) for d in TAU2_DOMAINS for t in tau2_tool_schemas(d)]
    domains = bundled_graph[2]
    domain_of = {
        tool: slug for slug, members in domains.select("slug", "tools").iter_rows() for tool in members
    }
    report = contamination_report(bundled_specs, domain_of, tools)
    # Every tau2 tool gets its nearest synthesized tools with a similarity score.
    assert set(report.nearest["benchmark"]) == {"tau2_retail", "tau2_airline", "tau2_telecom"}
    assert report.nearest.filter(pl.col("rank") == 1).height == len(tools)
    # Each tau2 domain's nearest synthesized domain is our vertical of the same name.
    top = dict(report.domains.filter(pl.col("rank") == 1).select("benchmark", "domain").iter_rows())
    assert top == {"tau2_retail": "retail", "tau2_airline": "airline", "tau2_telecom": "telecom"}
    # The bundled verticals were written after tau2's: a few tools share tau2's name and parameters.
    assert "get_order_details" in report.flagged_tools(EXACT)


def test_benchmark_checkouts_come_from_config_then_environment_then_storage(tmp_path, monkeypatch):
    from agentscaler_assets.evaluation_assets import BenchmarkPaths
    from agentscaler_assets.resources import StorageRoot

    storage = StorageRoot(root=str(tmp_path))
    monkeypatch.delenv("AGENTSCALER_TAUBENCH_PATH", raising=False)
    monkeypatch.delenv("AGENTSCALER_ACEBENCH_PATH", raising=False)
    assert BenchmarkPaths().taubench_root(storage) == tmp_path / "external" / "tau-bench"
    monkeypatch.setenv("AGENTSCALER_TAUBENCH_PATH", "/data/tau-bench")
    assert str(BenchmarkPaths().taubench_root(storage)) == "/data/tau-bench"
    assert str(BenchmarkPaths(taubench_path="/x").taubench_root(storage)) == "/x"
    assert BenchmarkPaths().acebench_root(storage).name == "ACEBench"
