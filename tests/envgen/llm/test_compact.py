"""The compact view: one-line tool signatures within a token budget, a window of recent messages, cut tool
results, every cut counted; saved with a model and read back."""

from __future__ import annotations

from envgen.llm.compact import CompactView, compact_messages, signature, tool_block

PARAMETERS = {"note": {"type": "string"}, "return_id": {"type": "string"}, "amount": {"type": "number"}}
TOOL = {
    "type": "function",
    "function": {
        "name": "refund_return",
        "description": "Refund an approved return to the original payment method. Fails if not approved.",
        "parameters": {"type": "object", "properties": PARAMETERS, "required": ["return_id", "amount"]},
    },
}


def words(text: str) -> int:
    return len(text.split())


def test_signature_lists_required_arguments_first_and_marks_optional_ones():
    assert signature(TOOL) == "refund_return(return_id: string, amount: number, note?: string)"
    assert signature(TOOL, typed=False) == "refund_return(return_id, amount, note?)"


def test_tool_block_fits_the_budget_and_counts_what_it_cut():
    roomy, stats = tool_block([TOOL] * 3, CompactView(tool_budget=1000), words)
    assert roomy.splitlines()[0] == (
        "refund_return(return_id: string, amount: number, note?: string) : "
        "Refund an approved return to the original payment method"
    )
    assert stats["tools_dropped"] == 0 and stats["descriptions_shortened"] == 0
    tight, stats = tool_block([TOOL] * 3, CompactView(tool_budget=20), words)
    assert words(tight) <= 20
    assert (
        stats["descriptions_shortened"] == 3 and stats["types_dropped"] == 3 and stats["tools_dropped"] == 1
    )


def test_view_keeps_the_window_drops_the_policy_and_cuts_long_results():
    messages = [
        {"role": "system", "content": "policy"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "refund RRX-1"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "refund_return", "arguments": {}}}],
        },
        {"role": "tool", "content": "x" * 200},
    ]
    shown, stats = compact_messages(messages, [TOOL], CompactView(window=3, result_chars=80), words)
    assert shown[0]["role"] == "system" and shown[0]["content"].startswith("Tools:\nrefund_return(")
    assert [m["role"] for m in shown[1:]] == ["user", "assistant", "tool"]
    assert shown[-1]["content"] == "x" * 80
    assert stats["messages_dropped"] == 2 and stats["results_cut"] == 1
    assert messages[-1]["content"] == "x" * 200  # the caller's messages are not changed


def test_view_round_trips_through_a_model_folder(tmp_path):
    assert CompactView.load(tmp_path) is None
    view = CompactView(window=2, tool_budget=100)
    view.save(tmp_path)
    assert CompactView.load(tmp_path) == view
