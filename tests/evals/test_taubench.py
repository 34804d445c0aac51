"""tau-bench v1 (`evals.taubench`) on a checkout built at test time, scored by v1's rule through tau2.

No tau-bench data is committed: the fixture writes a tau-bench-layout checkout into a temporary folder
from tau2's installed retail and airline data (tau2's domains are ports of v1's), in v1's own format
(airline users keyed by id without `user_id`, addresses with `province`, as v1's `users.json` has them),
with a `tasks_test.py` of `Task(...)` literals derived from tau2 test tasks and tau2's policy as
`wiki.md`; the database keeps only the users those tasks concern (see `_trimmed`). The checkout's
`data/__init__.py` raises if imported, and a task file with side effects at module level shows that
task files are parsed, never run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from evals.tau2.compat import tau2_missing_reason

_MISSING = tau2_missing_reason()
if _MISSING is not None:
    pytest.skip(f"tau2-bench is not importable: {_MISSING}", allow_module_level=True)

from envgen.llm.backends import DoNothingAgent  # noqa: E402
from evals.tau2.harness import MISSING_INFO  # noqa: E402
from evals.tau2.runner import NEEDS_USER, SCORED, Tau2Result, load_tasks  # noqa: E402
from evals.taubench import (  # noqa: E402
    TauBenchDataError,
    TauBenchDataNotFound,
    TauBenchFormatError,
    load_taubench,
    run_taubench,
    sample_task_ids,
    taubench_tool_schemas,
)
from evals.taubench.db import to_tau2_db_json  # noqa: E402
from evals.taubench.suite import to_tau2_task  # noqa: E402
from evals.taubench.tasks import parse_tasks  # noqa: E402
from tests.evals.script_backend import ScriptBackend  # noqa: E402

# tau2 test tasks turned into v1 tasks: writes, reads only, a transfer, no actions at all, and outputs.
PICKS = {
    "retail": ["5", "12", "33", "36", "40", "90", "108"],
    "airline": ["2", "13", "18", "19", "24", "26"],
}
OUTPUT_TASK = {"retail": "33", "airline": "18"}  # tau2 ids of tasks with outputs ('1093.34', '23553')
HEADER = "from tau_bench.types import Action, Task\n\nTASKS_TEST = [\n"


def _v1_task_literal(task) -> str:
    """A tau2 task as the `Task(...)` literal a v1 `tasks_test.py` holds."""
    criteria = task.evaluation_criteria
    actions = criteria.actions or []
    user_id = next((a.arguments["user_id"] for a in actions if "user_id" in a.arguments), "unknown_0000")
    lines = ["    Task(", '        annotator="0",', f"        user_id={user_id!r},"]
    lines.append(f"        instruction={str(task.user_scenario.instructions)!r},")
    lines.append("        actions=[")
    lines += [f"            Action(name={a.name!r}, kwargs={dict(a.arguments)!r})," for a in actions]
    lines += ["        ],", f"        outputs={list(criteria.communicate_info or [])!r},", "    ),"]
    return "\n".join(lines) + "\n"


def _trimmed(db: dict[str, Any], domain: str, tasks: list) -> dict[str, Any]:
    """Only the users the tasks mention (by id, in their actions or instructions), with all their orders or
    reservations, plus the owners of any order or reservation the actions name; every product and flight.
    Each environment of each simulation loads the database several times, so a smaller one keeps this
    file fast; the records kept are tau2's, unchanged."""
    owned, owner = ("orders", "orders") if domain == "retail" else ("reservations", "reservations")
    text = " ".join(json.dumps(t.evaluation_criteria.model_dump()) + str(t.user_scenario) for t in tasks)
    users = {u for u in db["users"] if u in text}
    users |= {r["user_id"] for k, r in db[owned].items() if k in text}
    kept = {k for u in users for k in db["users"][u][owner]}
    return {**db, "users": {u: db["users"][u] for u in users}, owned: {k: db[owned][k] for k in kept}}


def _write_checkout(root: Path, domain: str) -> Path:
    from tau2.domains.airline.utils import AIRLINE_DB_PATH, AIRLINE_POLICY_PATH
    from tau2.domains.retail.utils import RETAIL_DB_PATH, RETAIL_POLICY_PATH

    db_path, policy_path = {
        "retail": (RETAIL_DB_PATH, RETAIL_POLICY_PATH),
        "airline": (AIRLINE_DB_PATH, AIRLINE_POLICY_PATH),
    }[domain]
    env_dir = root / "tau_bench" / "envs" / domain
    data = env_dir / "data"
    data.mkdir(parents=True)
    tasks = load_tasks(domain, "test", PICKS[domain])
    db = _trimmed(json.loads(Path(db_path).read_text()), domain, tasks)
    if domain == "airline":  # v1's airline users.json: no user_id in the record, `province` for the state
        for user in db["users"].values():
            del user["user_id"]
            user["address"]["province"] = user["address"].pop("state")
    for table, records in db.items():
        (data / f"{table}.json").write_text(json.dumps(records, indent=4))
    (data / "__init__.py").write_text("raise RuntimeError('tau-bench code must never be imported')\n")
    (env_dir / "wiki.md").write_text(Path(policy_path).read_text())
    (env_dir / "tasks_test.py").write_text(HEADER + "".join(_v1_task_literal(t) for t in tasks) + "]\n")
    return root


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tau-bench")
    for domain in PICKS:
        _write_checkout(root, domain)
    return root


def _v1_id(domain: str, tau2_id: str) -> str:
    """The v1 index the fixture gave a tau2 task."""
    return str(PICKS[domain].index(tau2_id))


@pytest.fixture(scope="module")
def gold_runs(checkout) -> dict[str, Tau2Result]:
    return {d: run_taubench(checkout, d, "gold", "scripted", concurrency=2) for d in PICKS}


@pytest.fixture(scope="module")
def floor_runs(checkout) -> dict[str, Tau2Result]:
    return {d: run_taubench(checkout, d, DoNothingAgent(), "scripted", concurrency=2) for d in PICKS}


def test_gold_replay_scores_one_and_the_harness_agrees(gold_runs):
    for domain, result in gold_runs.items():
        n = len(PICKS[domain])
        assert result.status == SCORED and result.domain == f"taubench_{domain}", domain
        assert result.task_ids == [str(i) for i in range(n)]
        assert [r.reward for r in result.records] == [1.0] * n, domain
        assert result.score.rate == 1.0 and result.agreement == (n, n)
        assert set(result.score.terminations) == {"user_stop"}
        assert all(r.error is None for r in result.records), domain
        assert "tau-bench v1" in result.note
    # tau2's own retail task 12 has a gold return that its tool refuses (not the original payment
    # method); the gold state is built the same way, so the replay still scores 1
    errors = {
        d: {r.task_id: r.n_tool_errors for r in res.records if r.n_tool_errors}
        for d, res in gold_runs.items()
    }
    assert errors == {"retail": {_v1_id("retail", "12"): 1}, "airline": {}}
    assert "users.json: address.province renamed to state in" in gold_runs["airline"].note
    assert "users.json: user_id filled from the key in" in gold_runs["airline"].note


def test_do_nothing_floor_is_computed_below_one(floor_runs):
    for domain, result in floor_runs.items():
        n = len(PICKS[domain])
        assert result.status == SCORED and result.score.n == n
        assert result.score.rate < 1.0 and result.agreement == (n, n), domain
        assert sum(result.score.failures.values()) == n - result.score.successes
    # airline task 26 has no gold action, 13 only a transfer to a human, and neither anything to say:
    # the data stays as it was, so doing nothing scores 1 there, as it does in v1
    solved = {r.task_id for r in floor_runs["airline"].records if r.success}
    assert solved == {_v1_id("airline", "26"), _v1_id("airline", "13")}
    # retail task 12: the gold return is refused by tau2's tool (see above), leaving only a transfer
    assert {r.task_id for r in floor_runs["retail"].records if r.success} == {_v1_id("retail", "12")}


def test_outputs_rule_right_actions_without_the_output_score_zero(checkout):
    """v1: the data must match and each output must appear in a reply (lower-cased, commas removed)."""
    domain = "retail"
    task_id = _v1_id(domain, OUTPUT_TASK[domain])
    (task,) = [t for t in load_taubench(checkout, domain).tasks if t.id == task_id]
    assert task.evaluation_criteria.communicate_info == ["1093.34"]
    gold = [(a.name, dict(a.arguments)) for a in task.evaluation_criteria.actions]
    replies = {"Done.": 0.0, "The total is $1,093.34.": 1.0, "About 1093 dollars.": 0.0}
    for closing, reward in replies.items():
        backend = ScriptBackend(gold, closing=closing)
        (record,) = run_taubench(checkout, domain, backend, "scripted", task_ids=[int(task_id)]).records
        assert record.reward == reward and record.agrees, closing
        assert record.db_match is True and record.breakdown == {"DB": 1.0, "COMMUNICATE": reward}
        assert record.failure == (None if reward else MISSING_INFO)
    assert {n for n, _ in gold} <= backend.offered and "think" not in backend.offered


def test_wrong_final_data_scores_zero_even_with_the_output(checkout):
    domain = "airline"
    task_id = _v1_id(domain, OUTPUT_TASK[domain])
    (task,) = [t for t in load_taubench(checkout, domain).tasks if t.id == task_id]
    gold = [(a.name, dict(a.arguments)) for a in task.evaluation_criteria.actions]
    backend = ScriptBackend(gold[:-1], closing="You saved 23,553 dollars.")  # one flight change left undone
    (record,) = run_taubench(checkout, domain, backend, "scripted", task_ids=[task_id]).records
    assert record.reward == 0.0 and record.db_match is False and record.agrees
    assert record.breakdown == {"DB": 0.0, "COMMUNICATE": 1.0}


def test_without_a_user_it_says_it_needs_a_user_simulator(checkout):
    for domain in PICKS:
        result = run_taubench(checkout, domain, DoNothingAgent())
        assert result.status == NEEDS_USER and result.score is None and not result.records
        assert "needs a user-simulator endpoint" in result.note and result.task_ids
    with pytest.raises(ValueError, match="solo mode only"):
        run_taubench(checkout, "retail", "stop", "scripted")
    with pytest.raises(ValueError, match="task ids not in tau-bench retail/test"):
        run_taubench(checkout, "retail", "gold", "scripted", task_ids=[99])


def test_missing_data_says_where(checkout, tmp_path):
    absent = tmp_path / "no-checkout"
    with pytest.raises(TauBenchDataNotFound) as err:
        run_taubench(absent, "retail", "gold", "scripted")
    assert str(err.value) == f"data not found at {absent}" and isinstance(err.value, FileNotFoundError)
    partial = tmp_path / "partial"
    _write_checkout(partial, "retail")
    orders = partial / "tau_bench" / "envs" / "retail" / "data" / "orders.json"
    orders.unlink()
    with pytest.raises(TauBenchDataNotFound, match=f"^data not found at {orders}$"):
        load_taubench(partial, "retail")
    dev = checkout / "tau_bench" / "envs" / "airline" / "tasks_dev.py"
    with pytest.raises(TauBenchDataNotFound, match=f"^data not found at {dev}$"):
        sample_task_ids(checkout, "airline", "dev", 3)
    with pytest.raises(ValueError, match="unknown tau-bench domain"):
        load_taubench(checkout, "telecom")


def _tasks_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "tasks_test.py"
    path.write_text(body)
    return path


GOOD = 'Task(user_id="u", instruction="i", actions=[Action(name="calculate", kwargs={"x": 1})], outputs=[])'


def test_malformed_task_files_name_the_file_line_and_task(tmp_path):
    rest = "instruction='i', actions=[], outputs=[]"
    cases = {
        "TASKS = [\n    Task(user_id='u',\n": r"tasks_test.py:\d+: not valid Python",
        "TASKS = []\n": r"tasks_test.py:1: no Task\(\.\.\.\) literals",
        f"TASKS = [\n    {GOOD},\n    Task(user_id=make_id(), {rest}),\n]\n": (
            r"tasks_test.py:3: task 1: argument 'user_id' is not a literal: make_id\(\)"
        ),
        "TASKS = [Task(user_id='u', instruction='i', actions=[], outputs=O)]": r"task 0: argument 'outputs'",
        "TASKS = [Task(user_id='u', instruction='i', actions=[Action(name='x', kwargs=K)], outputs=[])]": (
            r"task 0: kwargs of action 'x' is not a literal: K"
        ),
        "TASKS = [Task(user_id='u', instruction='i', actions=[])]": r"task 0: Task\(...\) lacks \['outputs",
        f"TASKS = [Task('u', {rest})]": r"task 0: Task\(\.\.\.\) has positional",
        "TASKS = [Task(**spec)]": r"task 0: Task\(\.\.\.\) has a \*\*mapping",
    }
    for body, message in cases.items():
        path = _tasks_file(tmp_path, body)
        with pytest.raises(TauBenchFormatError, match=message):
            parse_tasks(path)
        assert str(path) in _error(path), body


def _error(path: Path) -> str:
    try:
        parse_tasks(path)
    except TauBenchFormatError as exc:
        return str(exc)
    raise AssertionError("no error")


def test_an_unknown_action_name_is_an_error_naming_the_task(checkout, tmp_path):
    root = tmp_path / "bad-action"
    _write_checkout(root, "retail")
    path = root / "tau_bench" / "envs" / "retail" / "tasks_test.py"
    text = path.read_text().replace("name='get_order_details'", "name='get_order_detail'", 1)
    path.write_text(text)
    with pytest.raises(
        TauBenchFormatError, match=r"tasks_test.py:\d+: task 0: unknown action 'get_order_detail'"
    ):
        load_taubench(root, "retail")


def test_task_files_are_parsed_never_imported(tmp_path):
    sentinel = tmp_path / "side-effect"
    body = (
        "import os\n"
        f"open({str(sentinel)!r}, 'w').write('ran')\n"
        f"os.system('touch {sentinel}')\n"
        "from tau_bench.types import Action, Task\n"
        f"TASKS_TEST = [\n    {GOOD},\n    Task(annotator='1', user_id='v', instruction='j', actions=[\n"
        "        Action(name='respond', kwargs={'content': 'hi'}),\n    ], outputs=['x']),\n]\n"
    )
    tasks = parse_tasks(_tasks_file(tmp_path, body))
    assert [(t.index, t.user_id, t.outputs, t.extra) for t in tasks] == [
        (0, "u", (), {}),
        (1, "v", ("x",), {"annotator": "1"}),
    ]
    assert not sentinel.exists() and "tau_bench" not in sys.modules
    # v1's `respond` changes no data and tau2 has no such tool: it is left out of the gold actions
    converted = [to_tau2_task(t, "retail", "test", tmp_path / "tasks_test.py") for t in tasks]
    assert [[a.name for a in t.evaluation_criteria.actions] for t in converted] == [["calculate"], []]


def test_v1_task_conversion_keeps_v1_reward_basis(checkout):
    suite = load_taubench(checkout, "airline")
    assert load_taubench(checkout, "airline") is suite  # unchanged files: cached, registered once
    by_id = {t.id: t for t in suite.tasks}
    empty = by_id[_v1_id("airline", "26")].evaluation_criteria
    assert empty.actions == [] and empty.communicate_info == []  # [] not None: the data is still compared
    assert [b.value for b in empty.reward_basis] == ["DB", "COMMUNICATE"]
    assert by_id[_v1_id("airline", "18")].evaluation_criteria.communicate_info == ["23553"]
    assert suite.policy.startswith("# Airline Agent Policy")
    from tau2.domains.airline.data_model import FlightDB
    from tau2.domains.airline.utils import AIRLINE_DB_PATH

    users = suite.make_environment().tools.db.users
    assert users and users == {u: FlightDB.load(AIRLINE_DB_PATH).users[u] for u in users}  # province -> state
    with pytest.raises(ValueError, match="no solo mode"):
        suite.make_environment(solo_mode=True)


def test_data_tau2_cannot_hold_is_an_error_naming_file_and_field(tmp_path):
    files = {t: tmp_path / f"{t}.json" for t in ("orders", "products", "users")}
    user = {
        "name": {"first_name": "A", "last_name": "B"},
        "address": {
            "address1": "1 St",
            "address2": "",
            "city": "C",
            "country": "USA",
            "state": "CA",
            "zip": "1",
        },
        "email": "a@b.c",
        "payment_methods": {"paypal_1": {"source": "paypal", "id": "paypal_1"}},
        "orders": [],
    }
    product = {
        "name": "Mug",
        "variants": {"111": {"options": {"color": "red"}, "available": True, "price": 3}},
    }

    def convert(**changes: Any) -> tuple[str, list[str]]:
        tables = {
            "orders": {},
            "products": {"222": json.loads(json.dumps(product))},
            "users": {"a_b_1": dict(user)},
        }
        tables["users"]["a_b_1"].update(changes)
        return to_tau2_db_json("retail", tables, files)

    db_json, notes = convert()
    db = json.loads(db_json)
    assert (
        db["users"]["a_b_1"]["user_id"] == "a_b_1"
        and db["products"]["222"]["variants"]["111"]["item_id"] == "111"
    )
    assert notes == [
        "products.json: product_id filled from the key in 1 records",
        "users.json: user_id filled from the key in 1 records",
        "products.json: variants' item_id filled from the key in 1 variants",
    ]
    with pytest.raises(TauBenchDataError, match=rf"has no field for {files['users']}: a_b_1\.loyalty_tier"):
        convert(loyalty_tier="gold")
    with pytest.raises(
        TauBenchDataError, match=rf"{files['users']}: a_b_1\.email: Input should be a valid string"
    ):
        convert(email=7)
    with pytest.raises(TauBenchDataError, match=r"record 'a_b_1' has user_id='someone_else', not its key"):
        convert(user_id="someone_else")


def test_sample_task_ids_and_tool_schemas(checkout):
    ids = sample_task_ids(checkout, "retail", "test", 3, seed=1)
    assert (
        len(ids) == 3
        and ids == sorted(ids, key=int)
        and ids == sample_task_ids(checkout, "retail", "test", 3, seed=1)
    )
    assert sample_task_ids(checkout, "airline", "test", 50) == [str(i) for i in range(len(PICKS["airline"]))]
    for domain in PICKS:
        schemas = taubench_tool_schemas(checkout, domain)
        names = {s["function"]["name"] for s in schemas}
        assert all(s["type"] == "function" and "parameters" in s["function"] for s in schemas)
        gold = {a.name for t in load_taubench(checkout, domain).tasks for a in t.evaluation_criteria.actions}
        assert gold <= names and "transfer_to_human_agents" in names
    with pytest.raises(TauBenchDataNotFound):
        taubench_tool_schemas(checkout / "elsewhere", "retail")


def test_contamination_sources_read_both_checkouts(checkout, tmp_path):
    """The contamination report's benchmark tools: tau2's, tau-bench's from this checkout, ACEBench's from
    the hand-written fixture; a missing checkout is named with its reason instead."""
    from evals.benchmark_tools import benchmark_tools

    acebench = Path(__file__).parent / "fixtures" / "acebench"
    tools, missing = benchmark_tools(checkout, acebench)
    labels = {t.benchmark for t in tools}
    assert {"tau2_retail", "tau2_airline", "tau2_telecom", "tau_retail", "tau_airline", "acebench"} == labels
    assert missing == {}
    _, missing = benchmark_tools(tmp_path / "no-tau-bench", tmp_path / "no-acebench")
    assert set(missing) == {"tau_retail", "tau_airline", "acebench"}
    assert all(reason.startswith("data not found at ") for reason in missing.values())
