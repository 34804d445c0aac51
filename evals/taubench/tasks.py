"""tau-bench v1 task files read as data: `Task(...)` / `Action(...)` literals parsed with `ast`, never run.

A v1 `tasks_<split>.py` is a Python module (`TASKS_TEST = [Task(user_id=..., instruction=...,
actions=[Action(name=..., kwargs={...}), ...], outputs=[...]), ...]`). Importing it would run whatever
else the file holds, and it imports `tau_bench`, so it is parsed instead: every `Task(...)` call in
source order is one task (its index is v1's task id), and each keyword value must be a Python literal
(`ast.literal_eval`). Anything else (a positional argument, a name, a call, `**kwargs`) is refused with
the file, line and task index, so a task file cannot smuggle computation into a benchmark.

The fields are v1's `tau_bench.types.Task`: `user_id`, `instruction`, `actions`, `outputs` are required;
other keywords (`annotator`, ...) must be literals too and are kept in `extra`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.taubench.layout import TauBenchFormatError

REQUIRED = ("user_id", "instruction", "actions", "outputs")


@dataclass(frozen=True)
class V1Action:
    """One gold action: a tool name and its keyword arguments, as v1 writes them."""

    name: str
    kwargs: dict[str, Any]
    line: int


@dataclass(frozen=True)
class V1Task:
    """One v1 task; `index` is its position in the split (v1's task id), `line` where its call starts."""

    index: int
    user_id: str
    instruction: str
    actions: tuple[V1Action, ...]
    outputs: tuple[str, ...]
    line: int
    extra: dict[str, Any] = field(default_factory=dict)


def _callee(node: ast.Call) -> str | None:
    """`Task` for `Task(...)` and `types.Task(...)` alike."""
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


class _Reader:
    """Parses one file; `fail` builds the error with the file, line and task index in the message."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, line: int, message: str, index: int | None = None) -> TauBenchFormatError:
        where = f"{self.path}:{line}"
        return TauBenchFormatError(
            f"{where}: {message}" if index is None else f"{where}: task {index}: {message}"
        )

    def literal(self, node: ast.expr, what: str, index: int) -> Any:
        try:
            return ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            shown = ast.unparse(node)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            raise self.fail(node.lineno, f"{what} is not a literal: {shown}", index) from None

    def keywords(self, call: ast.Call, what: str, index: int) -> dict[str, ast.expr]:
        if call.args:
            raise self.fail(call.lineno, f"{what} has positional arguments (only keywords are read)", index)
        out: dict[str, ast.expr] = {}
        for kw in call.keywords:
            if kw.arg is None:
                raise self.fail(kw.value.lineno, f"{what} has a **mapping argument", index)
            out[kw.arg] = kw.value
        return out

    def action(self, node: ast.expr, index: int) -> V1Action:
        """`Action(name=..., kwargs={...})`, or the same as a dict literal."""
        if isinstance(node, ast.Call) and _callee(node) == "Action":
            args = self.keywords(node, "Action(...)", index)
            if set(args) != {"name", "kwargs"}:
                raise self.fail(
                    node.lineno, f"Action(...) needs exactly name= and kwargs=, has {sorted(args)}", index
                )
            name = self.literal(args["name"], "Action name", index)
            kwargs = self.literal(args["kwargs"], f"kwargs of action {name!r}", index)
        elif isinstance(node, ast.Dict):
            value = self.literal(node, "action", index)
            if set(value) != {"name", "kwargs"}:
                raise self.fail(
                    node.lineno, f"an action dict needs exactly name and kwargs, has {sorted(value)}", index
                )
            name, kwargs = value["name"], value["kwargs"]
        else:
            raise self.fail(
                node.lineno, f"an action must be Action(...), not {ast.unparse(node)[:60]}", index
            )
        if not isinstance(name, str) or not name:
            raise self.fail(node.lineno, f"action name must be a non-empty string, not {name!r}", index)
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise self.fail(node.lineno, f"kwargs of action {name!r} must be a dict with string keys", index)
        return V1Action(name=name, kwargs=kwargs, line=node.lineno)

    def task(self, call: ast.Call, index: int) -> V1Task:
        args = self.keywords(call, "Task(...)", index)
        missing = [k for k in REQUIRED if k not in args]
        if missing:
            raise self.fail(call.lineno, f"Task(...) lacks {missing}", index)
        actions_node = args.pop("actions")
        if not isinstance(actions_node, (ast.List, ast.Tuple)):
            raise self.fail(actions_node.lineno, "actions must be a list literal", index)
        actions = tuple(self.action(a, index) for a in actions_node.elts)
        values = {k: self.literal(v, f"argument {k!r}", index) for k, v in args.items()}
        user_id, instruction, outputs = (
            values.pop("user_id"),
            values.pop("instruction"),
            values.pop("outputs"),
        )
        if not isinstance(user_id, str) or not isinstance(instruction, str):
            raise self.fail(call.lineno, "user_id and instruction must be strings", index)
        if not isinstance(outputs, (list, tuple)) or not all(isinstance(o, str) for o in outputs):
            raise self.fail(args["outputs"].lineno, "outputs must be a list of strings", index)
        return V1Task(index, user_id, instruction, actions, tuple(outputs), call.lineno, values)


def parse_tasks(path: Path | str) -> list[V1Task]:
    """Every `Task(...)` literal in the file, in source order (index = v1's task id). Never imports it."""
    path = Path(path)
    reader = _Reader(path)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise reader.fail(exc.lineno or 0, f"not valid Python: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise reader.fail(0, f"not UTF-8 text: {exc.reason}") from None
    calls = sorted(
        (n for n in ast.walk(tree) if isinstance(n, ast.Call) and _callee(n) == "Task"),
        key=lambda n: (n.lineno, n.col_offset),
    )
    if not calls:
        raise reader.fail(1, "no Task(...) literals found")
    return [reader.task(call, index) for index, call in enumerate(calls)]
