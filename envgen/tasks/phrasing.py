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

from envgen.environment.schema import ALL_VERBS, DESCRIPTION_VERBS

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


# Verbs a description may open with and that read after "Could you" (every verb the rules or the lexicon
# know, and the usual others); a description opening with anything else is a noun phrase.
_OTHER_VERBS = {
    "convert", "play", "translate", "generate", "download", "compute", "analyze", "fetch", "give",
    "authenticate", "login", "perform", "run", "look", "estimate", "predict", "summarize", "display",
}  # fmt: skip
_VERBS = ALL_VERBS | DESCRIPTION_VERBS | _OTHER_VERBS | {v for api_verbs, _ in _ACTIONS for v in api_verbs}
# Verbs whose third person opens descriptions ("Returns the weather", "Searches for news"); the third
# person of the others is more often a plural noun ("Quotes for several symbols", "Orders of a user").
_DESCRIBING = {
    "return", "retrieve", "get", "fetch", "search", "find", "list", "create", "add", "update", "delete",
    "remove", "send", "convert", "calculate", "compute", "generate", "provide", "give", "set", "change",
    "cancel", "make", "move", "copy", "rename", "upload", "download", "show", "display", "translate",
    "analyze", "start", "stop", "enable", "disable", "lock", "unlock", "read", "write", "edit", "modify",
    "perform", "validate", "verify", "authenticate", "check", "look", "query", "describe", "estimate",
}  # fmt: skip
# Third-person openings that read better as another imperative ("Returns the weather" -> "get the weather").
_SAID_AS = {"return": "get", "provide": "give me"}
_DETERMINERS = {"a", "an", "the", "all", "every", "each", "some", "any", "my", "your", "one", "this", "these"}


def _base_verb(word: str) -> str | None:
    """The imperative of a description's first word (`Cancel`, `searches` -> `search`, `Retrieves` ->
    `retrieve`), or None when it is no verb we know (or a plural noun such as `Quotes`)."""
    w = word.lower().strip(",:;")
    if w in _VERBS:
        return _SAID_AS.get(w, w)
    for base in (w[:-3] + "y" if w.endswith("ies") else "", w[:-2] if w.endswith("es") else "", w[:-1]):
        if base in _DESCRIBING:
            return _SAID_AS.get(base, base)
    return None


def described_request(description: str) -> str:
    """The first sentence of the description as a request (the API's own words): its verb in the
    imperative ("Searches for news" -> "search for news"), and a description that opens with a noun
    ("Latest price quote of a stock") asked for as a thing to get ("get the latest price quote ...")."""
    first = description.strip().split(". ")[0].rstrip(".")
    if not first:
        return "take care of something for me"
    head, _, rest = first.partition(" ")
    verb = _base_verb(head)
    if verb is not None:
        return f"{verb} {rest}".strip()
    if head.lower().endswith("ly") and _base_verb(rest.partition(" ")[0]):  # "Temporarily suspend a line"
        return first[:1].lower() + first[1:]
    phrase = first[:1].lower() + first[1:]
    return f"get {phrase}" if head.lower() in _DETERMINERS else f"get the {phrase}"


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
