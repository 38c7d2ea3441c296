"""The typical searches on a SQLite file, the embedded default: results and latency.

    .venv/bin/python bench/search/sqlite_timing.py [--images 50000] [--repeat 20]
        [--file /tmp/imagetag-search-50k.sqlite]

Builds the file with the real migrations and ``dataset``'s catalogue (the same seed as
``run.py``), unless it exists, then checks each typical query against
``SearchQuery.includes`` and times it through the adapter as ``ImageService.search``
calls it. Reuse one file to compare two versions of the adapter (run each from a
``git archive`` as README.md describes); the schema is the migrations' of the version
that built the file, so build it anew when the migrations differ. No ``ANALYZE``: the
service does not run it, so SQLite plans without statistics, as in a real deployment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

import dataset  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from workload import TYPICAL_QUERIES, rarest_full_page  # noqa: E402

from imagetag.adapters.sqla.engine import create_engine, session_factory, sqlite_url  # noqa: E402
from imagetag.adapters.sqla.migrate import upgrade_database  # noqa: E402
from imagetag.adapters.sqla.tables import Base  # noqa: E402
from imagetag.adapters.sqla.unit_of_work import SqlUnitOfWorkFactory  # noqa: E402
from imagetag.domain.images import Image  # noqa: E402
from imagetag.domain.search import MAX_PAGE_SIZE, SearchQuery  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per query")
    parser.add_argument("--file", type=Path, default=None, help="build it once, reuse it")
    args = parser.parse_args(argv)
    path = args.file or Path(f"/tmp/imagetag-search-{args.images // 1000}k.sqlite")
    if not path.exists():
        started = time.perf_counter()
        asyncio.run(upgrade_database(sqlite_url(path)))
        _load(path, dataset.generate(args.images))
        print(f"built {path} in {time.perf_counter() - started:.0f} s")
    asyncio.run(_measure(path, args.repeat))
    return 0


def _load(path: Path, catalogue: dataset.Catalogue) -> None:
    """Insert the catalogue through the models' column types, as the service writes."""
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        for name, columns in catalogue.tables().items():
            table = Base.metadata.tables[name]
            copied = {key: column for key, column in columns.items() if not key.startswith("_")}
            values = {key: dataset._python_values(column) for key, column in copied.items()}
            if "parameters" in values:  # JSON text in the catalogue, a dict to the model
                values["parameters"] = [json.loads(text) for text in values["parameters"]]
            names = list(values)
            rows = [
                dict(zip(names, row, strict=True)) for row in zip(*values.values(), strict=True)
            ]
            for start in range(0, len(rows), dataset.CHUNK_ROWS):
                connection.execute(sa.insert(table), rows[start : start + dataset.CHUNK_ROWS])
    engine.dispose()


async def _measure(path: Path, repeat: int) -> None:
    engine = create_engine(sqlite_url(path))
    unit_of_work = SqlUnitOfWorkFactory(session_factory(engine))

    async def search(query: SearchQuery) -> list[Image]:
        async with unit_of_work() as uow:
            return list(await uow.images.search(query, limit=query.limit + 1))

    try:
        picks = {
            parameter: await rarest_full_page(engine, parameter)
            for parameter in sorted({q.rarest for q in TYPICAL_QUERIES if q.rarest is not None})
        }
        everything: list[Image] = []
        while True:
            before = everything[-1].id if everything else None
            page = await search(SearchQuery(limit=MAX_PAGE_SIZE - 1, before_id=before))
            everything += page
            if len(page) < MAX_PAGE_SIZE:
                break
        print(
            f"{path}: {len(everything):,} live images; rarest names with a full page: {picks}; "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        queries: list[tuple[str, SearchQuery]] = []
        for typical in TYPICAL_QUERIES:
            query = typical.search_query(picks=picks)
            if typical.page > 1:
                first = await search(query)
                query = typical.search_query(before_id=first[query.limit - 1].id, picks=picks)
            queries.append((typical.label, query))
        samples: dict[str, list[float]] = {label: [] for label, _ in queries}
        results: dict[str, Any] = {}
        for label, query in queries:
            expected = [image.id for image in everything if query.includes(image)]
            found = [image.id for image in await search(query)]
            results[label] = (
                len(found) if found == expected[: query.limit + 1] else f"DIFFERS {len(found)}"
            )
        for _ in range(repeat):
            for label, query in queries:
                started = time.perf_counter()
                await search(query)
                samples[label].append((time.perf_counter() - started) * 1000)
    finally:
        await engine.dispose()
    print(f"{'query':<60} {'rows':>6} {'p50':>8} {'p95':>8}  (ms, {repeat} runs)")
    for label, values in samples.items():
        p95 = statistics.quantiles(values, n=100, method="inclusive")[94]
        print(
            f"{label[:60]:<60} {results[label]!s:>6} {statistics.median(values):>8.1f} {p95:>8.1f}"
        )
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
