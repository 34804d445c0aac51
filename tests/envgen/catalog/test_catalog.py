"""Catalog loading: the bundled catalog, the accepted formats, and refusals that name the spec and why."""

import json
from collections import Counter

from envgen.catalog.loaders import load_bundled, load_paths, parse_document
from envgen.catalog.spec import frame_to_specs, specs_to_frame


def test_bundled_catalog_is_large_and_covers_the_vertical_domains(bundled_specs):
    load = load_bundled()
    assert not load.refused and load.duplicates == 0  # every bundled spec is valid and distinct
    tags = Counter(s.tags[0] for s in bundled_specs)
    assert len(bundled_specs) >= 400
    assert len(tags) >= 30 and min(tags.values()) >= 8
    assert {"retail", "airline", "telecom"} <= set(tags)
    assert all(s.returns.get("properties") or s.returns.get("items") for s in bundled_specs)
    # explicit inputs and outputs: every parameter and returned field is typed and described
    for s in bundled_specs:
        fields = {**s.properties, **s.returned_object.get("properties", {})}
        assert all(f.get("type") and f.get("description") for f in fields.values()), s.name


def test_bundled_entity_keys_belong_to_one_domain_each(bundled_specs):
    """A key shared by two domains would be a foreign key across them and fuse their graphs."""
    owners: dict[str, set[str]] = {}
    for s in bundled_specs:
        for f in [*s.properties, *s.returned_object.get("properties", {})]:
            if f.endswith("_id"):
                owners.setdefault(f, set()).add(s.tags[0])
    assert {k: v for k, v in owners.items() if len(v) > 1} == {}


def test_parquet_round_trip_keeps_schemas(bundled_specs):
    back = frame_to_specs(specs_to_frame(bundled_specs))
    assert back == bundled_specs
    # order matters: the first `*_id` a tool returns names the entity's key
    assert [list(b.returned_object["properties"]) for b in back] == [
        list(s.returned_object["properties"]) for s in bundled_specs
    ]


def test_openai_tool_list_and_plain_functions_are_accepted():
    fn = {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    specs, refused = parse_document([{"type": "function", "function": fn}], "mem")
    assert [s.name for s in specs] == ["get_weather"] and specs[0].source_format == "openai-tools"
    specs, refused = parse_document(fn, "mem")
    assert specs[0].source_format == "json-schema-functions" and not refused


def test_bad_specs_are_refused_with_a_reason_and_the_rest_loads(tmp_path):
    good = {"name": "ok_tool", "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}}
    docs = [
        good,
        {"description": "no name"},
        {"name": "nested", "parameters": {"type": "object", "properties": {"x": {"type": "any"}}}},
        {"name": "drop table", "parameters": {"type": "object", "properties": {}}},
        {"name": "req", "parameters": {"type": "object", "properties": {}, "required": ["ghost"]}},
    ]
    (tmp_path / "a.json").write_text(json.dumps(docs))
    (tmp_path / "b.json").write_bytes(b"\xff\xfe not json")
    (tmp_path / "c.json").write_text(json.dumps([good]))  # exact duplicate: dropped, not refused
    clash = {**good, "parameters": {"type": "object", "properties": {"y": {"type": "integer"}}}}
    (tmp_path / "d.json").write_text(json.dumps([clash]))
    load = load_paths([tmp_path])
    assert [s.name for s in load.specs] == ["ok_tool"]
    assert load.duplicates == 1
    reasons = {r.name: r.reason for r in load.refused}
    assert "without a name" in reasons["#1"]
    assert "unsupported type 'any'" in reasons["nested"]
    assert "name must match" in reasons["drop table"]
    assert "ghost" in reasons["req"]
    assert "unreadable JSON" in reasons["*"]
    assert "already used" in reasons["ok_tool"]
