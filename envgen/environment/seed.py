"""Realistic, reproducible initial states: faker values chosen by column name, type and enum.

The same value generator fills new rows when tasks ask an agent to create or change something, so a task's
arguments look like the data already in the database.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import sqlite3
from functools import lru_cache
from typing import Any

import networkx as nx
from faker import Faker

from envgen.environment.programs import Column, EnvironmentDoc, Table
from envgen.environment.runtime import quote

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


def snake_name(name: str) -> str:
    """The column's name as the lower-case snake words the rules match (`startDate` -> `start_date`,
    `phoneNumber` -> `phone_number`, `Zip-Code` -> `zip_code`): real catalogs name fields every way."""
    return re.sub(r"[^a-z0-9]+", "_", re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()).strip("_")


def _string(col: Column, fake: Faker) -> str:
    n = snake_name(col.name)
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
    return fake.word()


def fake_value(col: Column, fake: Faker, rng: random.Random) -> Any:
    """A plausible value for a column, consistent with its type and enum."""
    if col.enum:
        return rng.choice(col.enum)
    if col.type == "boolean":
        return rng.random() < 0.5
    name = snake_name(col.name)
    if col.type == "integer":
        for words, (lo, hi) in _INT_RANGES.items():
            if _pick(name, words):
                return rng.randint(lo, hi)
        return rng.randint(1, 100)
    if col.type == "number":
        if _pick(name, ("rating", "stars")):
            return round(rng.uniform(1, 5), 1)
        if _pick(name, ("weight", "_kg", "_gb", "hours")):
            return round(rng.uniform(1, 40), 1)
        if _pick(name, ("temperature", "setpoint", "celsius")):
            return round(rng.uniform(16, 26), 1)
        if _pick(name, ("percent", "pct")):
            return round(rng.uniform(0, 100), 1)
        if _pick(name, _LARGE_MONEY):
            return round(rng.uniform(20_000, 900_000), -2)
        if _pick(name, _MONEY):
            return round(rng.uniform(5, 900), 2)
        return round(rng.uniform(1, 1000), 2)
    return _string(col, fake)


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
                if c.name == t.key:
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
            [[r[n] for n in names] for r in rows],
        )
