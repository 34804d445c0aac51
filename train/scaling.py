"""The environment-scaling study's pure parts: nested, seeded subsets of the general domains.

Nested (every smaller subset lies inside every larger one) so the curve measures what adding domains
does, not which domains a draw happened to pick; seeded so a re-run draws the same subsets.
"""

from __future__ import annotations

import math
import random


def nested_subsets(domains: list[str], fractions: list[float], seed: int = 0) -> list[list[str]]:
    """One subset per distinct size, smallest first: the first ceil(f * n) domains (at least one) of one
    seeded shuffle, for each fraction f in (0, 1]."""
    if not domains:
        raise ValueError("no general domains to draw subsets from")
    bad = [f for f in fractions if not 0.0 < f <= 1.0]
    if bad or not fractions:
        raise ValueError(f"fractions must be a non-empty list of numbers in (0, 1], got {fractions}")
    order = sorted(domains)
    random.Random(seed).shuffle(order)
    sizes = sorted({max(1, math.ceil(f * len(order) - 1e-9)) for f in fractions})
    return [sorted(order[:n]) for n in sizes]
