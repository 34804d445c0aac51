"""Where a tau-bench v1 checkout keeps a domain's data, tasks and policy, and the errors for bad input.

The layout is that of the public repository (sierra-research/tau-bench):

    <root>/tau_bench/envs/<domain>/data/<table>.json   retail: orders, products, users
                                                        airline: flights, reservations, users
    <root>/tau_bench/envs/<domain>/tasks_<split>.py    Task(...) literals (test; retail also train, dev)
    <root>/tau_bench/envs/<domain>/wiki.md             the agent's policy

Nothing here imports or runs anything from the checkout: its `data/__init__.py`, `tools/` and task
modules are only ever read as text, so a checkout can be scored without trusting its code.
"""

from __future__ import annotations

from pathlib import Path

DOMAINS = ("retail", "airline")
TABLES: dict[str, tuple[str, ...]] = {
    "retail": ("orders", "products", "users"),
    "airline": ("flights", "reservations", "users"),
}


class TauBenchDataNotFound(FileNotFoundError):
    """A directory or file the layout needs is missing; the message is exactly `data not found at PATH`."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(f"data not found at {path}")
        self.path = Path(path)


class TauBenchFormatError(ValueError):
    """A task file tau-bench's layout promises cannot be read as `Task(...)` literals (the message names
    the file, the line and, where there is one, the task's index in the split)."""


class TauBenchDataError(ValueError):
    """A data file holds something tau2's database models cannot represent (the message names the file
    and the field)."""


def check_domain(domain: str) -> None:
    """Refuse a domain tau-bench v1 has no tau2 port for (v1 also ships telecom-like forks; tau2's
    retail and airline are the ports of v1's retail and airline)."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown tau-bench domain {domain!r}; supported: {list(DOMAINS)}")


def _existing(path: Path) -> Path:
    if not path.exists():
        raise TauBenchDataNotFound(path)
    return path


def domain_dir(root: Path | str, domain: str) -> Path:
    """`<root>/tau_bench/envs/<domain>`, checked from the root down so the error names the first missing
    piece (a mistyped root is reported as the root, not as a file deep inside it)."""
    check_domain(domain)
    path = Path(root).expanduser()
    _existing(path)
    for part in ("tau_bench", "envs", domain):
        path = _existing(path / part)
    return path


def table_files(root: Path | str, domain: str) -> dict[str, Path]:
    """The domain's data files by table name, each checked to exist."""
    data = _existing(domain_dir(root, domain) / "data")
    return {table: _existing(data / f"{table}.json") for table in TABLES[domain]}


def tasks_file(root: Path | str, domain: str, split: str) -> Path:
    """`tasks_<split>.py` of the domain (a split v1 does not ship for the domain is a missing file)."""
    if not split.isidentifier():
        raise ValueError(f"not a tau-bench split name: {split!r}")
    return _existing(domain_dir(root, domain) / f"tasks_{split}.py")


def wiki_file(root: Path | str, domain: str) -> Path:
    """The domain's `wiki.md`, v1's agent policy."""
    return _existing(domain_dir(root, domain) / "wiki.md")
