"""Every bundled domain materialises with every tool proven to run; seeding is reproducible."""

from dataclasses import replace

from envgen.environment.build import build_environment, load_environment, seeded_snapshot
from envgen.environment.runtime import Episode, state_hash


def test_every_bundled_domain_builds_and_every_tool_executes(bundled_specs, bundled_graph):
    _, _, domains, _ = bundled_graph
    by_name = {s.name: s for s in bundled_specs}
    for row in domains.iter_rows(named=True):
        env, _, report = build_environment(row["slug"], row["name"], [by_name[t] for t in row["tools"]])
        assert not report.refused, (row["slug"], report.refused)
        assert sorted(report.kept) == sorted(row["tools"])
        kinds = {p.kind for p in env.programs}
        assert kinds == {"read", "write"}, row["slug"]


def test_keys_and_references_are_derived(airline):
    res = airline.env.table("reservation")
    assert res.key == "reservation_id"
    refs = {c.name: c.references for c in res.columns if c.references}
    assert refs.get("flight_id") == "flight" and refs.get("passenger_id") == "passenger"


def test_seeding_is_deterministic_and_references_point_at_rows(airline, tmp_path):
    again = seeded_snapshot(airline.env)
    assert state_hash(again, airline.env) == state_hash(airline.snapshot, airline.env)
    flights = {r[0] for r in again.execute('SELECT flight_id FROM "flight"')}
    assert {r[0] for r in again.execute('SELECT flight_id FROM "reservation"')} <= flights


def test_saved_environment_loads_back(airline):
    env, db = load_environment(airline.path.parent)
    assert env == airline.env and db.exists()


def test_a_write_whose_key_is_optional_refuses_to_run_without_it(bundled_specs):
    """An omitted filter matches every row, so without this a keyless cancel would cancel everything."""
    hotel = [s for s in bundled_specs if s.tags[0] == "hotel"]
    cancel = next(s for s in hotel if s.name == "cancel_booking")
    params = {**cancel.parameters, "required": ["cancellation_reason"]}
    specs = [replace(s, parameters=params) if s is cancel else s for s in hotel]
    env, snap, report = build_environment("hotel", "hotel", specs)
    assert "cancel_booking" in report.kept
    ep = Episode(env, snap)
    before = ep.state_hash()
    res = ep.call("cancel_booking", {"cancellation_reason": "plans changed"})
    assert not res.ok and res.output["message"] == "booking_id is required"
    assert ep.state_hash() == before
