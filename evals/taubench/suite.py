"""`load_taubench`: a tau-bench v1 checkout's domain and split as tau2 tasks plus a tau2 environment.

v1's reward (`tau_bench/envs/base.py`, `calculate_reward`): replay the task's gold actions on freshly
loaded data and compare a hash of that data with the data the agent's run left (a mismatch scores 0);
then, if the task has `outputs`, each must appear, lower-cased, in some reply the agent sent the user
with commas removed from the reply, or the run scores 0. That is tau2's reward with reward basis
[DB, COMMUNICATE] and `communicate_info` = outputs, and tau2's retail and airline tools are the ports of
v1's (the same names and arguments). So each v1 task becomes a tau2 `Task` (user instructions = v1's
instruction; gold actions as evaluation actions; outputs as communicate_info; basis [DB, COMMUNICATE])
and the environment is tau2's retail or airline toolkit over a database built from v1's JSON
(`evals.taubench.db`), with v1's `wiki.md` as the policy. Everything downstream is tau2's own
orchestrator and evaluator, through `evals.tau2.runner.run_tau2`.

v1's `respond` and `think` actions change no data (v1's reward ignores them when it compares the final
state), and tau2 has no `think` tool, so they are left out of the gold actions; any other action name
tau2's toolkit lacks is an error naming the task.

tau2's evaluator finds a domain's environment through tau2's registry, so the suite is registered
there (tau2's own extension point for new domains) under a name derived from the content of the files
it was built from: the same files give the same name and a reused registration, changed files a new one.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from evals.tau2.agents import openai_tools
from evals.tau2.compat import load_tau2
from evals.taubench.db import DB_MODELS, load_tables, to_tau2_db_json
from evals.taubench.layout import (
    TauBenchFormatError,
    check_domain,
    domain_dir,
    table_files,
    tasks_file,
    wiki_file,
)
from evals.taubench.tasks import V1Task, parse_tasks

load_tau2()

from tau2.data_model.tasks import Action, Description, EvaluationCriteria, RewardType, Task, UserScenario  # noqa: E402
from tau2.domains.airline.tools import AirlineTools  # noqa: E402
from tau2.domains.retail.tools import RetailTools  # noqa: E402
from tau2.environment.environment import Environment  # noqa: E402
from tau2.environment.toolkit import ToolKitBase  # noqa: E402
from tau2.registry import registry  # noqa: E402

TOOLKITS: dict[str, type[ToolKitBase]] = {"retail": RetailTools, "airline": AirlineTools}
NO_DATA_ACTIONS = frozenset({"respond", "think"})  # v1 actions that change no data; not replayed
REWARD_BASIS = [RewardType.DB, RewardType.COMMUNICATE]  # v1's rule: final data, then outputs


@dataclass
class TauBenchSuite:
    """One v1 domain and split, ready for tau2: `tasks` (ids are v1's indices as strings), `policy`
    (v1's wiki.md), `name` (its tau2 registry name), `make_environment` (a fresh environment over a fresh
    copy of v1's data), and `notes` (the data fix-ups applied, see `evals.taubench.db`)."""

    domain: str
    split: str
    root: Path
    name: str
    tasks: list[Task]
    policy: str
    notes: list[str] = field(default_factory=list)
    db_json: str = field(default="", repr=False)

    @property
    def task_ids(self) -> list[str]:
        return [t.id for t in self.tasks]

    def make_environment(self, solo_mode: bool = False) -> Environment:
        """What tau2's registry calls: v1's data in tau2's toolkit. v1 has no solo mode (tau2 asks)."""
        if solo_mode:
            raise ValueError(f"tau-bench {self.domain} has no solo mode")
        db = DB_MODELS[self.domain].model_validate_json(self.db_json)
        return Environment(domain_name=self.name, policy=self.policy, tools=TOOLKITS[self.domain](db))

    def load_tasks(self, task_split_name: str | None = None) -> list[Task]:
        """What tau2's registry calls for the tasks: this suite's split (the only one it holds)."""
        if task_split_name not in (None, self.split):
            raise ValueError(f"{self.name} holds split {self.split!r} only, not {task_split_name!r}")
        return list(self.tasks)


@functools.cache
def tool_names(domain: str) -> frozenset[str]:
    """The tools tau2's port of the domain offers (read from the toolkit class; no database needed)."""
    return frozenset(TOOLKITS[domain](None).tools)


def to_tau2_task(task: V1Task, domain: str, split: str, path: Path) -> Task:
    """One v1 task as a tau2 task scored by v1's rule (see the module docstring)."""
    known = tool_names(domain)
    actions = []
    for action in task.actions:
        if action.name in NO_DATA_ACTIONS:
            continue
        if action.name not in known:
            raise TauBenchFormatError(
                f"{path}:{action.line}: task {task.index}: unknown action {action.name!r} "
                f"(tau2's {domain} tools: {sorted(known)})"
            )
        actions.append(
            Action(action_id=f"{task.index}_{len(actions)}", name=action.name, arguments=dict(action.kwargs))
        )
    return Task(
        id=str(task.index),
        description=Description(
            purpose=f"tau-bench v1 {domain}/{split} task {task.index}",
            notes=f"from {path}:{task.line}; v1 user_id={task.user_id}",
        ),
        user_scenario=UserScenario(instructions=task.instruction),
        evaluation_criteria=EvaluationCriteria(
            actions=actions,  # a list even when empty: tau2 then still compares the final data, as v1 does
            communicate_info=list(task.outputs),
            reward_basis=list(REWARD_BASIS),
        ),
    )


def load_v1_tasks(root: Path | str, domain: str, split: str = "test") -> list[Task]:
    """The split's tasks as tau2 tasks, from the task file alone (no data files read)."""
    path = tasks_file(root, domain, split)
    return [to_tau2_task(t, domain, split, path) for t in parse_tasks(path)]


_LOCK = threading.Lock()
_SUITES: dict[str, TauBenchSuite] = {}


def _digest(domain: str, split: str, paths: list[Path]) -> tuple[str, dict[Path, bytes]]:
    """SHA-256 over the domain, split and the files' bytes (the bytes are returned for reuse)."""
    h = hashlib.sha256(f"{domain}\0{split}\0".encode())
    contents = {}
    for path in paths:
        contents[path] = data = path.read_bytes()
        h.update(f"{path.name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest(), contents


def load_taubench(root: Path | str, domain: str, split: str = "test") -> TauBenchSuite:
    """The checkout's `domain` / `split` as a `TauBenchSuite`, registered in tau2's registry.

    Raises `TauBenchDataNotFound` (`data not found at PATH`) for a missing directory or file,
    `TauBenchFormatError` for a task file that is not `Task(...)` literals or names an unknown action, and
    `TauBenchDataError` for data tau2's models cannot hold. Cached by content: a second call on unchanged
    files returns the same suite without converting again.
    """
    check_domain(domain)
    root = Path(root).expanduser()
    files = table_files(root, domain)
    task_path, wiki_path = tasks_file(root, domain, split), wiki_file(root, domain)
    digest, contents = _digest(domain, split, [*files.values(), wiki_path, task_path])
    name = f"taubench_{domain}_{split}_{digest[:12]}"
    with _LOCK:
        if name in _SUITES:
            return _SUITES[name]
    tasks = load_v1_tasks(root, domain, split)
    db_json, notes = to_tau2_db_json(domain, load_tables(files, contents), files)
    suite = TauBenchSuite(
        domain=domain,
        split=split,
        root=domain_dir(root, domain),
        name=name,
        tasks=tasks,
        policy=contents[wiki_path].decode("utf-8"),
        notes=notes,
        db_json=db_json,
    )
    with _LOCK:
        if name not in _SUITES:
            _register(suite.name, suite.make_environment, suite.load_tasks)
            _SUITES[name] = suite
        return _SUITES[name]


def _register(name: str, make_environment: Callable[..., Environment], get_tasks: Callable) -> None:
    """Add the suite to tau2's registry (tau2's evaluator and our harness look environments up there)."""
    if name not in registry.get_domains():
        registry.register_domain(make_environment, name)
    if name not in registry.get_task_sets():
        registry.register_tasks(get_tasks, name)


def taubench_tool_schemas(root: Path | str, domain: str) -> list[dict]:
    """The domain's tools as OpenAI function schemas: tau2's port of v1's tools, i.e. exactly what an agent
    scored here is offered (for a contamination report). The checkout's domain directory must exist; its
    tool code is never read or run."""
    domain_dir(root, domain)
    return openai_tools(list(TOOLKITS[domain](None).get_tools().values()))
