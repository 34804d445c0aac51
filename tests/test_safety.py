"""Safety properties, and fuzzing of the three places untrusted text enters: spec importers, the operation
language interpreter (tool arguments from a model), and the tool-call parser (covered with hypothesis in
test_toolcall_parse.py). Budgets are bounded so the suite stays in minutes on 2 cores."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agentscaler_assets.experience_assets import FunnelSettings, SftConfig, TrajectoryConfig
from agentscaler_assets.resources import LanguageModels, StorageRoot, TrainingSettings
from envgen.catalog.loaders import load_paths
from envgen.catalog.spec import NAME_RE, ToolSpec, validate_spec
from envgen.environment.runtime import Episode
from envgen.graph.tool_graph import domain_label
from envgen.llm.backends import OpenAIChatBackend

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("envgen", "train", "evals", "agentscaler_assets")


def _dangerous(node: ast.Call) -> str | None:
    """The name of a call that could run or unpickle foreign data, or None."""
    fn = node.func
    if isinstance(fn, ast.Name) and fn.id in ("eval", "exec", "compile", "__import__"):
        return fn.id
    if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name):
        owner, name = fn.value.id, fn.attr
        if owner == "builtins" and name in ("eval", "exec", "compile"):
            return f"builtins.{name}"
        if owner in ("pickle", "marshal", "dill") or (owner == "yaml" and name in ("load", "unsafe_load")):
            return f"{owner}.{name}"
    if any(k.arg == "shell" for k in node.keywords):
        return "shell="
    return None


def test_no_code_from_specs_or_models_is_ever_executed():
    """Nothing in the packages calls eval/exec/compile or unpickles; YAML is read with the safe loader;
    no subprocess goes through a shell."""
    offenders = [
        f"{path.relative_to(REPO)}:{node.lineno} {what}"
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and (what := _dangerous(node))
    ]
    assert not offenders


def test_api_keys_stay_out_of_reprs_and_metadata(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123")
    backend = OpenAIChatBackend(base_url="http://127.0.0.1:9/v1", model="m", api_key="sk-direct-secret-456")
    assert "secret" not in repr(backend)
    llm = LanguageModels(teacher="openai", user="openai", base_url="http://127.0.0.1:9/v1", model="m")
    shown = json.dumps(llm.describe()) + repr(llm.endpoint())
    assert "secret" not in shown and "sk-" not in shown


def test_episodes_never_touch_each_other_or_the_snapshot(airline):
    before = airline.path.read_bytes()
    first, second = Episode(airline.env, airline.path), Episode(airline.env, airline.path)
    try:
        start = second.state_hash()
        table = airline.env.tables[0]
        first.conn.execute(f'DELETE FROM "{table.name}"')  # the worst a buggy program could do
        assert first.state_hash() != start
        assert second.state_hash() == start
    finally:
        first.close()
        second.close()
    assert airline.path.read_bytes() == before


def test_storage_paths_never_escape_the_root(tmp_path):
    storage = StorageRoot(root=str(tmp_path))
    for bad in ("../../etc", "/etc/passwd", "a/../../b", "..", "retail/../../x", "UPPER", "-x", "a" * 80):
        with pytest.raises(ValueError):
            storage.domain_dir(bad)
    with pytest.raises(ValueError, match="escapes"):
        storage.path("..", "outside")
    assert storage.domain_dir("retail-2").is_relative_to(tmp_path)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_domain_labels_from_any_tag_are_safe_slugs(tag):
    spec = ToolSpec("get_x", "d", {"type": "object", "properties": {}}, {}, "test", "t", tags=(tag,))
    label = domain_label([spec])
    assert StorageRoot(root="/tmp/x").domain_dir(label.replace("_", "-"))  # a valid, contained slug


_KEYS = st.sampled_from(
    [
        "name",
        "description",
        "parameters",
        "returns",
        "type",
        "properties",
        "required",
        "enum",
        "items",
        "function",
        "tools",
        "format",
        "openapi",
        "paths",
        "operationId",
        "requestBody",
        "content",
        "schema",
        "$ref",
        "tool_name",
        "api_list",
        "required_parameters",
        "optional_parameters",
        "x",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["object", "string", "integer", "array", "dict", "#/components/schemas/A", "get_x"]),
)
_DOCS = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=5)),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_DOCS)
def test_importers_never_raise_and_admit_only_valid_specs(doc, tmp_path):
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(doc))
    load = load_paths([path])
    for spec in load.specs:
        validate_spec(spec)  # whatever got through is a spec the later stages can use
        assert NAME_RE.match(spec.name)
    for refusal in load.refused:
        assert refusal.reason


_ARG_VALUES = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=5), _SCALARS, max_size=3),
    st.text(alphabet="';\"-%_\\/*()=", max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_interpreter_answers_any_arguments_with_a_result(airline, data):
    """Any tool, any argument names and values a model could send: a result (ok or a structured error),
    never an exception; a failing call leaves the state exactly as it was."""
    tool = data.draw(st.sampled_from(airline.env.tools))
    names = list(tool["parameters"].get("properties", {})) + ["zz", "id"]
    args = data.draw(st.dictionaries(st.sampled_from(names), _ARG_VALUES, max_size=5))
    raw = data.draw(st.sampled_from([args, json.dumps(args), "not json", "[]", ""]))
    episode = Episode(airline.env, airline.path)
    try:
        before = episode.state_hash()
        result = episode.call(tool["name"], raw)
        assert isinstance(result.ok, bool) and isinstance(result.as_content(), str)
        if not result.ok:
            assert episode.state_hash() == before
    finally:
        episode.close()


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: TrajectoryConfig(rollouts_per_task=0), "rollouts_per_task"),
        (lambda: FunnelSettings(min_yield=1.5), "min_yield"),
        (lambda: SftConfig(validation_fraction=1.0), "validation_fraction"),
        (lambda: TrainingSettings(phase1_learning_rate=0.0), "phase1_learning_rate"),
        (lambda: TrainingSettings(per_device_train_batch_size=0), "per_device_train_batch_size"),
    ],
)
def test_invalid_config_is_refused_naming_the_field(make, field):
    with pytest.raises(ValidationError, match=field):
        make()
