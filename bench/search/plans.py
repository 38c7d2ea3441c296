"""The adapter's search statement as PostgreSQL runs it: captured, explained, summarised."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

SCANNED_TABLES = ("images", "tags")


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: Any


@dataclass(frozen=True)
class PlanSummary:
    """What one ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` says about the work done."""

    execution_ms: float
    buffers: int  # shared blocks hit or read by the whole plan
    seq_scans: tuple[str, ...]  # tables of interest read in full
    indexes: tuple[str, ...]  # indexes scanned, in plan order, without repeats
    rows_filtered: int  # rows scans read and then threw away (filters, rechecks)


@contextlib.contextmanager
def captured_statements(engine: AsyncEngine) -> Iterator[list[Statement]]:
    """Every statement the engine sends while the block runs, as the driver gets it."""
    seen: list[Statement] = []

    def remember(
        _connection: Any, _cursor: Any, sql: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        seen.append(Statement(sql, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", remember)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", remember)


async def capture_select(engine: AsyncEngine, run: Callable[[], Awaitable[object]]) -> Statement:
    """The one SELECT that ``run`` sends (the repository's search)."""
    with captured_statements(engine) as seen:
        await run()
    selects = [s for s in seen if s.sql.lstrip().upper().startswith(("SELECT", "WITH"))]
    if len(selects) != 1:
        raise SystemExit(f"expected one SELECT per search, the adapter sent {len(selects)}")
    return selects[0]


async def fetch(connection: asyncpg.Connection, statement: Statement) -> list[asyncpg.Record]:
    """The statement alone on a plain asyncpg connection (prepared and cached by asyncpg,
    as SQLAlchemy's asyncpg dialect does)."""
    records: list[asyncpg.Record] = await connection.fetch(statement.sql, *statement.parameters)
    return records


async def generic_plans(engine: AsyncEngine, statement: Statement) -> int:
    """How often PostgreSQL ran the statement, prepared on the engine's connection, with
    a generic plan (one for any parameters) instead of one made for the values given."""
    async with engine.connect() as connection:
        result = await connection.exec_driver_sql(
            "SELECT coalesce(sum(generic_plans), 0) FROM pg_prepared_statements "
            "WHERE statement = $1",
            (statement.sql,),
        )
        return int(result.scalar_one())


async def explain(engine: AsyncEngine, statement: Statement, options: str) -> list[Any]:
    """EXPLAIN's rows: lines of text, or the decoded document of ``FORMAT JSON``."""
    async with engine.connect() as connection:
        result = await connection.exec_driver_sql(
            f"EXPLAIN ({options}) {statement.sql}", statement.parameters
        )
        return [row[0] for row in result.all()]


def _literal(value: Any) -> str:
    """A parameter as SQL text for ``EXECUTE``; the prepared statement's casts type it."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError(f"no literal for {type(value).__name__} parameters")


async def explain_generic(
    connection: asyncpg.Connection, statement: Statement, options: str
) -> list[Any]:
    """EXPLAIN of the generic plan PostgreSQL may switch a prepared statement to after
    five runs: one made for any parameter values, chosen on average estimates."""
    arguments = ", ".join(_literal(value) for value in statement.parameters)
    async with connection.transaction():
        await connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await connection.execute(f"PREPARE bench_generic AS {statement.sql}")
        try:
            rows = await connection.fetch(f"EXPLAIN ({options}) EXECUTE bench_generic({arguments})")
        finally:
            await connection.execute("DEALLOCATE bench_generic")
    return [row[0] for row in rows]


async def summarise(
    engine: AsyncEngine, statement: Statement, generic: asyncpg.Connection | None = None
) -> PlanSummary:
    """The custom plan's figures; the generic plan's when ``generic`` (a connection) is given."""
    options = "ANALYZE, BUFFERS, FORMAT JSON"
    if generic is None:
        (output,) = await explain(engine, statement, options)
    else:
        (output,) = await explain_generic(generic, statement, options)
    (document,) = json.loads(output) if isinstance(output, str) else output
    root = document["Plan"]
    nodes = list(_walk(root))
    seq_scans = tuple(
        dict.fromkeys(
            node["Relation Name"]
            for node in nodes
            if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in SCANNED_TABLES
        )
    )
    indexes = tuple(dict.fromkeys(node["Index Name"] for node in nodes if "Index Name" in node))
    filtered = sum(
        int(node.get(key, 0)) * int(node.get("Actual Loops", 1))
        for node in nodes
        for key in ("Rows Removed by Filter", "Rows Removed by Index Recheck")
    )
    return PlanSummary(
        execution_ms=float(document["Execution Time"]),
        buffers=int(root.get("Shared Hit Blocks", 0)) + int(root.get("Shared Read Blocks", 0)),
        seq_scans=seq_scans,
        indexes=indexes,
        rows_filtered=filtered,
    )


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _walk(child)
