"""tau-bench v1's JSON tables as tau2's `RetailDB` / `FlightDB`, with every difference made explicit.

tau2's retail and airline domains are ports of v1's, and their pydantic models hold v1's records with
a few differences, all of form rather than content. Those found in v1's public data, and what is done:

- Records are keyed by their id in both; tau2's models also require the id inside the record (retail
  `users[*].user_id`, `orders[*].order_id`, `products[*].product_id` and each variant's `item_id`;
  airline `users[*].user_id`, `flights[*].flight_number`, `reservations[*].reservation_id`). Where a v1
  record lacks it (v1's airline `users.json` does), it is filled from the key; where it disagrees with
  the key, that is an error.
- v1's airline user addresses say `province` where tau2's `Address` says `state`: renamed.
- Numbers keep their value (v1's integer gift-card amounts become tau2's floats).

Anything else tau2 cannot hold is an error naming the file and the field: a field tau2's model lacks
(pydantic would silently drop it, and a state comparison would then not see it), a missing required
field, a value of the wrong type. The result is the database as tau2's JSON, from which each
environment validates its own fresh copy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from evals.tau2.compat import load_tau2
from evals.taubench.layout import TauBenchDataError

load_tau2()

from tau2.domains.airline.data_model import FlightDB  # noqa: E402
from tau2.domains.retail.data_model import RetailDB  # noqa: E402

DB_MODELS: dict[str, type[BaseModel]] = {"retail": RetailDB, "airline": FlightDB}
ID_FIELDS: dict[str, dict[str, str]] = {
    "retail": {"orders": "order_id", "products": "product_id", "users": "user_id"},
    "airline": {"flights": "flight_number", "reservations": "reservation_id", "users": "user_id"},
}
SHOWN = 5  # how many offending fields an error lists


def _fill_id(record: dict[str, Any], field: str, key: str, where: str) -> bool:
    """Put the key in the record's id field; True when it was missing (a conversion to report)."""
    if field not in record:
        record[field] = key
        return True
    if record[field] != key:
        raise TauBenchDataError(f"{where}: record {key!r} has {field}={record[field]!r}, not its key")
    return False


def _records(table: Any, where: str) -> dict[str, dict[str, Any]]:
    if not isinstance(table, dict):
        raise TauBenchDataError(f"{where}: expected a JSON object keyed by id, found {type(table).__name__}")
    for key, record in table.items():
        if not isinstance(record, dict):
            raise TauBenchDataError(f"{where}: {key}: expected an object, found {type(record).__name__}")
    return table


def normalise(domain: str, tables: dict[str, Any], files: dict[str, Path]) -> list[str]:
    """Apply the documented fix-ups in place; returns a line per fix-up applied, for the result's note."""
    notes = []
    for table, field in ID_FIELDS[domain].items():
        records = _records(tables[table], str(files[table]))
        filled = sum(_fill_id(r, field, k, str(files[table])) for k, r in records.items())
        if filled:
            notes.append(f"{files[table].name}: {field} filled from the key in {filled} records")
    if domain == "retail":
        where = str(files["products"])
        filled = 0
        for pid, product in tables["products"].items():
            for vid, variant in _records(product.get("variants", {}), f"{where}: {pid}.variants").items():
                filled += _fill_id(variant, "item_id", vid, f"{where}: {pid}.variants")
        if filled:
            notes.append(f"products.json: variants' item_id filled from the key in {filled} variants")
    if domain == "airline":
        renamed = 0
        for uid, user in tables["users"].items():
            address = user.get("address")
            if isinstance(address, dict) and "province" in address:
                if "state" in address:
                    raise TauBenchDataError(f"{files['users']}: {uid}.address has both province and state")
                address["state"] = address.pop("province")
                renamed += 1
        if renamed:
            notes.append(f"users.json: address.province renamed to state in {renamed} records")
    return notes


def _dropped(given: Any, kept: Any, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Paths of keys present in `given` (the input) and absent from `kept` (the model's dump)."""
    if isinstance(given, dict) and isinstance(kept, dict):
        for key, value in given.items():
            if key not in kept:
                yield (*path, str(key))
            else:
                yield from _dropped(value, kept[key], (*path, str(key)))
    elif isinstance(given, list) and isinstance(kept, list):
        for i, (a, b) in enumerate(zip(given, kept, strict=False)):
            yield from _dropped(a, b, (*path, str(i)))


def _where(path: tuple[Any, ...], files: dict[str, Path]) -> str:
    """`<file>: <record>.<field>...` for a path that starts with the table name."""
    table, *rest = [str(p) for p in path]
    return f"{files.get(table, table)}: {'.'.join(rest) or '(the table)'}"


def to_tau2_db_json(domain: str, tables: dict[str, Any], files: dict[str, Path]) -> tuple[str, list[str]]:
    """v1's tables (parsed JSON, modified in place by the fix-ups) as tau2's database JSON, and the notes
    saying which fix-ups were applied. Raises `TauBenchDataError` naming the file and field otherwise."""
    notes = normalise(domain, tables, files)
    model = DB_MODELS[domain]
    try:
        db = model.model_validate(tables)
    except ValidationError as exc:
        errors = exc.errors()
        shown = "; ".join(f"{_where(e['loc'], files)}: {e['msg']}" for e in errors[:SHOWN])
        more = f" (and {len(errors) - SHOWN} more)" if len(errors) > SHOWN else ""
        raise TauBenchDataError(f"tau2's {model.__name__} cannot hold this data: {shown}{more}") from None
    dropped = list(_dropped(tables, db.model_dump(), ()))
    if dropped:
        shown = "; ".join(_where(p, files) for p in dropped[:SHOWN])
        more = f" (and {len(dropped) - SHOWN} more)" if len(dropped) > SHOWN else ""
        raise TauBenchDataError(
            f"tau2's {model.__name__} has no field for {shown}{more}: it would be dropped silently, "
            "so the final-state comparison would not see it"
        )
    return db.model_dump_json(), notes


def load_tables(files: dict[str, Path], contents: dict[Path, bytes] | None = None) -> dict[str, Any]:
    """The JSON files (or their already-read `contents`), parsed; a file that is not JSON is an error
    naming it and the position."""
    tables = {}
    for table, path in files.items():
        try:
            tables[table] = json.loads(contents[path] if contents and path in contents else path.read_bytes())
        except json.JSONDecodeError as exc:
            raise TauBenchDataError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    return tables
