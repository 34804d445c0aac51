"""Build every domain's environment, in a process pool, keeping only small summaries in memory.

At the paper's scale (30,000 APIs, ~2,300 domains) building environments one by one is the slowest
stage, and it is embarrassingly parallel: each domain is built from its own specs and seed, so the
result does not depend on which process builds it or in which order. This module fans the domains
out over `workers` processes and collects, per domain, a `DomainBuild`: names and counts, plus the
environment document only when the caller asks for it (2,300 documents are ~100 MB; the summaries are
a few MB). The seeded snapshot is an in-memory SQLite connection, which cannot cross a process
boundary, so callers that need snapshots pass `out_dir` and each worker saves the domain with
`envgen.environment.build.save_environment` into `out_dir/<slug>`.

One domain's failure is recorded (with the error) and never stops the others. A worker process that
dies (out of memory, a crash in native code) takes its in-flight chunks with it; those domains are
retried one at a time in a fresh pool, so only the domain that kills a worker is recorded as failed.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from envgen.catalog.spec import ToolSpec
from envgen.environment.build import build_environment, save_environment
from envgen.environment.programs import EnvironmentDoc


@dataclass
class DomainBuild:
    """What building one domain gave; small and picklable, so thousands cross process boundaries cheaply.

    `seconds` is left out of equality: two builds of the same domain are equal whatever they took.
    """

    slug: str
    name: str
    n_tools: int
    kept: tuple[str, ...] = ()
    refused: dict[str, str] = field(default_factory=dict)  # tool -> reason
    tables: tuple[str, ...] = ()
    error: str | None = None  # set when the build raised: the domain has no environment
    folder: Path | None = None  # where it was saved, when an output folder was given
    env: EnvironmentDoc | None = None  # only when the caller asked to keep documents
    seconds: float = field(default=0.0, compare=False)

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class _Job:
    index: int  # position in the domains frame, so results come back in its order
    slug: str
    name: str
    specs: tuple[ToolSpec, ...]


@dataclass(frozen=True)
class _Options:
    seed: int
    rows_per_table: int
    probe_attempts: int
    out_dir: Path | None
    keep_docs: bool


def _build_one(job: _Job, opts: _Options) -> DomainBuild:
    """Build, optionally save, and summarise one domain; an exception becomes a failed summary."""
    start = time.perf_counter()
    try:
        env, snapshot, report = build_environment(
            job.slug,
            job.name,
            list(job.specs),
            seed=opts.seed,
            rows_per_table=opts.rows_per_table,
            probe_attempts=opts.probe_attempts,
        )
        try:
            folder = None
            if opts.out_dir is not None:
                folder = opts.out_dir / job.slug
                save_environment(env, snapshot, folder)
        finally:
            snapshot.close()
    except Exception as exc:  # any failure is this domain's, recorded, never the batch's
        return _failed(job, f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
    return DomainBuild(
        slug=job.slug,
        name=job.name,
        n_tools=len(job.specs),
        kept=tuple(report.kept),
        refused=dict(report.refused),
        tables=tuple(t.name for t in env.tables),
        folder=folder,
        env=env if opts.keep_docs else None,
        seconds=time.perf_counter() - start,
    )


def _failed(job: _Job, error: str, seconds: float = 0.0) -> DomainBuild:
    return DomainBuild(job.slug, job.name, len(job.specs), error=error, seconds=seconds)


def _build_chunk(jobs: list[_Job], opts: _Options) -> list[tuple[int, DomainBuild]]:
    """Worker entry point: a chunk of domains per task, so per-task overhead is paid once per chunk."""
    return [(job.index, _build_one(job, opts)) for job in jobs]


def _jobs(domains: pl.DataFrame, specs: Sequence[ToolSpec]) -> tuple[list[_Job], dict[int, DomainBuild]]:
    """One job per domain row; rows naming tools that are not in `specs` fail here, without a build."""
    by_name = {s.name: s for s in specs}
    jobs, failed = [], {}
    for i, row in enumerate(domains.select("slug", "name", "tools").iter_rows(named=True)):
        tools = list(row["tools"] or [])
        missing = [t for t in tools if t not in by_name]
        if missing:
            failed[i] = DomainBuild(row["slug"], row["name"], len(tools), error=f"unknown tools {missing}")
        else:
            jobs.append(_Job(i, row["slug"], row["name"], tuple(by_name[t] for t in tools)))
    return jobs, failed


def default_chunk_size(n_jobs: int, workers: int) -> int:
    """About 16 chunks per worker (so the last ones balance the load), at most 32 domains each."""
    return max(1, min(32, math.ceil(n_jobs / (workers * 16))))


def _drain(
    pool: ProcessPoolExecutor,
    source: deque[list[_Job]],
    limit: int,
    opts: _Options,
    done: Callable[[int, DomainBuild], None],
) -> list[list[_Job]]:
    """Run `source`'s chunks on `pool`, at most `limit` in flight (so queued specs do not pile up in
    memory). Returns [] when all ran, or, when a worker died, the chunks the broken pool took down."""
    in_flight: dict[Future, list[_Job]] = {}
    while source or in_flight:
        while source and len(in_flight) < limit:
            chunk = source.popleft()
            try:
                in_flight[pool.submit(_build_chunk, chunk, opts)] = chunk
            except BrokenProcessPool:
                source.appendleft(chunk)  # never ran; the chunks in flight are the suspects
                return list(in_flight.values())
        finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        lost = []
        for fut in finished:
            chunk = in_flight.pop(fut)
            try:
                results = fut.result()
            except BrokenProcessPool:
                lost.append(chunk)
                continue
            except Exception as exc:  # e.g. a spec that cannot be pickled: only this chunk's domains
                for job in chunk:
                    done(job.index, _failed(job, f"{type(exc).__name__}: {exc}"))
                continue
            for index, build in results:
                done(index, build)
        if lost:
            return lost + list(in_flight.values())
    return []


def _run_pool(
    jobs: list[_Job],
    opts: _Options,
    workers: int,
    chunk_size: int,
    mp_context: str,
    done: Callable[[int, DomainBuild], None],
) -> None:
    """Run jobs in chunks over `workers` processes. When a worker dies, the pool is replaced and every
    domain it took down becomes a suspect; suspects are retried one at a time in a pool of one, so the
    domain that kills a worker is the only one recorded as failed, and then the rest go on in parallel."""
    ctx = multiprocessing.get_context(mp_context)
    queue: deque[list[_Job]] = deque(jobs[i : i + chunk_size] for i in range(0, len(jobs), chunk_size))
    suspects: deque[list[_Job]] = deque()
    while queue or suspects:
        isolated = bool(suspects)
        with ProcessPoolExecutor(max_workers=1 if isolated else workers, mp_context=ctx) as pool:
            lost = _drain(pool, suspects if isolated else queue, 1 if isolated else 2 * workers, opts, done)
        for chunk in lost:
            if isolated:  # it ran alone, so it is what killed the worker
                done(chunk[0].index, _failed(chunk[0], "worker process died while building this domain"))
            else:
                suspects.extend([job] for job in chunk)


def build_environments(
    domains: pl.DataFrame,
    specs: Sequence[ToolSpec],
    seed: int = 0,
    workers: int = 2,
    rows_per_table: int = 12,
    *,
    out_dir: Path | None = None,
    keep_docs: bool = False,
    probe_attempts: int = 5,
    chunk_size: int | None = None,
    mp_context: str = "spawn",
    progress: Callable[[int, int], None] | None = None,
) -> list[DomainBuild]:
    """Every domain of `domains` (an `assign_domains` frame: slug, name, tools) built, one summary per row
    in the frame's order; the same summaries whatever `workers` is.

    `workers=1` builds in this process (no pool, easiest to debug). `out_dir` saves each environment to
    `out_dir/<slug>`; `keep_docs` keeps the documents in the summaries (memory grows with the domains).
    Pools are started with `spawn` by default: forking a parent that has run polars or other threaded
    code can deadlock the child. `progress(done, total)` is called after each domain.
    """
    opts = _Options(seed, rows_per_table, probe_attempts, Path(out_dir) if out_dir else None, keep_docs)
    jobs, results = _jobs(domains, specs)
    total = domains.height

    def done(index: int, build: DomainBuild) -> None:
        results[index] = build
        if progress is not None:
            progress(len(results), total)

    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            done(job.index, _build_one(job, opts))
    else:
        size = chunk_size or default_chunk_size(len(jobs), workers)
        _run_pool(jobs, opts, workers, size, mp_context, done)
    return [results[i] for i in range(total)]
