"""Reading an ACEBench checkout: `data_all/data_{lang}/data_<category>_<sub>.json` plus `possible_answer/`.

ACEBench names its files `.json` but stores one JSON record per line, so each line is parsed alone and a bad
line is reported with its file and line number (a truncated download should say where it broke, not fail
somewhere inside a scorer). Nothing here evaluates code; answers stay the plain JSON they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CATEGORIES = ("normal", "special", "agent")


class AceBenchDataNotFound(FileNotFoundError):
    """The path given does not hold ACEBench data for the requested language."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(f"data not found at {path}")
        self.path = Path(path)


class AceBenchFormatError(ValueError):
    """A line of an ACEBench file is not a JSON object; the message names `file:line`."""


@dataclass
class AceBenchItem:
    """One ACEBench test record with its possible answer (the record of `possible_answer/` with its id)."""

    id: str
    category: str  # normal | special | agent
    subcategory: str  # e.g. atom_bool, multi_turn_user_switch, incomplete, multi_step
    question: str
    functions: list[dict[str, Any]]
    answer: Any  # the `ground_truth` field: a dict, a list of alternatives, or a string
    time: str = ""
    profile: str = ""
    initial_config: dict[str, Any] = field(default_factory=dict)
    involved_classes: list[str] = field(default_factory=list)
    mile_stone: list[Any] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # "<data file>:<line>", for errors that name the item's place

    @property
    def unit(self) -> str:
        """The unit ACEBench scores: a normal multi-turn conversation (`..._<conv>_<turn>`) counts once."""
        if self.subcategory.startswith("multi_turn") and self.category == "normal":
            return self.id.rsplit("_", 1)[0]
        return self.id


@dataclass
class AceBenchData:
    """Items by category and subcategory, in file order, plus where they came from."""

    root: Path
    language: str
    items: dict[str, dict[str, list[AceBenchItem]]]

    def category(self, name: str) -> list[AceBenchItem]:
        """All items of one category, subcategories in sorted order."""
        return [it for sub in sorted(self.items.get(name, {})) for it in self.items[name][sub]]

    def counts(self) -> dict[str, dict[str, int]]:
        return {c: {s: len(v) for s, v in subs.items()} for c, subs in self.items.items()}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """JSON Lines records of `path`; blank lines are skipped, anything else must be one JSON object."""
    out = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AceBenchFormatError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(rec, dict):
                raise AceBenchFormatError(
                    f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}"
                )
            if "id" not in rec:
                raise AceBenchFormatError(f"{path}:{lineno}: record has no 'id'")
            out.append(rec)
    return out


def data_dir(root: Path | str, language: str = "en") -> Path:
    """`root` may be the checkout, its `data_all/`, or the language folder itself."""
    root = Path(root)
    for cand in (root / "data_all" / f"data_{language}", root / f"data_{language}", root):
        if cand.is_dir() and any(cand.glob("data_*.json")):
            return cand
    raise AceBenchDataNotFound(root)


def load_acebench(root: Path | str, language: str = "en") -> AceBenchData:
    """Load every `data_<category>_<sub>.json` of a checkout with its possible answers.

    An item without a possible answer is an error (a score without ground truth would be silently wrong).
    """
    if language not in ("en", "zh"):
        raise ValueError(f"language must be 'en' or 'zh', not {language!r}")
    base = data_dir(root, language)
    answers_dir = base / "possible_answer"
    items: dict[str, dict[str, list[AceBenchItem]]] = {}
    for path in sorted(base.glob("data_*.json")):
        stem = path.stem[len("data_") :]
        category, _, sub = stem.partition("_")
        if category not in CATEGORIES or not sub:
            continue
        answer_path = answers_dir / path.name
        if not answer_path.is_file():
            raise AceBenchDataNotFound(answer_path)
        answers = {r["id"]: r for r in read_jsonl(answer_path)}
        batch = []
        for lineno, rec in enumerate(read_jsonl(path), 1):
            ans = answers.get(rec["id"])
            if ans is None:
                raise AceBenchFormatError(f"{answer_path}: no possible answer for id {rec['id']!r}")
            batch.append(_item(rec, ans, category, sub, path, lineno))
        items.setdefault(category, {})[sub] = batch
    if not items:
        raise AceBenchDataNotFound(base)
    return AceBenchData(root=Path(root), language=language, items=items)


def _item(rec: dict, ans: dict, category: str, sub: str, path: Path, lineno: int) -> AceBenchItem:
    functions = rec.get("function") or []
    if not isinstance(functions, list):
        raise AceBenchFormatError(f"{path}:{lineno}: 'function' is not a list")
    question = rec.get("question", "")
    return AceBenchItem(
        id=str(rec["id"]),
        category=category,
        subcategory=sub,
        question=question if isinstance(question, str) else json.dumps(question, ensure_ascii=False),
        functions=functions,
        answer=ans.get("ground_truth"),
        time=rec.get("time") or "",
        profile=rec.get("profile") or "",
        initial_config=rec.get("initial_config") or {},
        involved_classes=list(rec.get("involved_classes") or []),
        mile_stone=list(ans.get("mile_stone") or []),
        raw=rec,
        source=f"{path}:{lineno}",
    )
