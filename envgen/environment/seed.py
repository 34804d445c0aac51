"""Realistic, reproducible initial states: faker values chosen by column name, type and enum.

The same value generator fills new rows when tasks ask an agent to create or change something, so a task's
arguments look like the data already in the database.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import networkx as nx
from faker import Faker

from envgen.catalog.spec import snake_name
from envgen.environment.programs import Column, EnvironmentDoc, Table
from envgen.environment.runtime import db_value, quote

_INT_RANGES = {
    ("quantity", "count", "guests", "nights", "passengers", "seats", "stock"): (1, 9),
    ("age",): (18, 90),
    ("year",): (2015, 2026),
    ("minutes", "duration"): (5, 240),
    ("points", "miles"): (0, 50000),
    ("rating", "stars"): (1, 5),
    ("floor",): (1, 20),
}
_MONEY = (
    "price",
    "amount",
    "total",
    "balance",
    "fare",
    "fee",
    "cost",
    "limit",
    "salary",
    "rate",
    "charge",
    "deposit",
    "refund",
    "budget",
)


# Sums an order of magnitude above everyday prices (a salary, a house), checked before `_MONEY`.
_LARGE_MONEY = ("salary", "asking_price", "purchase_price", "offer_amount", "loan", "mortgage", "coverage")


def _pick(name: str, words: tuple[str, ...]) -> bool:
    return any(w in name for w in words)


def _string(column: str, fake: Faker) -> str | None:
    """A value for a text field of that name (or description), or None when no rule knows the name."""
    n = snake_name(column)
    if n.endswith("email") or "email" in n:
        return fake.email()
    if "phone" in n:
        return fake.numerify("+1-###-###-####")
    if _pick(n, ("full_name", "first_name", "last_name", "holder_name", "customer_name")) or n == "name":
        return fake.name()
    if "address" in n:
        return fake.street_address() + ", " + fake.city()
    if _pick(n, ("city", "origin", "destination", "location", "pickup", "dropoff")):
        return fake.city()
    if "country" in n:
        return fake.country()
    if _pick(n, ("birth", "dob")):
        return fake.date_between(dt.date(1950, 1, 1), dt.date(2006, 12, 31)).isoformat()
    if _pick(n, ("date", "_on")):
        return fake.date_between(dt.date(2025, 1, 1), dt.date(2026, 12, 31)).isoformat()
    if "time" in n:
        return f"{fake.random_int(6, 21):02d}:{fake.random_element(['00', '15', '30', '45'])}"
    if "currency" in n:
        return fake.currency_code()
    if _pick(n, ("username", "user_name", "handle", "screen_name")):
        return fake.user_name()
    if "isbn" in n:
        return fake.isbn13()
    if n == "slug":
        return fake.slug()
    if _pick(n, ("ticker", "stock_symbol")) or n == "symbol":
        return fake.random_element(["AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "IBM", "TSLA"])
    if _pick(n, ("coin", "crypto")):
        return fake.random_element(["bitcoin", "ethereum", "solana", "cardano", "dogecoin"])
    if _pick(n, ("url", "website", "link")):
        return fake.url()
    if "path" in n or "directory" in n or "folder" in n:
        return (
            "/"
            + "/".join(fake.words(2))
            + ("/" if "directory" in n or "folder" in n else f".{fake.file_extension()}")
        )
    if _pick(n, ("iban", "account_number", "card_number", "last4")):
        return fake.numerify("####") if "last4" in n else fake.bban()
    if _pick(n, ("company", "merchant", "restaurant", "hotel_name", "brand", "employer", "airline")):
        return fake.company()
    if _pick(n, ("description", "reason", "note", "comment", "message", "notes", "symptoms")):
        return fake.sentence(nb_words=6).rstrip(".")
    if _pick(n, ("code", "number", "plate", "sku")):
        return fake.bothify("??-####").upper()
    if _pick(n, ("title", "product", "item", "dish", "model", "plan_name", "specialty", "type", "category")):
        return fake.word().capitalize() + " " + fake.word()
    return None


def fake_value(col: Column, fake: Faker, rng: random.Random) -> Any:
    """A plausible value for a column, consistent with its type and enum, and with its JSON Schema where
    it has one (formats, ranges, what a list holds, a record's fields)."""
    if col.enum:
        return rng.choice(col.enum)
    if col.json_schema:
        return _from_schema(col.name, col.json_schema, fake, rng)
    return _by_name(col.name, col.type, fake, rng, col.description)


_FORMATS = {
    "date": lambda fake: fake.date_between(dt.date(2025, 1, 1), dt.date(2026, 12, 31)).isoformat(),
    "date-time": lambda fake: (
        fake.date_time_between(dt.datetime(2025, 1, 1), dt.datetime(2026, 12, 31))
        .replace(microsecond=0)
        .isoformat()
    ),
    "email": lambda fake: fake.email(),
    "uri": lambda fake: fake.url(),
    "url": lambda fake: fake.url(),
    "uuid": lambda fake: fake.uuid4(),
}


def _singular(name: str) -> str:
    """`mediaIds` -> `mediaId`, `attendees` -> `attendee`: an item is named like its list, minus the s."""
    return name[:-1] if name.endswith("s") and not name.endswith("ss") else name


def _from_schema(name: str, schema: dict[str, Any], fake: Faker, rng: random.Random) -> Any:
    """A value that satisfies a parameter's JSON Schema (as `json_schema.violation` checks it), with the
    name-based rules choosing what it looks like: one to three items per list, every declared field of a
    record, formats, and ranges (a value outside one is redrawn inside it)."""
    kind = schema.get("type", "string")
    if schema.get("enum"):
        return rng.choice(schema["enum"])
    if kind == "array":
        items = schema.get("items") or {"type": "string"}
        lo = schema.get("minItems", 1)
        n = max(lo, min(rng.randint(1, 3), schema.get("maxItems", 3)))
        if items.get("enum") and schema.get("uniqueItems"):
            return rng.sample(items["enum"], min(n, len(items["enum"])))
        return [_from_schema(_singular(name), items, fake, rng) for _ in range(n)]
    if kind == "object":
        return {k: _from_schema(k, v, fake, rng) for k, v in (schema.get("properties") or {}).items()}
    if kind == "string" and schema.get("format") in _FORMATS:
        return _FORMATS[schema["format"]](fake)
    value = _by_name(name, kind, fake, rng, schema.get("description", ""))
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if kind in ("integer", "number") and ((lo is not None and value < lo) or (hi is not None and value > hi)):
        lo = lo if lo is not None else (hi - 100 if hi is not None else 0)
        hi = hi if hi is not None else lo + 100
        value = rng.randint(int(lo), int(hi)) if kind == "integer" else round(rng.uniform(lo, hi), 2)
    if kind == "string" and "maxLength" in schema:
        value = value[: schema["maxLength"]]
    return value


def _by_name(column: str, kind: str, fake: Faker, rng: random.Random, description: str = "") -> Any:
    """What a field of that name and type usually holds (`email`, `price`, `start_date`, `guests`); a text
    field whose name says nothing (`q`, `base`) is read by its description ("City name": a city)."""
    if kind == "boolean":
        return rng.random() < 0.5
    name = snake_name(column)
    if kind == "integer":
        for words, (lo, hi) in _INT_RANGES.items():
            if _pick(name, words):
                return rng.randint(lo, hi)
        return rng.randint(1, 100)
    if kind == "number":
        if _pick(name, ("rating", "stars")):
            return round(rng.uniform(1, 5), 1)
        if _pick(name, ("weight", "_kg", "_gb", "hours")):
            return round(rng.uniform(1, 40), 1)
        if _pick(name, ("temperature", "setpoint", "celsius")):
            return round(rng.uniform(16, 26), 1)
        if _pick(name, ("percent", "pct")):
            return round(rng.uniform(0, 100), 1)
        if name in ("lat", "latitude") or name.endswith(("_lat", "latitude")):
            return round(rng.uniform(-60, 70), 4)
        if name in ("lon", "lng", "longitude") or name.endswith(("_lon", "_lng", "longitude")):
            return round(rng.uniform(-180, 180), 4)
        if _pick(name, _LARGE_MONEY):
            return round(rng.uniform(20_000, 900_000), -2)
        if _pick(name, _MONEY):
            return round(rng.uniform(5, 900), 2)
        return round(rng.uniform(1, 1000), 2)
    first_words = " ".join(description.split()[:4])  # "City name", "Base currency code"
    return _string(column, fake) or (first_words and _string(first_words, fake)) or fake.word()


def _unique(draw: Callable[[], Any], taken: set[Any], tries: int = 20) -> Any:
    """A drawn value not in `taken`: a natural key (a path, a username) must name one record."""
    value = draw()
    for _ in range(tries):
        if value not in taken:
            return value
        value = draw()
    n = 2
    while f"{value}-{n}" in taken:
        n += 1
    return f"{value}-{n}"


def seed_order(tables: list[Table]) -> list[Table]:
    """Referenced tables first, so every reference can point at an existing row (cycles broken by name)."""
    g = nx.DiGraph()
    g.add_nodes_from(t.name for t in tables)
    g.add_edges_from((c.references, t.name) for t in tables for c in t.columns if c.references)
    by_name = {t.name: t for t in tables}
    try:
        order = list(nx.lexicographical_topological_sort(g))
    except nx.NetworkXUnfeasible:
        order = sorted(by_name)
    return [by_name[n] for n in order]


@lru_cache(maxsize=1)
def _process_faker() -> Faker:
    return Faker()


def seeded_faker(seed: int) -> Faker:
    """This process's Faker, re-seeded. Building a Faker costs ~5 ms (it loads every provider), which was
    half the cost of building an environment when every probe made its own; re-seeding gives the same
    reproducible values. Callers must finish with it before the next call re-seeds it."""
    fake = _process_faker()
    fake.seed_instance(seed)
    return fake


def seed_database(conn: sqlite3.Connection, env: EnvironmentDoc) -> None:
    """Fill every table with `rows_per_table` rows; deterministic given the environment's seed."""
    fake = seeded_faker(env.seed)
    rng = random.Random(env.seed)
    keys: dict[str, list[str | int]] = {}
    for t in seed_order(env.tables):
        rows = []
        for i in range(env.rows_per_table):
            row = {}
            for c in t.columns:
                if c.name == t.key and t.natural_key:
                    row[c.name] = _unique(lambda c=c: fake_value(c, fake, rng), {r[t.key] for r in rows})
                elif c.name == t.key:
                    row[c.name] = t.key_value(1001 + i)
                elif c.references and keys.get(c.references):
                    row[c.name] = rng.choice(keys[c.references])
                else:
                    row[c.name] = fake_value(c, fake, rng)
            rows.append(row)
        keys[t.name] = [r[t.key] for r in rows]
        names = [c.name for c in t.columns]
        marks = ", ".join("?" * len(names))
        conn.executemany(
            f"INSERT INTO {quote(t.name)} ({', '.join(map(quote, names))}) VALUES ({marks})",
            [[db_value(c, r[c.name]) for c in t.columns] for r in rows],
        )
