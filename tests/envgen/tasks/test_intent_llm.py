"""LLM-reworded intents are kept only when they keep every value and name no tool."""

import asyncio
import json

import pytest

from envgen.tasks.chains import TaskConfig, sample_tasks
from envgen.tasks.intent_llm import accept_rewrite, rewrite_intent


class CannedModel:
    """A test double standing in for an endpoint: returns a fixed reply."""

    name = "test:canned"

    def __init__(self, reply: str):
        self.reply = reply

    async def complete(self, messages, tools, **kw):
        return {"role": "assistant", "content": self.reply}


@pytest.fixture(scope="module")
def task(airline):
    batch = sample_tasks(airline.env, airline.path, airline.edges, TaskConfig(n_chains=30))
    return next(t for t in batch.tasks if t.length >= 2 and any(c["arguments"] for c in t.gold_calls))


def test_a_faithful_rewrite_is_accepted(airline, task):
    parts = [f"Hey there! {p}" for p in task.intent_parts]
    tools = {t["name"] for t in airline.env.tools}
    rewritten, reason = asyncio.run(rewrite_intent(task, CannedModel(json.dumps(parts)), tools))
    assert reason is None and rewritten.intent_parts == parts


@pytest.mark.parametrize(
    "mangle, why",
    [
        (lambda parts: "Sure! Here you go.", "not a JSON list"),
        (lambda parts: json.dumps(parts[:-1]), "expected"),
        (lambda parts: json.dumps(["Please help me."] * len(parts)), "lost the values"),
    ],
)
def test_unfaithful_rewrites_are_refused(airline, task, mangle, why):
    verdict = accept_rewrite(task, mangle(task.intent_parts), {t["name"] for t in airline.env.tools})
    assert isinstance(verdict, str) and why in verdict


def test_a_rewrite_naming_a_tool_is_refused(airline, task):
    parts = [p + f" Use {task.gold_calls[0]['name']}." for p in task.intent_parts]
    verdict = accept_rewrite(task, json.dumps(parts), {t["name"] for t in airline.env.tools})
    assert verdict == "part 0 names a tool"
