"""Catalog to environments at the paper's scale: generate -> tool graph -> domains -> environments.

For each size, a fresh subprocess generates a synthetic catalog of that many APIs
(`envgen.catalog.synthetic`), builds the tool graph (`build_graph`), splits it into domains
(`assign_domains`) and builds and probes every domain's environment in a process pool (`admit_domains`, as the
`domains` asset does). A
fresh process per size makes the peak RSS that size's own (ru_maxrss never goes down).

Printed per size: edges by kind; domains found, how many the generator made, and the largest; tools
dropped by the domain split; the share of all APIs kept (programmed and proven to run); failed domains;
community purity against the generator's domain tags; seconds per stage; peak RSS of the main process,
of the largest pool worker and of all of them together; and the 1-minute load average when the size
finished (above the worker count, other processes were sharing the CPUs, and times are inflated). Then
the growth between consecutive sizes: per stage, time ratio against size ratio and the exponent k in
time ~ size^k (k < 2 is sub-quadratic).

    .venv/bin/python benchmarks/environment_scale.py --sizes 1000 10000 30000 --workers 2
    .venv/bin/python benchmarks/environment_scale.py --sizes 30000 --profile graph   # cProfile a stage
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

STAGES = ("generate", "graph", "domains", "environments")


def _rss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


class MemorySampler:
    """Peak memory of this process and its pool workers, sampled every `interval` seconds.

    `getrusage(RUSAGE_CHILDREN).ru_maxrss` cannot be used for the workers: a spawned worker is forked
    from this process before it execs a fresh interpreter, and the fork's resident size (this whole
    process) counts towards the child's maximum. So the workers' own high-water marks (`VmHWM`) are read
    from /proc, and the sum of everyone's current RSS gives the simultaneous total.
    """

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.worker_peak_mib = 0.0
        self.total_peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _status_kib(pid: int, key: str) -> float:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(key):
                    return float(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass  # the worker exited between listing and reading
        return 0.0

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(self.interval):
            try:
                kids = [p.pid for p in me.children(recursive=True)]
            except psutil.Error:
                continue
            total = self._status_kib(me.pid, "VmRSS:") + sum(self._status_kib(k, "VmRSS:") for k in kids)
            hwm = max((self._status_kib(k, "VmHWM:") for k in kids), default=0.0)
            self.total_peak_mib = max(self.total_peak_mib, total / 1024)
            self.worker_peak_mib = max(self.worker_peak_mib, hwm / 1024)


def _purity(domains, tags: dict[str, str]) -> float:
    """Share of domain tools that belong to their domain's majority generator domain (1.0 = a clean split)."""
    total = majority = 0
    for tools in domains["tools"].to_list():
        majority += Counter(tags[t] for t in tools).most_common(1)[0][1]
        total += len(tools)
    return majority / total if total else 1.0


@contextmanager
def _stage(name: str, seconds: dict[str, float], rss_after: dict[str, float], profile: str | None):
    """Time a stage, note the main process's peak RSS after it, and cProfile it if asked."""
    prof = cProfile.Profile() if name == profile else None
    start = time.perf_counter()
    if prof:
        prof.enable()
    try:
        yield
    finally:
        if prof:
            prof.disable()
        seconds[name] = time.perf_counter() - start
        rss_after[name] = _rss_mib(resource.RUSAGE_SELF)
        if prof:
            out = io.StringIO()
            stats = pstats.Stats(prof, stream=out)
            stats.sort_stats("cumulative").print_stats(25)
            stats.sort_stats("tottime").print_stats(15)
            print(f"--- cProfile of stage {name!r} ---\n{out.getvalue()}", file=sys.stderr)


def measure(n: int, workers: int, seed: int, profile: str | None) -> dict:
    """One size, end to end, in this process; returns the row (run in a fresh child per size)."""
    from envgen.catalog.synthetic import generate_catalog
    from envgen.environment.admission import admit_domains
    from envgen.graph.tool_graph import GraphConfig, assign_domains, build_graph

    cfg = GraphConfig(seed=seed)
    seconds: dict[str, float] = {}
    rss_after: dict[str, float] = {}
    with MemorySampler() as sampler:
        with _stage("generate", seconds, rss_after, profile):
            specs = generate_catalog(n, seed)
        with _stage("graph", seconds, rss_after, profile):
            _, edges = build_graph(specs, cfg)
        with _stage("domains", seconds, rss_after, profile):
            domains, dropped = assign_domains(specs, edges, cfg)
        with _stage("environments", seconds, rss_after, profile):
            # what the `domains` asset runs: every domain built and probed, refused ones set apart
            admission = admit_domains(domains, specs, dropped, workers=workers, seed=seed)

    kinds = Counter(edges["kind"].to_list())
    kept = int(admission.domains["n_tools"].sum() or 0)
    tags = {s.name: s.tags[0] for s in specs}
    return {
        "apis": n,
        "similar": kinds.get("similar", 0),
        "feeds": kinds.get("feeds", 0),
        "domains": domains.height,
        "generated_domains": len(set(tags.values())),
        "largest_domain": max(domains["n_tools"].to_list(), default=0),
        "dropped": len(dropped),
        "kept": kept,
        "refused": admission.refused_tools.height,
        "failed_domains": admission.refused_domains.height,
        "kept_pct": 100 * kept / n if n else 0.0,
        "purity": _purity(domains, tags),
        "seconds": seconds,
        "total_s": sum(seconds.values()),
        "rss_main_mib": _rss_mib(resource.RUSAGE_SELF),
        "rss_worker_mib": sampler.worker_peak_mib,
        "rss_total_mib": max(sampler.total_peak_mib, _rss_mib(resource.RUSAGE_SELF)),
        "rss_after_stage_mib": rss_after,
        "workers": workers,
        "load": os.getloadavg()[0],
    }


def _child(n: int, workers: int, seed: int, profile: str | None, limit: float) -> dict | None:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(n), "--workers", str(workers)]
    cmd += ["--seed", str(seed)] + (["--profile", profile] if profile else [])
    try:
        done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=limit, check=True)
    except subprocess.TimeoutExpired:
        print(f"{n:>7} APIs: did not finish within {limit:.0f} s", file=sys.stderr)
        return None
    except subprocess.CalledProcessError as exc:
        print(f"{n:>7} APIs: child failed with exit status {exc.returncode}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


# (header, width, format, value): one printed column each.
COLUMNS: tuple[tuple[str, int, str, Callable[[dict], object]], ...] = (
    ("APIs", 7, "d", lambda r: r["apis"]),
    ("similar", 8, "d", lambda r: r["similar"]),
    ("feeds", 7, "d", lambda r: r["feeds"]),
    ("domains", 8, "d", lambda r: r["domains"]),
    ("(made)", 7, "d", lambda r: r["generated_domains"]),
    ("largest", 7, "d", lambda r: r["largest_domain"]),
    ("dropped", 7, "d", lambda r: r["dropped"]),
    ("kept%", 6, ".1f", lambda r: r["kept_pct"]),
    ("failed", 6, "d", lambda r: r["failed_domains"]),
    ("purity", 6, ".3f", lambda r: r["purity"]),
    ("gen s", 6, ".1f", lambda r: r["seconds"]["generate"]),
    ("graph s", 7, ".1f", lambda r: r["seconds"]["graph"]),
    ("dom s", 6, ".1f", lambda r: r["seconds"]["domains"]),
    ("envs s", 7, ".1f", lambda r: r["seconds"]["environments"]),
    ("total s", 7, ".1f", lambda r: r["total_s"]),
    ("main MiB", 8, ".0f", lambda r: r["rss_main_mib"]),
    ("worker MiB", 10, ".0f", lambda r: r["rss_worker_mib"]),
    ("total MiB", 9, ".0f", lambda r: r["rss_total_mib"]),
    ("load", 5, ".1f", lambda r: r["load"]),
)
HEADER = " ".join(f"{h:>{w}}" for h, w, _, _ in COLUMNS)


def _row(r: dict) -> str:
    return " ".join(f"{get(r):>{w}{fmt}}" for _, w, fmt, get in COLUMNS)


def _growth(rows: list[dict]) -> None:
    """Time ratio against size ratio per stage; k in time ~ size^k (graph: k < 2 means no all-pairs)."""
    if len(rows) < 2:
        return
    print("\ngrowth    size x   " + "  ".join(f"{st + ' x (k)':>20}" for st in (*STAGES, "total")))
    for a, b in zip(rows, rows[1:], strict=False):
        size = b["apis"] / a["apis"]
        cells = []
        for st in (*STAGES, "total"):
            ta = a["total_s"] if st == "total" else a["seconds"][st]
            tb = b["total_s"] if st == "total" else b["seconds"][st]
            ratio = tb / ta if ta > 0 else float("inf")
            k = math.log(ratio) / math.log(size) if ratio > 0 and size > 1 else float("nan")
            cells.append(f"{ratio:>12.1f} ({k:>4.2f})")
        print(f"{a['apis']:>6}->{b['apis']:<6} {size:>5.1f}   " + "  ".join(f"{c:>20}" for c in cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 30000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", choices=STAGES, help="cProfile this stage (printed to stderr)")
    parser.add_argument("--time-limit", type=float, default=1800.0, help="seconds per size before giving up")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.child, args.workers, args.seed, args.profile)))
        return 0
    print(f"workers {args.workers}, seed {args.seed}; one fresh process per size")
    print(HEADER)
    rows = []
    for n in args.sizes:
        r = _child(n, args.workers, args.seed, args.profile, args.time_limit)
        if r is not None:
            rows.append(r)
            print(_row(r), flush=True)
    _growth(rows)
    if rows:
        print("\npeak RSS (main process, MiB) after each stage:")
        for r in rows:
            print(f"{r['apis']:>7} " + "  ".join(f"{st} {r['rss_after_stage_mib'][st]:.0f}" for st in STAGES))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if len(rows) == len(args.sizes) else 1


if __name__ == "__main__":
    sys.exit(main())
