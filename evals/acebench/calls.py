"""Function calls in both shapes an agent may answer in, reduced to ACEBench's `{name: {arg: value}}` form.

ACEBench prompts models to answer `[ApiName(key='value', ...)]`; OpenAI-style agents answer with structured
`tool_calls`. Both end up as a list of one-key dicts, the shape ACEBench's checker compares. Text is parsed
with `ast` and only literal nodes are accepted: model output is data to judge, never code to run.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

Call = dict[str, dict[str, Any]]  # {function_name: {argument: value}}


class CallParseError(ValueError):
    """Text that is not a list of function calls made of literals."""


def _dotted(node: ast.expr) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise CallParseError(f"unsupported callee {ast.dump(node)[:60]}")
    parts.append(node.id)
    return ".".join(reversed(parts))


def _literal(node: ast.expr) -> Any:
    """A literal value; bare names become their text (ACEBench does the same for `key=value` typos)."""
    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        val = _literal(node.operand)
        if not isinstance(val, int | float) or isinstance(val, bool):
            raise CallParseError("unary sign on a non-number")
        return -val if isinstance(node.op, ast.USub) else val
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise CallParseError("dict unpacking is not a literal")
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.Name):
        return {"true": True, "false": False, "null": None}.get(node.id, node.id)
    if isinstance(node, ast.Call):  # a nested call as a value: keep it as its source text
        return ast.unparse(node)
    raise CallParseError(f"unsupported value {type(node).__name__}")


def _call(node: ast.expr) -> Call:
    if not isinstance(node, ast.Call):
        raise CallParseError(f"element is a {type(node).__name__}, not a function call")
    if node.args:
        raise CallParseError("positional arguments are not allowed; use key=value")
    args = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise CallParseError("**kwargs is not allowed")
        args[kw.arg] = _literal(kw.value)
    return {_dotted(node.func): args}


_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


def parse_text_calls(text: str) -> list[Call]:
    """`[f(a=1), g(b='x')]` (or a single bare `f(a=1)`) as calls; raises CallParseError otherwise."""
    src = _FENCE.sub("", text.strip()).strip()
    if not src:
        raise CallParseError("empty output")
    try:
        tree = ast.parse(src, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        start, end = src.find("["), src.rfind("]")
        if start > 0 and end > start:  # prose around a call list: try the bracketed part alone
            return parse_text_calls(src[start : end + 1])
        raise CallParseError(f"not parseable: {exc}") from exc
    body = tree.body
    if isinstance(body, ast.Call):
        return [_call(body)]
    if isinstance(body, ast.List | ast.Tuple) and body.elts:
        return [_call(e) for e in body.elts]
    raise CallParseError(f"output is a {type(body).__name__}, not a list of calls")


def calls_from_message(msg: dict[str, Any], name_map: dict[str, str] | None = None) -> tuple[list[Call], str]:
    """The calls of an assistant message and an error string ("" when fine, or when it made no call).

    Structured `tool_calls` win; otherwise the text is tried in ACEBench's bracket form. `name_map` maps the
    OpenAI-safe tool names we offered back to ACEBench's names (which may contain dots).
    """
    name_map = name_map or {}
    tool_calls = msg.get("tool_calls") or []
    if tool_calls:
        calls: list[Call] = []
        for tc in tool_calls:
            fn = tc.get("function") or {}
            args = fn.get("arguments")
            if isinstance(args, str):
                try:
                    args = json.loads(args) if args.strip() else {}
                except json.JSONDecodeError:
                    return calls, "tool call arguments are not JSON"
            if not isinstance(args, dict):
                return calls, "tool call arguments are not an object"
            name = fn.get("name") or ""
            calls.append({name_map.get(name, name): args})
        return calls, ""
    text = msg.get("content") or ""
    if not isinstance(text, str) or "(" not in text:
        return [], ""
    try:
        return parse_text_calls(text), ""
    except CallParseError as exc:
        return [], str(exc)


def render_calls(calls: list[Call]) -> str:
    """ACEBench's text form of one step, `[f(a='x'), g()]`, as its milestones are written."""
    parts = []
    for call in calls:
        for name, args in call.items():
            parts.append(f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})")
    return "[" + ", ".join(parts) + "]"
