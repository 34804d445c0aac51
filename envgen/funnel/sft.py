"""Surviving trajectories to chat-format SFT rows `{"messages", "tools"}`, de-duplicated and split.

Rows are stored in Parquet with `messages` and `tools` as JSON text (tool schemas differ from row to row,
which Arrow structs cannot hold); `load_rows` gives back the plain dicts TRL expects. The validation split
is by task, so two rollouts of the same task never sit on both sides.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

from envgen.simulate.rollout import Trajectory
from envgen.tasks.chains import Task

_KEEP_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")


def clean_message(m: dict[str, Any]) -> dict[str, Any]:
    """Only the chat-format keys (drops parser diagnostics and other bookkeeping)."""
    return {k: m[k] for k in _KEEP_KEYS if k in m and m[k] is not None}


def to_row(t: Trajectory, recovered: bool) -> dict[str, Any]:
    messages = [clean_message(m) for m in t.messages]
    canonical = json.dumps(messages, sort_keys=True)
    return {
        "example_id": hashlib.sha1(canonical.encode()).hexdigest()[:16],
        "task_id": t.task_id,
        "domain": t.domain,
        "recovered": recovered,
        "messages": json.dumps(messages),
        "tools": json.dumps(t.tools),
    }


SFT_SCHEMA = {
    "example_id": pl.String,
    "task_id": pl.String,
    "domain": pl.String,
    "recovered": pl.Boolean,
    "messages": pl.String,
    "tools": pl.String,
    "split": pl.String,
}


def build_sft_frame(rows: list[dict[str, Any]], validation_fraction: float, seed: int) -> pl.DataFrame:
    """De-duplicate identical conversations and assign a task-level train/validation split."""
    unique = list({r["example_id"]: r for r in rows}.values())
    tasks = sorted({r["task_id"] for r in unique})
    random.Random(seed).shuffle(tasks)
    n_val = max(1, round(len(tasks) * validation_fraction)) if len(tasks) > 1 else 0
    val = set(tasks[:n_val])
    out = [{**r, "split": "validation" if r["task_id"] in val else "train"} for r in unique]
    return pl.DataFrame(out, schema=SFT_SCHEMA).sort("example_id")


def load_rows(path: Path, split: str | None = None) -> list[dict[str, Any]]:
    """SFT rows as `{"messages": [...], "tools": [...]}` dicts, optionally one split only."""
    frame = pl.read_parquet(path)
    if split:
        frame = frame.filter(pl.col("split") == split)
    return [
        {"messages": json.loads(m), "tools": json.loads(t)}
        for m, t in frame.select("messages", "tools").iter_rows()
    ]


def _user_turns(messages: list[dict[str, Any]]) -> list[str]:
    return [str(m.get("content") or "") for m in messages if m.get("role") == "user"]


def heldout_leaks(frame: pl.DataFrame, heldout: Iterable[Task]) -> list[dict[str, str]]:
    """SFT rows that would leak a held-out task into training: one row per leak, with why.

    A row leaks when its `task_id` is a held-out task's, or when its user turns are exactly that task's
    request (`intent_parts`, in order), or are that request followed by the closing line a conversation
    ends with when the user stops it (its last message is then the user's). The second test catches the
    same request reaching training under another id, say from a re-synthesised or copied domain.
    """
    by_id = {t.task_id: t for t in heldout}
    by_request = {tuple(t.intent_parts): t.task_id for t in by_id.values() if t.intent_parts}
    leaks = []
    for example_id, task, messages in frame.select("example_id", "task_id", "messages").iter_rows():
        if task in by_id:
            leaks.append({"example_id": example_id, "task_id": task, "heldout_task": task, "why": "task_id"})
            continue
        chat = json.loads(messages)
        turns = _user_turns(chat)
        ends_with_user = bool(chat) and chat[-1].get("role") == "user"
        for n in (len(turns), len(turns) - 1) if ends_with_user else (len(turns),):
            match = by_request.get(tuple(turns[:n])) if n > 0 else None
            if match is not None:
                leaks.append(
                    {"example_id": example_id, "task_id": task, "heldout_task": match, "why": "same request"}
                )
                break
    return leaks
