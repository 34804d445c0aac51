"""How the scripted user asks for one step: in the API's words, or in a user's own (rule-based, seeded).

Restating the first sentence of a tool's description ("change the shipping address of an order") makes
choosing the tool a word-overlap problem: a lexical pick gets every tool name right and a graded metric
measures nothing. Real users name the thing they care about and say what they want in their own verbs
("could you amend the pending order address"). `user_request` does that offline, without a language model:
the object comes from the tool's name (its words after the action verb), the action from a lexicon of
everyday verbs for the tool's kind of action, never the verb the API itself uses. Tools whose action verb
is not in the lexicon keep their description's wording. An LLM rewrite of whole intents remains available
(`envgen.tasks.intent_llm`, `llm.synthesis: openai`).
"""

from __future__ import annotations

import random

# Action classes: the verbs APIs use for them, and how users ask for them (none of the API verbs; each
# reads after "Could you", "I'd like to" and "I need to").
_ACTIONS: list[tuple[frozenset[str], tuple[str, ...]]] = [
    (
        frozenset(
            {"get", "return", "lookup", "look", "fetch", "retrieve", "show", "view", "describe", "read"}
        ),
        ("pull up", "bring up", "dig out", "go over", "have a look at"),
    ),
    (
        frozenset({"list", "search", "find", "browse", "query"}),
        ("go through", "run through", "get an overview of", "look over"),
    ),
    (
        frozenset({"check", "track", "verify", "estimate", "quote", "calculate", "compare"}),
        ("work out", "figure out", "see about", "get clarity on"),
    ),
    (
        frozenset({"cancel", "delete", "remove", "close", "revoke", "withdraw", "terminate", "stop", "end"}),
        ("call off", "scrap", "get rid of", "do away with", "put an end to"),
    ),
    (
        frozenset(
            {
                "create",
                "add",
                "book",
                "register",
                "open",
                "submit",
                "place",
                "record",
                "reserve",
                "schedule",
                "file",
                "apply",
                "log",
                "issue",
                "start",
                "request",
                "enroll",
                "sign",
                "make",
                "post",
                "buy",
            }
        ),
        ("set up", "arrange", "put in", "sort out", "get going with"),
    ),
    (
        frozenset(
            {
                "update",
                "change",
                "modify",
                "set",
                "edit",
                "move",
                "switch",
                "turn",
                "rename",
                "adjust",
                "reschedule",
                "assign",
                "transfer",
                "upgrade",
                "extend",
            }
        ),
        ("adjust", "rework", "amend", "make a change to", "tweak"),
    ),
    (
        frozenset({"pay", "refund", "charge", "settle"}),
        ("settle up on", "square away", "sort out the money for"),
    ),
]


def _action_words(verb: str) -> tuple[str, ...] | None:
    for api_verbs, said in _ACTIONS:
        if verb in api_verbs:
            return said
    return None


def described_request(description: str) -> str:
    """The first sentence of the description, lower-cased: the API's own words."""
    first = description.strip().split(". ")[0].rstrip(".")
    return (first[:1].lower() + first[1:]) if first else "take care of something for me"


def user_request(tool_name: str, description: str, rng: random.Random) -> str:
    """`<everyday verb> the <object>`, the object being the tool name after its verb (`cancel_pending_order`
    → "scrap the pending order"); the description's wording when the name has no known action verb or no
    object."""
    words = [w for w in tool_name.lower().replace("-", "_").split("_") if w]
    said = _action_words(words[0]) if words else None
    rest = words[1:]
    if not said or not rest:
        return described_request(description)
    return f"{rng.choice(said)} the {' '.join(rest)}"
