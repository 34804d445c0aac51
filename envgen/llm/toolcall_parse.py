"""Convert between raw Hermes-style model text and OpenAI-format assistant messages.

A locally generated completion is plain text in which tool calls appear as
``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`` blocks (the format the project's
chat template teaches, and the one Qwen/Hermes models emit). The rest of the pipeline speaks OpenAI messages,
so this module is the single place that translates, in both directions:

* :func:`parse_assistant_text` turns generated text into an assistant message. Small models emit broken
  output all the time, so it never raises: whatever cannot be parsed stays in ``content`` verbatim and is
  described under ``parse_errors``, which lets a downstream validity filter reject the trajectory instead of
  crashing the rollout.
* :func:`arguments_as_objects` prepares messages for rendering: OpenAI carries tool-call arguments as JSON
  *text*, while chat templates (ours and the Hub's) serialise them with ``tojson`` and so want a mapping.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"

_TAG_RE = re.compile(re.escape(TOOL_CALL_OPEN) + "|" + re.escape(TOOL_CALL_CLOSE))


def parse_assistant_text(text: str) -> dict[str, Any]:
    """Turn raw generated text into an OpenAI assistant message; never raises.

    Every well-formed ``<tool_call>{json}</tool_call>`` block becomes an entry of ``tool_calls`` (ids
    ``call_1``, ``call_2``, ... in order; arguments re-serialised as JSON text). Everything else, including
    the raw text of blocks that could not be parsed, is joined into ``content``. Problems are listed under the
    extra key ``parse_errors`` (absent when there were none).
    """
    if not isinstance(text, str):
        return {
            "role": "assistant",
            "content": "",
            "parse_errors": [f"expected text, got {type(text).__name__}"],
        }
    content_parts: list[str] = []
    calls: list[dict[str, Any]] = []
    errors: list[str] = []
    pos = 0
    while (match := _TAG_RE.search(text, pos)) is not None:
        content_parts.append(text[pos : match.start()])
        if match.group() == TOOL_CALL_CLOSE:
            errors.append(f"stray {TOOL_CALL_CLOSE} at offset {match.start()}")
            content_parts.append(match.group())
            pos = match.end()
            continue
        close = text.find(TOOL_CALL_CLOSE, match.end())
        if close == -1:
            errors.append(f"unclosed {TOOL_CALL_OPEN} at offset {match.start()}")
            content_parts.append(text[match.start() :])
            pos = len(text)
            break
        body = text[match.end() : close]
        end = close + len(TOOL_CALL_CLOSE)
        call, error = _parse_call_body(body, call_id=f"call_{len(calls) + 1}")
        if call is None:
            errors.append(f"tool call at offset {match.start()}: {error}")
            content_parts.append(text[match.start() : end])
        else:
            calls.append(call)
        pos = end
    content_parts.append(text[pos:])
    return _assistant_message("".join(content_parts).strip(), calls, errors)


def _parse_call_body(body: str, call_id: str) -> tuple[dict[str, Any] | None, str]:
    """Parse the JSON between the tags into an OpenAI tool call, or return ``(None, reason)``."""
    if TOOL_CALL_OPEN in body:
        return None, f"nested {TOOL_CALL_OPEN}"
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, RecursionError) as exc:
        return None, f"invalid JSON ({exc.__class__.__name__}: {str(exc)[:80]})"
    if not isinstance(payload, dict):
        return None, f"expected a JSON object, got {type(payload).__name__}"
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip():
        return None, "missing or empty 'name'"
    arguments, error = _coerce_arguments(payload.get("arguments", {}))
    if arguments is None:
        return None, error
    function = {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)}
    return {"id": call_id, "type": "function", "function": function}, ""


def _coerce_arguments(raw: Any) -> tuple[dict[str, Any] | None, str]:
    """Accept arguments as an object or as JSON text holding an object (some models double-encode)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except (json.JSONDecodeError, RecursionError):
            return None, "'arguments' is a string that is not JSON"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return None, f"'arguments' must be an object, got {type(raw).__name__}"
    return raw, ""


def _assistant_message(content: str, calls: list[dict[str, Any]], errors: list[str]) -> dict[str, Any]:
    """Assemble the message, adding optional keys only when they carry something."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    if errors:
        message["parse_errors"] = errors
    return message


def arguments_as_objects(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return a deep copy of ``messages`` whose tool-call arguments are mappings instead of JSON text.

    Arguments that are not valid JSON objects are left as they are (the project's template then emits them
    JSON-quoted), so rendering never fails on a malformed trajectory. Keys the templates do not use (such as
    ``parse_errors``) are dropped so that they cannot leak into a prompt.
    """
    out = copy.deepcopy(messages)
    for message in out:
        message.pop("parse_errors", None)
        for call in message.get("tool_calls") or []:
            function = call.get("function", call)
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                parsed, _ = _coerce_arguments(arguments)
                if parsed is not None:
                    function["arguments"] = parsed
    return out
