"""The tool graph's pluggable parts: an OpenAI-compatible embeddings endpoint instead of TF-IDF, and
LLM verification of edges through any `ChatBackend`."""

from __future__ import annotations

import asyncio
import json
import random

import httpx2 as httpx  # the HTTP client this openai SDK is built on
import numpy as np
import polars as pl
import pytest

from envgen.graph.edge_verify import parse_verdict, verify_edges
from envgen.graph.embedders import OpenAIEmbedder
from envgen.graph.tool_graph import GraphConfig, assign_domains, build_graph


def embeddings_endpoint(requests: list[dict], drop_one: bool = False) -> httpx.Client:
    """A mock `/v1/embeddings`: vectors by each text's first word, answered in shuffled order."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        requests.append(body)
        data = []
        for k, text in enumerate(body["input"]):
            rng = np.random.default_rng(abs(hash(text.split()[0])) % 2**32)
            data.append({"object": "embedding", "index": k, "embedding": rng.normal(size=8).tolist()})
        random.Random(0).shuffle(data)
        if drop_one:
            data = data[1:]
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        return httpx.Response(
            200, json={"object": "list", "data": data, "model": body["model"], "usage": usage}
        )

    return httpx.Client(transport=httpx.MockTransport(handle))


def test_openai_embedder_batches_and_restores_order():
    requests: list[dict] = []
    emb = OpenAIEmbedder(
        "http://embed.test/v1", "text-embed", batch_size=3, http_client=embeddings_endpoint(requests)
    )
    texts = ["alpha one", "beta two", "alpha three", "gamma", "beta", "alpha", "delta"]
    x = emb.embed(texts)
    assert [len(r["input"]) for r in requests] == [3, 3, 1]
    assert x.shape == (7, 8)
    # same first word -> same vector, so order was restored despite the shuffled answer
    np.testing.assert_allclose(x[0], x[2])
    np.testing.assert_allclose(x[1], x[4])
    assert not np.allclose(x[0], x[1])
    assert emb.name == "openai:text-embed"


def test_openai_embedder_names_the_batch_that_came_back_short():
    emb = OpenAIEmbedder(
        "http://embed.test/v1", "m", batch_size=2, http_client=embeddings_endpoint([], drop_one=True)
    )
    with pytest.raises(ValueError, match="returned 1 vectors for the 2 texts starting at #0"):
        emb.embed(["a", "b", "c"])


def test_graph_with_an_embeddings_endpoint(bundled_specs):
    """Any embedder drives the `similar` edges; tools of one tag share a vector here, so they link."""
    specs = [s for s in bundled_specs if s.tags[0] in ("hotel", "telecom")]

    class TagEmbedder:
        name = "test:by-tag"

        def embed(self, texts):
            return np.array([[1.0, 0.0] if "guest" in t or "hotel" in t else [0.0, 1.0] for t in texts])

    _, edges = build_graph(specs, GraphConfig(similarity_threshold=0.99), TagEmbedder())
    similar = edges.filter(pl.col("kind") == "similar")
    assert similar.height > 20
    domains, _ = assign_domains(specs, edges, GraphConfig(similarity_threshold=0.99))
    assert domains.height >= 2


class Judge:
    """A test double for the verifying model: says no to pairs whose names share no word."""

    name = "test:judge"

    def __init__(self):
        self.prompts: list[str] = []

    async def complete(self, messages, tools, **kw):
        prompt = messages[0]["content"]
        self.prompts.append(prompt)
        names = [json.loads(line)["name"] for line in prompt.splitlines() if line.startswith('{"name"')]
        a, b = (set(n.split("_")[1:]) for n in names)
        if "cancel_booking" in names:
            return {"role": "assistant", "content": "Hmm, hard to say."}
        return {"role": "assistant", "content": "Yes." if a & b else "no"}


def test_verify_edges_drops_rejected_keeps_unclear_and_unasked(bundled_specs, bundled_graph):
    _, edges, _, _ = bundled_graph
    hotel = {s.name for s in bundled_specs if s.tags[0] == "hotel"}
    mine = edges.filter(pl.col("src").is_in(hotel) & pl.col("dst").is_in(hotel))
    family = mine.filter(pl.col("kind") == "family")
    guessed = mine.height - family.height
    assert family.height > 0 and guessed > 2
    judge = Judge()
    kept, report = asyncio.run(verify_edges(mine, bundled_specs, judge, max_edges=guessed - 2))
    assert len(judge.prompts) == report.height == guessed - 2
    assert "family" not in report["kind"].to_list()  # the source's own grouping is never asked about
    dropped = report.filter(pl.col("verdict") == "dropped: no")
    assert dropped.height > 0 and report.filter(pl.col("verdict") == "kept: yes").height > 0
    assert kept.height == mine.height - dropped.height
    # the two guessed edges not asked about are the last in order: feeds edges after similar ones, by weight
    asked = set(report.select("src", "dst", "kind").iter_rows())
    unasked = [
        r
        for r in mine.filter(pl.col("kind") != "family").select("src", "dst", "kind").iter_rows()
        if r not in asked
    ]
    assert len(unasked) == 2 and all(r in set(kept.select("src", "dst", "kind").iter_rows()) for r in unasked)
    unclear = report.filter(pl.col("verdict") == "kept: unclear")
    assert all("cancel_booking" in (r["src"], r["dst"]) for r in unclear.iter_rows(named=True))
    assert "Tool A" in judge.prompts[0] and "yes or no" in judge.prompts[0]


@pytest.mark.parametrize(
    "reply, verdict",
    [
        ("Yes", True),
        ("no.", False),
        ("**No** - different apps", False),
        ("YES, both", True),
        ("maybe", None),
        ("", None),
    ],
)
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply) is verdict
