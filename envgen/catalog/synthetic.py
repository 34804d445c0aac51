"""A seeded, realistic-shaped synthetic API catalog, for testing the pipeline at the paper's scale.

Real catalogs of 30,000 APIs cannot ship with the repository, yet the graph, domain and environment stages
must be measured (and regression-tested) at that size. `generate_catalog(n, seed)` composes `n` tools
from many small vendor APIs ("domains", ~13 tools each, so 30,000 tools make ~2,300 domains):

- every domain is an invented vendor (a pseudo-word brand, unique in the catalog) in one of two dozen
  industries; its 4 entities (a party such as a shipper, a resource such as a depot, a transaction
  such as a shipment, and a child record such as a parcel) are named `<brand>_<noun>` with keys
  `<brand>_<noun>_id`, so no key is shared between domains: `feeds` edges stay inside a domain, and
  TF-IDF finds the brand in every parameter text, which is what makes domains separable;
- the noise of real catalogs is kept: generic fields (`status`, `email`, `city`, `notes`, created dates,
  prices) and the industries' nouns recur across hundreds of domains, and same-industry vendors look alike
  apart from their brand. How much alike was tuned against `envgen.graph.tool_graph` (TF-IDF, cosine > 0.35,
  Louvain): generic fields come in several synonyms, vendors have their own attributes (`wifi_included`,
  `<brand>_tier`), and descriptions name the brand rather than repeating the entity (whose words are in the
  key already). Louvain at resolution 1 merges any two domains joined by a little cross weight once there
  are thousands of domains (its resolution limit), so with fully generic account tools ("register: name,
  email, phone") vendors merged by the hundred; with this vocabulary a few percent of tools still have a
  cross-vendor `similar` edge, and the share of tools whose community is mostly their own vendor is 1.0 at
  150, 0.96 at 1,000 and 30,000 and 0.88 at 10,000 (benchmarks/environment_scale.py prints it as `purity`);
- tools follow the README's conventions (leading verbs from `envgen.environment.schema`, returned object's
  first `*_id` is its key, single-value `status` enums on writes), so every generated tool is programmable
  and its probe runs: reads by id, by email and by attributes (searches with enum filters), inserts with
  references, status changes, field updates and deletes.

The catalog is clean on purpose: every spec passes `validate_spec`. Malformed-spec handling is tested
by the importers' own fixtures; mixing broken specs in here would make "n tools in, k domains out"
harder to reason about in scale runs.

Deterministic for (n_apis, seed). Field schemas are shared (not copied) between the tools of a domain
to keep 30,000 specs light; treat them as read-only, as every stage does.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from importlib import resources
from typing import Any

from envgen.catalog.spec import ToolSpec, key_prefix

SOURCE_FORMAT = "synthetic"
MIN_TOOLS, MAX_TOOLS, MEAN_TOOLS = 9, 18, 13


@dataclass(frozen=True)
class Industry:
    """Nouns an industry's vendors choose from; (noun, verb) pairs give the verb that creates the noun."""

    name: str
    parties: tuple[str, ...]
    resources: tuple[str, ...]
    deals: tuple[tuple[str, str], ...]
    children: tuple[tuple[str, str], ...]
    categories: tuple[str, ...]
    price: tuple[str, ...]  # the resource's money field
    amount: tuple[str, ...]  # the child record's money field


def _load_industries() -> tuple[Industry, ...]:
    """The industries' vocabulary, bundled as package data (`industries.json`): nouns are data, not code."""
    rows = json.loads((resources.files("envgen.catalog") / "industries.json").read_text(encoding="utf-8"))
    return tuple(
        Industry(
            name=r["name"],
            parties=tuple(r["parties"]),
            resources=tuple(r["resources"]),
            deals=tuple((noun, verb) for noun, verb in r["deals"]),
            children=tuple((noun, verb) for noun, verb in r["children"]),
            categories=tuple(r["categories"]),
            price=tuple(r["price"]),
            amount=tuple(r["amount"]),
        )
        for r in rows
    )


INDUSTRIES: tuple[Industry, ...] = _load_industries()

# Per-domain synonyms for the generic fields, so vendors of one industry do not look identical.
_CREATED = ("created_date", "created_on", "opened_on", "registration_date")
_WHEN = ("start_date", "scheduled_date", "service_date", "requested_date")
_QUANTITY = ("quantity", "guests", "seats", "count")
_NOTES = ("notes", "comment", "special_requests", "remarks")
_DETAILS = ("description", "details", "summary", "reason")
_CAPACITY = ("capacity", "seats", "max_guests", "stock")
_DEAL_STATES = (
    ("pending", "confirmed", "completed", "cancelled"),
    ("requested", "scheduled", "completed", "cancelled"),
    ("pending", "active", "closed", "cancelled"),
    ("booked", "in_progress", "fulfilled", "cancelled"),
)
_CHILD_STATES = (
    ("open", "in_review", "resolved"),
    ("submitted", "approved", "rejected"),
    ("received", "processing", "settled"),
    ("new", "accepted", "declined"),
)
_RESOURCE_STATES = (
    ("available", "booked", "maintenance"),
    ("active", "paused", "retired"),
    ("open", "full", "closed"),
)
_NAME = ("full_name", "name", "customer_name", "holder_name", "legal_name", "contact_name", "account_name")
_EMAIL = ("email", "email_address", "contact_email", "login_email", "mail_address", "notification_email")
_PHONE = ("phone", "phone_number", "mobile_phone", "contact_phone", "telephone", "cell_phone")
_CITY = ("city", "home_city", "location", "base_city", "locality", "municipality", "region_city")
_LABEL = ("display_name", "title", "label", "listing_name", "headline", "public_title", "short_title")
_PARTY_EXTRAS = ("preferred_language", "date_of_birth", "country", "marketing_opt_in")
# Vendor-specific attributes, `<modifier>_<head>`: the head gives the type (and seeded values by name).
_MODIFIERS = (
    "carbon", "comfort", "noise", "safety", "access", "eco", "priority", "risk", "quality", "warranty",
    "cleaning", "wifi", "pet", "smoking", "luggage", "support", "setup", "deposit", "peak", "weekend",
    "night", "group", "student", "senior", "promo", "referral", "inspection", "compliance", "audit",
    "permit", "shift", "fuel", "battery", "storage", "cooling", "heating", "hygiene", "privacy", "escort",
    "transfer", "locker", "shuttle", "courier", "express", "loyalty", "accessibility", "catering",
    "equipment", "training", "insurance", "security", "maintenance", "packaging", "recycling", "parking",
)  # fmt: skip
_HEADS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("score", "integer", ()),
    ("level", "string", ("low", "medium", "high")),
    ("rating", "number", ()),
    ("fee", "number", ()),
    ("policy", "string", ("none", "standard", "strict")),
    ("code", "string", ()),
    ("included", "boolean", ()),
    ("class", "string", ("a", "b", "c")),
    ("allowance", "integer", ()),
    ("surcharge", "number", ()),
)
_BADGES = ("verified", "plus", "select", "certified", "preferred", "approved")
_TIERS = ("standard", "silver", "gold", "platinum")
_LANGUAGES = ("en", "es", "fr", "de", "it", "pt")

# Pseudo-word brands: onset + vowel (+ coda), two or three syllables; a million-odd possibilities.
_ONSETS = (
    "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
    "br", "cr", "dr", "fl", "gr", "kl", "pr", "st", "tr", "vr", "zh",
)  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
_CODAS = ("", "", "", "n", "r", "x", "l", "s", "m")


def _vocabulary() -> frozenset[str]:
    """Words a brand must not be: stop words (TF-IDF would drop the brand) and catalog vocabulary."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    words: set[str] = set(ENGLISH_STOP_WORDS)
    for ind in INDUSTRIES:
        for item in (ind.name, *ind.parties, *ind.resources, *ind.categories, *ind.price, *ind.amount):
            words.update(item.split("_"))
        for noun, verb in (*ind.deals, *ind.children):
            words.update(noun.split("_"))
            words.add(verb)
    return frozenset(words)


def _brand(rng: random.Random, taken: set[str], banned: frozenset[str]) -> str:
    while True:
        word = "".join(
            rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(rng.choice((2, 3)))
        )
        if 5 <= len(word) <= 12 and word not in taken and word not in banned:
            taken.add(word)
            return word


def plural(noun: str) -> str:
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def domain_sizes(n_apis: int, rng: random.Random) -> list[int]:
    """Tools per domain: ~MEAN_TOOLS each, within [MIN_TOOLS, MAX_TOOLS] (fewer when n is tiny), summing
    to exactly `n_apis`. Sizes are jittered by moving tools between random pairs of domains."""
    if n_apis <= 0:
        return []
    k = max(1, round(n_apis / MEAN_TOOLS))
    sizes = [n_apis // k + (1 if i < n_apis % k else 0) for i in range(k)]
    lo = min(MIN_TOOLS, min(sizes))
    for i in range(k):
        j, d = rng.randrange(k), rng.randint(0, 3)
        if i != j and sizes[i] - d >= lo and sizes[j] + d <= MAX_TOOLS:
            sizes[i] -= d
            sizes[j] += d
    return sizes


def _field(type_: str, description: str, enum: tuple[str, ...] | list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type_, "description": description}
    if enum:
        out["enum"] = list(enum)
    return out


def _obj(fields: dict[str, dict[str, Any]], names: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": {n: fields[n] for n in names}}


def _params(fields: dict[str, dict[str, Any]], names: list[str], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": {n: fields[n] for n in names}, "required": required}


class _Domain:
    """One vendor API: its brand, its four entities' fields, and the tools that can be offered."""

    def __init__(self, brand: str, industry: Industry, rng: random.Random, origin: str):
        self.brand, self.industry, self.origin = brand, industry, origin
        self.title = brand.capitalize()
        self.tag = f"{brand}_{industry.name}"
        party, resource, (deal, self.deal_verb), (child, self.child_verb) = self._nouns(rng)
        self.nouns = {"party": party, "resource": resource, "deal": deal, "child": child}
        self.key = {role: f"{brand}_{noun}_id" for role, noun in self.nouns.items()}
        self.created = rng.choice(_CREATED)
        self.when = rng.choice(_WHEN)
        self.quantity = rng.choice(_QUANTITY)
        self.notes = rng.choice(_NOTES)
        self.details = rng.choice(_DETAILS)
        self.capacity = rng.choice([c for c in _CAPACITY if c != self.quantity])
        self.price = rng.choice(industry.price)
        self.amount = rng.choice(industry.amount)
        self.deal_states = rng.choice(_DEAL_STATES)
        self.child_states = rng.choice(_CHILD_STATES)
        self.resource_states = rng.choice(_RESOURCE_STATES)
        self.categories = tuple(rng.sample(industry.categories, rng.randint(3, len(industry.categories))))
        self.name, self.email, self.phone = rng.choice(_NAME), rng.choice(_EMAIL), rng.choice(_PHONE)
        self.city, self.label = rng.choice(_CITY), rng.choice(_LABEL)
        # Loyalty programmes carry the vendor's name (`skymiles_number`, `bonvoy_tier`), which also keeps
        # account tools, otherwise all generic fields, apart from every other vendor's.
        self.loyalty = [f"{brand}_tier", f"{brand}_points"]
        self.party_extras = [*self.loyalty, rng.choice(_PARTY_EXTRAS)]
        self.badge = f"{brand}_{rng.choice(_BADGES)}"  # `superhost`, `prime_eligible`: a vendor's own label
        attrs = rng.sample([(m, h) for m in _MODIFIERS for h in range(len(_HEADS))], 5)
        named = [(f"{m}_{_HEADS[h][0]}", _HEADS[h]) for m, h in attrs]
        self.attributes = dict(named)
        self.resource_attrs, self.deal_attrs = [a for a, _ in named[:2]], [a for a, _ in named[2:4]]
        self.child_attr = named[4][0]
        self.fields = self._fields()
        self.current_status = {
            "resource": self.status("resource", self.resource_states, "current"),
            "deal": self.status("deal", self.deal_states, "current"),
            "child": self.status("child", self.child_states, "current"),
        }

    def _nouns(self, rng: random.Random) -> tuple[str, str, tuple[str, str], tuple[str, str]]:
        """Nouns for the four roles, their key prefixes distinct (so `XS-1001` names one table)."""
        ind = self.industry
        combos = [
            (p, r, d, c) for p in ind.parties for r in ind.resources for d in ind.deals for c in ind.children
        ]
        rng.shuffle(combos)
        for p, r, d, c in combos:
            nouns = {p, r, d[0], c[0]}
            prefixes = {key_prefix(f"{self.brand}_{n}") for n in nouns}
            if len(nouns) == 4 and len(prefixes) == 4:
                return p, r, d, c
        return combos[0]

    def words(self, role: str) -> str:
        return self.nouns[role].replace("_", " ")

    def _fields(self) -> dict[str, dict[str, Any]]:
        t, n = self.title, self.nouns
        f: dict[str, dict[str, Any]] = {}
        for role in n:
            # The entity's words are already in the key's name; repeating them here (or an example value
            # like `ZSX-1001`, whose letters recur across vendors) would tie same-industry vendors together.
            f[self.key[role]] = _field("string", f"Identifier assigned by {t}.")
        # Generic fields are described in the vendor's words (its brand), not the entity's: documentation
        # says "Zorvik loyalty tier", and it is the brand, unique per vendor, that tells vendors apart.
        f |= {
            self.name: _field("string", f"As registered with {t}."),
            self.email: _field("string", f"{t} sign-in."),
            self.phone: _field("string", f"{t} contact, international format."),
            self.city: _field("string", f"As listed on {t}."),
            f"{self.brand}_tier": _field("string", f"{t} loyalty tier.", _TIERS),
            "preferred_language": _field("string", f"{t} language, ISO 639-1.", _LANGUAGES),
            "date_of_birth": _field("string", f"On the {t} account, YYYY-MM-DD."),
            "country": _field("string", f"Residence on {t}."),
            "marketing_opt_in": _field("boolean", f"Whether {t} newsletters are accepted."),
            f"{self.brand}_points": _field("integer", f"{t} reward points held."),
            self.created: _field("string", f"Date the {t} record was created, YYYY-MM-DD."),
            self.label: _field("string", f"Name shown on {t}."),
            "category": _field("string", f"{t} category.", self.categories),
            self.price: _field("number", f"{t} {self.price.replace('_', ' ')} in USD."),
            "rating": _field("number", f"{t} reviews, 1 to 5."),
            self.capacity: _field("integer", f"Most units {t} allows at once."),
            self.when: _field("string", f"Date {t} holds it for, YYYY-MM-DD."),
            self.quantity: _field("integer", f"Units booked with {t}."),
            "total_price": _field("number", f"Total {t} charges in USD."),
            "cancellation_reason": _field("string", f"Why it was cancelled on {t}, if it was."),
            self.notes: _field("string", f"Free-text notes for {t} staff."),
            self.details: _field("string", f"What it is about, in a sentence for {t}."),
            self.amount: _field("number", f"{t} {self.amount.replace('_', ' ')} in USD."),
            "deleted": _field("boolean", f"{t} confirmation."),
            self.badge: _field("boolean", f"Whether it carries the {t} {self.badge.split('_')[-1]} badge."),
        }
        for name, (_, type_, enum) in self.attributes.items():
            f[name] = _field(type_, f"{t} {name.replace('_', ' ')}.", enum)
        return f

    def status(self, role: str, values: tuple[str, ...] | list[str], what: str) -> dict[str, Any]:
        return _field("string", f"The {what} {self.title} status.", values)

    # -- the tools -------------------------------------------------------------------------------------

    def entity_fields(self, role: str) -> list[str]:
        k = self.key
        return {
            "party": [
                k["party"],
                self.name,
                self.email,
                self.phone,
                self.city,
                *self.party_extras,
                self.created,
            ],
            "resource": [
                k["resource"],
                self.label,
                "category",
                self.city,
                self.price,
                "rating",
                self.capacity,
                *self.resource_attrs,
                self.badge,
                "status",
            ],
            "deal": [
                k["deal"],
                k["party"],
                k["resource"],
                self.when,
                self.quantity,
                "total_price",
                "status",
                "cancellation_reason",
                self.notes,
                *self.deal_attrs,
                self.created,
            ],
            "child": [
                k["child"],
                k["deal"],
                self.details,
                self.amount,
                self.child_attr,
                "status",
                self.created,
            ],
        }[role]

    def record(self, role: str, names: list[str] | None = None, status: dict[str, Any] | None = None) -> dict:
        """A returned object of `role` with these fields (all by default); `status` replaces its status."""
        status = status or self.current_status.get(role)
        fields = self.fields
        return {
            "type": "object",
            "properties": {
                n: status if n == "status" else fields[n] for n in names or self.entity_fields(role)
            },
        }

    def tools(self, count: int, rng: random.Random) -> list[ToolSpec]:
        """`count` tools: the nine core ones first (every entity read and created), then optional ones."""
        core = [
            self.get_party,
            self.search_resources,
            self.get_resource,
            self.create_deal,
            self.get_deal,
            self.list_party_deals,
            self.cancel_deal,
            self.create_child,
            self.get_child,
        ]
        optional = [
            self.register_party,
            self.update_party_contact,
            self.find_party_by_email,
            self.check_resource_availability,
            self.reschedule_deal,
            self.complete_deal,
            self.update_deal_notes,
            self.list_deal_children,
            self.remove_child,
        ]
        rng.shuffle(optional)
        return [make() for make in (core + optional)[:count]]

    def spec(
        self, name: str, description: str, role: str, params: dict[str, Any], returns: dict[str, Any]
    ) -> ToolSpec:
        return ToolSpec(
            name=name,
            description=description,
            parameters=params,
            returns=returns,
            source_format=SOURCE_FORMAT,
            source_origin=self.origin,
            tags=(self.tag, self.nouns[role]),
        )

    def keyed(
        self,
        role: str,
        name: str,
        description: str,
        args: tuple[str, ...] = (),
        returned: list[str] | None = None,
        status: dict[str, Any] | None = None,
    ) -> ToolSpec:
        """A tool acting on one `role` record named by its key; the key and every `args` are required.
        It returns the record (or only `returned`), with `status` as the returned status schema."""
        names = [self.key[role], *args]
        params = _params(self.fields, names, names)
        return self.spec(name, description, role, params, self.record(role, returned, status))

    def listing(
        self, parent: str, role: str, states: tuple[str, ...], name: str, description: str
    ) -> ToolSpec:
        """The `role` records of one `parent` record, optionally only those in one of `states`."""
        kp, w = self.key[parent], self.words(role)
        fields = {**self.fields, "status": self.status(role, states, "only this")}
        return self.spec(
            name,
            description,
            role,
            _params(fields, [kp, "status"], [kp]),
            {"type": "array", "description": f"The {plural(w)}.", "items": self.record(role)},
        )

    def get_party(self) -> ToolSpec:
        w, t = self.words("party"), self.title
        return self.keyed(
            "party",
            f"get_{self.brand}_{self.nouns['party']}_profile",
            f"Look up a {t} {w} by id and return their contact details. Fails if no {w} has that id.",
        )

    def register_party(self) -> ToolSpec:
        w, t = self.words("party"), self.title
        names = [self.name, self.email, self.phone, self.city, self.loyalty[0]]
        return self.spec(
            f"register_{self.brand}_{self.nouns['party']}",
            f"Create a new {t} {w} account and return it with its new id.",
            "party",
            _params(self.fields, names, names[:2]),
            self.record("party", [self.key["party"], *names]),
        )

    def update_party_contact(self) -> ToolSpec:
        w, t = self.words("party"), self.title
        return self.keyed(
            "party",
            f"update_{self.brand}_{self.nouns['party']}_contact",
            f"Change the email address and phone number on a {t} {w} account.",
            (self.email, self.phone),
            [self.key["party"], self.email, self.phone],
        )

    def find_party_by_email(self) -> ToolSpec:
        w, t = self.words("party"), self.title
        return self.spec(
            f"find_{self.brand}_{self.nouns['party']}_by_email",
            f"Find the {t} {w} registered with an email address, for callers who do not know their id.",
            "party",
            _params(self.fields, [self.email], [self.email]),
            self.record("party"),
        )

    def search_resources(self) -> ToolSpec:
        w, t = self.words("resource"), self.title
        fields = {**self.fields, "max_results": _field("integer", "At most this many results, default 20.")}
        return self.spec(
            f"search_{self.brand}_{plural(self.nouns['resource'])}",
            f"Search {t} {plural(w)} in a city, optionally of one category. Returns each {w}'s price, "
            "rating and status.",
            "resource",
            _params(fields, [self.city, "category", "max_results"], [self.city]),
            {"type": "array", "description": f"The matching {plural(w)}.", "items": self.record("resource")},
        )

    def get_resource(self) -> ToolSpec:
        w, t = self.words("resource"), self.title
        return self.keyed(
            "resource",
            f"get_{self.brand}_{self.nouns['resource']}_details",
            f"Return a {t} {w}'s details. Fails if no {w} has that id.",
        )

    def check_resource_availability(self) -> ToolSpec:
        w, t = self.words("resource"), self.title
        return self.keyed(
            "resource",
            f"check_{self.brand}_{self.nouns['resource']}_availability",
            f"Check whether a {t} {w} can be booked and how many it can take.",
            returned=[self.key["resource"], "status", self.capacity],
        )

    def create_deal(self) -> ToolSpec:
        kp, kr, w, t = self.key["party"], self.key["resource"], self.words("deal"), self.title
        initial = self.deal_states[0]
        names = [kp, kr, self.when, self.quantity, self.notes]
        status = self.status("deal", [initial], f"initial ({initial})")
        return self.spec(
            f"{self.deal_verb}_{self.brand}_{self.nouns['deal']}",
            f"Create a {t} {w} for a {self.words('party')} on a {self.words('resource')}. Fails if either "
            "does not exist.",
            "deal",
            _params(self.fields, names, names[:4]),
            self.record("deal", [self.key["deal"], *names, "status"], status),
        )

    def get_deal(self) -> ToolSpec:
        w, t = self.words("deal"), self.title
        return self.keyed(
            "deal",
            f"get_{self.brand}_{self.nouns['deal']}_details",
            f"Return a {t} {w} with its date, total and status. Fails if no {w} has that id.",
        )

    def list_party_deals(self) -> ToolSpec:
        w, t = self.words("deal"), self.title
        return self.listing(
            "party",
            "deal",
            self.deal_states,
            f"list_{self.brand}_{self.nouns['party']}_{plural(self.nouns['deal'])}",
            f"List a {t} {self.words('party')}'s {plural(w)}, optionally only those in one status.",
        )

    def cancel_deal(self) -> ToolSpec:
        k, w, t = self.key["deal"], self.words("deal"), self.title
        cancelled = self.deal_states[3]
        return self.keyed(
            "deal",
            f"cancel_{self.brand}_{self.nouns['deal']}",
            f"Cancel a {t} {w}, giving a reason. Fails if it is already cancelled.",
            ("cancellation_reason",),
            [k, "status", "cancellation_reason"],
            self.status("deal", [cancelled], "new"),
        )

    def reschedule_deal(self) -> ToolSpec:
        w, t = self.words("deal"), self.title
        return self.keyed(
            "deal",
            f"reschedule_{self.brand}_{self.nouns['deal']}",
            f"Move a {t} {w} to another date.",
            (self.when,),
            [self.key["deal"], self.when],
        )

    def complete_deal(self) -> ToolSpec:
        k, w, t = self.key["deal"], self.words("deal"), self.title
        done = self.deal_states[2]
        return self.keyed(
            "deal",
            f"complete_{self.brand}_{self.nouns['deal']}",
            f"Mark a {t} {w} as {done}. Fails if it already is.",
            returned=[k, "status"],
            status=self.status("deal", [done], "new"),
        )

    def update_deal_notes(self) -> ToolSpec:
        w, t = self.words("deal"), self.title
        return self.keyed(
            "deal",
            f"update_{self.brand}_{self.nouns['deal']}_{self.notes}",
            f"Replace the free-text notes on a {t} {w}.",
            (self.notes,),
            [self.key["deal"], self.notes],
        )

    def create_child(self) -> ToolSpec:
        kd, w, t = self.key["deal"], self.words("child"), self.title
        initial = self.child_states[0]
        names = [kd, self.details, self.amount, self.child_attr]
        return self.spec(
            f"{self.child_verb}_{self.brand}_{self.nouns['child']}",
            f"Add a {w} to a {t} {self.words('deal')}. Fails if the {self.words('deal')} does not exist.",
            "child",
            _params(self.fields, names, [kd, self.details]),
            self.record(
                "child", [self.key["child"], *names, "status"], self.status("child", [initial], "initial")
            ),
        )

    def get_child(self) -> ToolSpec:
        w, t = self.words("child"), self.title
        return self.keyed(
            "child",
            f"get_{self.brand}_{self.nouns['child']}",
            f"Return a {t} {w}. Fails if no {w} has that id.",
        )

    def list_deal_children(self) -> ToolSpec:
        w, t = self.words("child"), self.title
        return self.listing(
            "deal",
            "child",
            self.child_states,
            f"list_{self.brand}_{self.nouns['deal']}_{plural(self.nouns['child'])}",
            f"List the {plural(w)} of a {t} {self.words('deal')}, optionally only those in one status.",
        )

    def remove_child(self) -> ToolSpec:
        k, w, t = self.key["child"], self.words("child"), self.title
        return self.spec(
            f"remove_{self.brand}_{self.nouns['child']}",
            f"Delete a {t} {w}. Fails if no {w} has that id.",
            "child",
            _params(self.fields, [k], [k]),
            _obj(self.fields, [k, "deleted"]),
        )


def generate_catalog(n_apis: int, seed: int = 0) -> list[ToolSpec]:
    """`n_apis` valid, programmable tools from ~n/13 invented vendor domains; same (n, seed), same list.

    Each spec's tags are (domain tag `<brand>_<industry>`, entity noun), so a clustering can be scored
    against the domain each tool was generated in.
    """
    if n_apis < 0:
        raise ValueError(f"n_apis must be >= 0, got {n_apis}")
    rng = random.Random(f"agentscaler-synthetic:{seed}")
    origin = f"synthetic:seed={seed}"
    banned, taken = _vocabulary(), set()
    specs: list[ToolSpec] = []
    for size in domain_sizes(n_apis, rng):
        domain = _Domain(_brand(rng, taken, banned), rng.choice(INDUSTRIES), rng, origin)
        specs += domain.tools(size, rng)
    return specs
