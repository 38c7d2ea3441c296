"""Latency of typical searches on PostgreSQL at 10k and 1M images, and how it scales.

    .venv/bin/python bench/search/run.py [--quick] [--repeat 30] [--warmup 3] [--no-plans]

Starts a throwaway PostgreSQL cluster (``tests/support/postgres.py``), makes two databases,
builds both with the real migrations, bulk-loads a skewed catalogue (``dataset.py``) of
10k images into one and 1M (``--quick``: 100k) into the other, then runs each typical
search (``workload.py``) through the real adapter as ``ImageService.search`` does, both
sizes in turns, and prints p50/p95 per size and the ratio p95(large)/p95(10k), goal <= 3.
Then EXPLAIN (ANALYZE, BUFFERS) of each search at the large size. See README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(HERE.parent), str(REPO)]

import asyncpg  # noqa: E402
import dataset  # noqa: E402
import plans  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker  # noqa: E402
from workload import TYPICAL_QUERIES, TypicalQuery, rarest_full_page  # noqa: E402

from imagetag.adapters.sqla.engine import create_engine, session_factory  # noqa: E402
from imagetag.adapters.sqla.migrate import upgrade_database  # noqa: E402
from imagetag.adapters.sqla.unit_of_work import SqlUnitOfWorkFactory  # noqa: E402
from imagetag.domain.images import Image  # noqa: E402
from imagetag.domain.search import MAX_PAGE_SIZE, SearchQuery  # noqa: E402
from processes import run_benchmark  # noqa: E402
from tests.support.postgres import running_cluster  # noqa: E402

RATIO_GOAL = 3.0
SMALL = 10_000


@dataclass
class Database:
    label: str
    images: int
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    unit_of_work: SqlUnitOfWorkFactory
    raw: asyncpg.Connection  # runs the adapter's statement alone, without SQLAlchemy
    picks: dict[str, str]  # the rarest names with a full page here, by parameter

    async def search(self, query: SearchQuery) -> list[Image]:
        """What ``ImageService.search`` asks the repository: one more than the page."""
        async with self.unit_of_work() as uow:
            return list(await uow.images.search(query, limit=query.limit + 1))


@dataclass
class Timing:
    """One typical query's samples (ms), result sizes and plans, per database label.

    ``samples``: the adapter's search as the service calls it (session, SQL, mapping to
    domain images); ``sql_samples``: its SELECT alone on a plain asyncpg connection.
    """

    query: TypicalQuery
    samples: dict[str, list[float]] = field(default_factory=dict)
    sql_samples: dict[str, list[float]] = field(default_factory=dict)
    results: dict[str, int] = field(default_factory=dict)
    plan: dict[str, plans.PlanSummary] = field(default_factory=dict)
    generic_plans: dict[str, int] = field(default_factory=dict)
    generic: dict[str, plans.PlanSummary] = field(default_factory=dict)

    def p50(self, label: str) -> float:
        return statistics.median(self.samples[label])

    def p95(self, label: str) -> float:
        return percentile(self.samples[label], 95)

    def sql_p50(self, label: str) -> float:
        return statistics.median(self.sql_samples[label])

    def ratio(self, small: str, large: str) -> float:
        return self.p95(large) / self.p95(small)

    def p50_ratio(self, small: str, large: str) -> float:
        return self.p50(large) / self.p50(small)

    def blocks_ratio(self, small: str, large: str) -> float:
        return self.plan[large].buffers / self.plan[small].buffers

    def sql_ratio(self, small: str, large: str) -> float:
        return self.sql_p50(large) / self.sql_p50(small)


def percentile(samples: Sequence[float], pct: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def size_label(count: int) -> str:
    return f"{count // 1_000_000}M" if count % 1_000_000 == 0 else f"{count // 1000}k"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    subprocess.run([str(REPO / "scripts" / "ensure-postgres")], check=True)
    large = 100_000 if args.quick else args.images
    started = time.monotonic()
    with running_cluster() as admin_url:
        asyncio.run(_bench(admin_url, [SMALL, large], args))
    print(f"\ntotal {time.monotonic() - started:.0f} s; cluster stopped and removed")
    return 0


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1_000_000, help="the large size")
    parser.add_argument("--quick", action="store_true", help="100k images instead of 1M")
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per query and size")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before them")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--no-plans", action="store_true", help="skip the EXPLAIN listings")
    return parser.parse_args(argv)


async def _bench(admin_url: str, sizes: list[int], args: argparse.Namespace) -> None:
    admin = await asyncpg.connect(dataset.asyncpg_dsn(admin_url))
    try:
        # Index builds after the load; the rest is PostgreSQL's defaults.
        await admin.execute("ALTER SYSTEM SET maintenance_work_mem = '512MB'")
        await admin.execute("SELECT pg_reload_conf()")
        version = await admin.fetchval("SHOW server_version")
    finally:
        await admin.close()
    print(f"PostgreSQL {version}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    async with contextlib.AsyncExitStack() as stack:
        databases = [
            await stack.enter_async_context(_loaded_database(admin_url, count, args.seed))
            for count in sizes
        ]
        await _check_against_predicate(databases[0])
        # Loading left this process a big heap; a server's would be small. Keep the
        # collector from re-scanning it on every full collection while we time.
        gc.collect()
        gc.freeze()
        timings = await _measure(databases, args)
        _report(timings, databases, args)
        if not args.no_plans:
            await _print_plans(databases[-1], timings)


@contextlib.asynccontextmanager
async def _loaded_database(admin_url: str, count: int, seed: int) -> AsyncIterator[Database]:
    label = size_label(count)
    name = f"search_{label.lower()}"
    admin = await asyncpg.connect(dataset.asyncpg_dsn(admin_url))
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    await upgrade_database(url)
    started = time.perf_counter()
    catalogue = dataset.generate(count, seed)
    generated = time.perf_counter() - started
    report = await dataset.load(url, catalogue)
    copies = ", ".join(f"{table} {s:.1f} s" for table, s in report.copy_seconds.items())
    print(
        f"{label}: {dataset.describe(catalogue)}\n"
        f"  generated in {generated:.1f} s; COPY {copies}; indexes {report.index_seconds:.1f} s; "
        f"VACUUM ANALYZE {report.vacuum_seconds:.1f} s"
    )
    del catalogue
    engine = create_engine(url)
    sessions = session_factory(engine)
    # Custom plans, as the adapter's engine asks for (engine.py): 'sql' times the plan
    # the adapter gets, not a generic one that asyncpg's cached statement may fall to.
    raw = await asyncpg.connect(
        dataset.asyncpg_dsn(url), server_settings={"plan_cache_mode": "force_custom_plan"}
    )
    try:
        picks = {
            parameter: await rarest_full_page(engine, parameter)
            for parameter in sorted({q.rarest for q in TYPICAL_QUERIES if q.rarest is not None})
        }
        print(f"  rarest names with a full page: {picks}")
        yield Database(
            label, count, url, engine, sessions, SqlUnitOfWorkFactory(sessions), raw, picks
        )
    finally:
        await raw.close()
        await engine.dispose()


async def resolve(database: Database, query: TypicalQuery) -> SearchQuery:
    """The query for this database; a second page starts after this database's first."""
    first = query.search_query(picks=database.picks)
    if query.page == 1:
        return first
    found = await database.search(first)
    if len(found) <= first.limit:
        raise SystemExit(f"{query.label}: no second page on {database.label}")
    return query.search_query(before_id=found[first.limit - 1].id, picks=database.picks)


async def _check_against_predicate(database: Database) -> None:
    """On the small database, each typical query must return what ``SearchQuery.includes``
    accepts among all live images, newest first (read page by page, unfiltered)."""
    everything: list[Image] = []
    while True:
        before = everything[-1].id if everything else None
        page = await database.search(SearchQuery(limit=MAX_PAGE_SIZE - 1, before_id=before))
        everything += page
        if len(page) < MAX_PAGE_SIZE:
            break
    differing = []
    for typical in TYPICAL_QUERIES:
        query = await resolve(database, typical)
        expected = [image.id for image in everything if query.includes(image)][: query.limit + 1]
        found = [image.id for image in await database.search(query)]
        if found != expected:
            differing.append(f"{typical.label} ({len(found)} images, expected {len(expected)})")
    print(
        f"\n{database.label}: the adapter returns what SearchQuery.includes accepts among "
        f"{len(everything):,} live images for "
        + (
            "every typical query"
            if not differing
            else f"all but {len(differing)}: DIFFERS for {'; '.join(differing)}"
        )
    )


async def _measure(databases: list[Database], args: argparse.Namespace) -> list[Timing]:
    print(
        f"\ntiming {len(TYPICAL_QUERIES)} queries: {args.warmup} warm-up + {args.repeat} timed "
        f"runs each, sizes in turns; load average {os.getloadavg()[0]:.2f}"
    )
    timings = [Timing(typical) for typical in TYPICAL_QUERIES]
    queries: dict[tuple[int, str], SearchQuery] = {}
    statements: dict[tuple[int, str], plans.Statement] = {}
    for number, timing in enumerate(timings):
        for db in databases:
            key = (number, db.label)
            query = queries[key] = await resolve(db, timing.query)
            statements[key] = await plans.capture_select(
                db.engine, functools.partial(db.search, query)
            )
            for _ in range(args.warmup):
                found = await db.search(query)
                await plans.fetch(db.raw, statements[key])
            timing.results[db.label] = len(found)
            timing.samples[db.label], timing.sql_samples[db.label] = [], []
    # Every round runs every query on every database, so a burst of load from a
    # neighbour lands on a few samples of each query rather than on all of one.
    for _ in range(args.repeat):
        for number, timing in enumerate(timings):
            for db in databases:
                key = (number, db.label)
                started = time.perf_counter()
                await db.search(queries[key])
                searched = time.perf_counter()
                await plans.fetch(db.raw, statements[key])
                fetched = time.perf_counter()
                timing.samples[db.label].append((searched - started) * 1000)
                timing.sql_samples[db.label].append((fetched - searched) * 1000)
    for number, timing in enumerate(timings):
        for db in databases:
            statement = statements[(number, db.label)]
            timing.plan[db.label] = await plans.summarise(db.engine, statement)
            timing.generic_plans[db.label] = await plans.generic_plans(db.engine, statement)
            if timing.generic_plans[db.label]:
                timing.generic[db.label] = await plans.summarise(db.engine, statement, db.raw)
    print(f"load average after timing: {os.getloadavg()[0]:.2f}")
    return timings


def _cell(ratio: float) -> str:
    return f"{ratio:>5.1f}{' ' if ratio <= RATIO_GOAL else '!'}"


def _report(timings: list[Timing], databases: list[Database], args: argparse.Namespace) -> None:
    small, large = databases[0].label, databases[-1].label
    sizes = f"{small}/{large}"
    print(
        f"\n'search': SqlImageRepository.search(query, limit=101) as ImageService.search calls "
        f"it, {args.repeat} runs, ms; 'sql': its SELECT alone over asyncpg, p50;\n'rows': "
        f"images returned; 'blocks': shared buffers the plan touched (EXPLAIN ANALYZE); "
        f"'generic': runs on a generic plan at {large}; '!': ratio over {RATIO_GOAL:g}"
    )
    header = (
        f"{'query':<50} {'rows':>9} | {'search ' + small:>13} {'search ' + large:>13} "
        f"{'ratio':>6} {'ratio':>6} | {'sql p50':>13} {'ratio':>6} | {'blocks':>13} "
        f"{'ratio':>6} | {'generic':>7}"
    )
    print(header)
    print(
        f"{'':<50} {sizes:>9} | {'p50/p95':>13} {'p50/p95':>13} {'p50':>6} {'p95':>6} | "
        f"{sizes:>13} {'':>6} | {sizes:>13} {'':>6} |"
    )
    print("-" * len(header))
    for t in timings:
        print(
            f"{t.query.label[:50]:<50} {t.results[small]:>4}/{t.results[large]:<4} | "
            f"{t.p50(small):>6.1f}/{t.p95(small):<6.1f} {t.p50(large):>6.1f}/{t.p95(large):<6.1f} "
            f"{_cell(t.p50_ratio(small, large))} {_cell(t.ratio(small, large))} | "
            f"{t.sql_p50(small):>6.1f}/{t.sql_p50(large):<6.1f} "
            f"{_cell(t.sql_ratio(small, large))} | "
            f"{t.plan[small].buffers:>6}/{t.plan[large].buffers:<6} "
            f"{_cell(t.blocks_ratio(small, large))} | {t.generic_plans[large]:>7}"
        )
    for name, ratio_of in (
        ("search p95 (the goal)", Timing.ratio),
        ("search p50", Timing.p50_ratio),
        ("sql p50", Timing.sql_ratio),
        ("blocks", Timing.blocks_ratio),
    ):
        ratios = {t.query.label: ratio_of(t, small, large) for t in timings}
        worst = max(ratios, key=ratios.__getitem__)
        geometric = math.exp(statistics.fmean(math.log(r) for r in ratios.values()))
        missed = [label for label, ratio in ratios.items() if ratio > RATIO_GOAL]
        print(
            f"\n{name}, {large}/{small}: geometric mean {geometric:.2f}, median "
            f"{statistics.median(ratios.values()):.2f}, worst {ratios[worst]:.2f} ({worst}); "
            f"<= {RATIO_GOAL:g} for every query: "
            + ("yes" if not missed else f"NO, {len(missed)} over: {'; '.join(missed)}")
        )
    scans = [
        f"{t.query.label} ({kind}: {', '.join(summary.seq_scans)})"
        for t in timings
        for kind, summary in (("custom", t.plan.get(large)), ("generic", t.generic.get(large)))
        if summary is not None and summary.seq_scans
    ]
    print(f"\nSeq Scan on images or tags at {large}: " + ("; ".join(scans) if scans else "none"))
    for t in timings:
        if t.generic_plans[large]:
            generic, custom = t.generic[large], t.plan[large]
            print(
                f"{t.query.label}: {t.generic_plans[large]} runs on the generic plan at {large} "
                f"({generic.buffers} blocks, {generic.execution_ms:.1f} ms; the custom plan "
                f"{custom.buffers} blocks, {custom.execution_ms:.1f} ms)"
            )


async def _print_plans(database: Database, timings: list[Timing]) -> None:
    print(f"\nEXPLAIN (ANALYZE, BUFFERS) of each search at {database.label}")
    for timing in timings:
        query = await resolve(database, timing.query)
        statement = await plans.capture_select(
            database.engine, functools.partial(database.search, query)
        )
        kinds = [("custom plan", plans.explain(database.engine, statement, "ANALYZE, BUFFERS"))]
        if timing.generic_plans[database.label]:
            kinds.append(
                (
                    f"generic plan, used by {timing.generic_plans[database.label]} runs",
                    plans.explain_generic(database.raw, statement, "ANALYZE, BUFFERS"),
                )
            )
        for kind, explained in kinds:
            lines = await explained
            summary = (timing.generic if "generic" in kind else timing.plan)[database.label]
            flags = (
                f"SEQ SCAN on {', '.join(summary.seq_scans)}"
                if summary.seq_scans
                else "no seq scan"
            )
            print(
                f"\n--- {timing.query.label} ({kind}): {flags}; "
                f"indexes: {', '.join(summary.indexes)}"
            )
            print("\n".join(str(line) for line in lines))


if __name__ == "__main__":
    run_benchmark(main, on_interrupt="cluster stopped and removed")
