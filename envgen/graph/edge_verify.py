"""Optional: ask a language model whether tool-graph edges are real, and drop the ones it rejects.

Vector similarity joins tools that merely share vocabulary (`status`, `date`), and a `feeds` edge only
checks a field name. A model that reads both tools can tell whether they belong to one application or
whether the output really is the input. Verification is costly (one request per edge), so at most
`max_edges` edges are asked about, borderline ones first (lowest `similar` weight, then `feeds`); the rest
are kept unverified, and every verdict is recorded. An answer that is neither yes nor no keeps the edge.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import polars as pl

from envgen.catalog.spec import ToolSpec
from envgen.llm.backends import ChatBackend

_QUESTION = {
    "similar": "Would one application plausibly offer both tools, working on the same kind of records?",
    "feeds": "Can the value of the field `{field}` returned by tool A be passed as the `{field}` argument of "
    "tool B, meaning the same thing?",
}
_PROMPT = (
    "You check the links of an API dependency graph.\n\nTool A:\n{a}\n\nTool B:\n{b}\n\n{question}\n"
    "Answer with one word, yes or no."
)


def _tool_card(spec: ToolSpec) -> str:
    returned = list(spec.returned_object.get("properties", {}))
    card = {"name": spec.name, "description": spec.description, "parameters": spec.properties}
    return json.dumps({**card, "returns": returned})


def parse_verdict(text: str) -> bool | None:
    """True for yes, False for no, None when the reply is neither (its first word decides)."""
    words = re.findall(r"[a-z]+", text.lower())
    return {"yes": True, "no": False}.get(words[0]) if words else None


async def _ask(backend: ChatBackend, a: ToolSpec, b: ToolSpec, kind: str, field: str) -> str:
    prompt = _PROMPT.format(a=_tool_card(a), b=_tool_card(b), question=_QUESTION[kind].format(field=field))
    reply: dict[str, Any] = await backend.complete([{"role": "user", "content": prompt}], [])
    return reply.get("content") or ""


async def verify_edges(
    edges: pl.DataFrame, specs: list[ToolSpec], backend: ChatBackend, max_edges: int = 2000
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(edges the model did not reject, one verdict row per edge asked: src, dst, kind, verdict, reply)."""
    by_name = {s.name: s for s in specs}
    indexed = edges.with_row_index("_row")
    # Family edges are the source's own grouping, not a guess: nothing to ask.
    guessed = indexed.filter(pl.col("kind").is_in(list(_QUESTION)))
    asked = guessed.sort([pl.col("kind") != "similar", "weight", "src", "dst"]).head(max_edges)
    replies = await asyncio.gather(
        *(
            _ask(backend, by_name[r["src"]], by_name[r["dst"]], r["kind"], r["field"])
            for r in asked.iter_rows(named=True)
        )
    )
    verdicts = [parse_verdict(t) for t in replies]
    labels = ["kept: unclear" if v is None else "kept: yes" if v else "dropped: no" for v in verdicts]
    report = asked.select("src", "dst", "kind").with_columns(
        pl.Series("verdict", labels, dtype=pl.String), pl.Series("reply", replies, dtype=pl.String)
    )
    rejected = [row for row, v in zip(asked["_row"].to_list(), verdicts, strict=True) if v is False]
    kept = indexed.filter(~pl.col("_row").is_in(rejected)).drop("_row")
    return kept, report
