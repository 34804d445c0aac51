"""The scripted user's own words: requests name the object, never the API's verb, and still replay."""

import random

from envgen.tasks.chains import TaskConfig, replay, sample_tasks
from envgen.tasks.phrasing import described_request, user_request
from evals.tool_calls import LexicalBaseline, Turn


def test_a_request_names_the_object_with_an_everyday_verb_not_the_apis():
    rng = random.Random(0)
    said = {user_request("cancel_pending_order", "Cancel a pending order.", rng) for _ in range(30)}
    assert all(s.endswith(" the pending order") and "cancel" not in s for s in said)
    assert len(said) > 2  # the verb varies with the seed
    assert user_request("get_line_details", "Return a line.", random.Random(1)).endswith("the line details")


def test_an_unknown_action_verb_or_a_bare_verb_keeps_the_descriptions_words():
    rng = random.Random(0)
    assert (
        user_request("suspend_line", "Temporarily suspend a line. Fails if", rng)
        == "temporarily suspend a line"
    )
    assert user_request("cancel", "Cancel everything.", rng) == "cancel everything"
    assert described_request("") == "take care of something for me"


def _lexical_name_accuracy(domain, tasks) -> float:
    tools = domain.env.openai_tools()
    turns = [
        Turn("d", "vertical", t.task_id, [{"role": "user", "content": part}], tools, call["name"], {}, 0)
        for t in tasks
        for part, call in zip(t.intent_parts, t.gold_calls, strict=True)
    ]
    answers = LexicalBaseline().answer(turns)
    named = [((a.get("tool_calls") or [{}])[0].get("function") or {}).get("name") for a in answers]
    return sum(n == t.gold_name for n, t in zip(named, turns, strict=True)) / len(turns)


def test_own_words_tasks_replay_and_are_no_longer_a_word_overlap_problem(built_domains):
    d = built_domains["retail"]
    described = sample_tasks(d.env, d.path, d.edges, TaskConfig(n_chains=40, own_words=0.0)).tasks
    own = sample_tasks(d.env, d.path, d.edges, TaskConfig(n_chains=40, own_words=1.0)).tasks
    # the same chains (phrasing draws come after the calls), only the words differ
    assert [t.gold_calls for t in own] == [t.gold_calls for t in described]
    assert all(replay(d.env, d.path, t.gold_calls) == t.gold_hash for t in own)
    assert [t.intent for t in own] != [t.intent for t in described]
    assert _lexical_name_accuracy(d, described) > 0.9
    assert _lexical_name_accuracy(d, own) < 0.8
