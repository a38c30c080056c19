"""PostgreSQL store for the scaled-out deployment (asyncpg, one pool per process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import asyncpg

from majlis.store.base import DuplicateError, Row, Tx
from majlis.store.rows import SqlStore

__all__ = ["PostgresStore", "quote_ident"]

# Any constant shared by every majlis process; it names the lock that queues migrators.
_MIGRATION_LOCK_KEY = 0x6D616A6C6973  # "majlis"


def quote_ident(name: str) -> str:
    """A schema name as a quoted SQL identifier, safe to splice into DDL."""
    if not name or "\x00" in name:
        raise ValueError(f"invalid schema name {name!r}")
    return '"' + name.replace('"', '""') + '"'


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return list(await self._conn.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        row: Row | None = await self._conn.fetchrow(sql, *args)
        return row

    async def execute(self, sql: str, *args: object) -> None:
        await self._conn.execute(sql, *args)

    async def script(self, sql: str) -> None:
        # Without arguments asyncpg uses the simple protocol, which allows many statements.
        await self._conn.execute(sql)


class PostgresStore(SqlStore):
    DIALECT = "postgres"
    _LOCK_SPACE_SUFFIX = " FOR UPDATE"
    _MIGRATION_LOCK_SQL = f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})"
    _CLAIM_LOCK_SUFFIX = " FOR UPDATE SKIP LOCKED"

    def __init__(self, dsn: str, schema: str | None = None) -> None:
        self._dsn = dsn
        self._schema = None if schema is None else quote_ident(schema)
        self._pool: Any = None

    def _id_in(self, ids: list[str]) -> tuple[str, object]:
        return "id = ANY({param}::text[])", ids

    def _transcript_match(self, query: str) -> tuple[str, str] | None:
        if not any(ch.isalnum() for ch in query):
            return None  # plainto_tsquery would be empty, and say so in a NOTICE
        # The same expression as the GIN index (migration 0004), or the index is not used.
        return (
            "EXISTS (SELECT 1 FROM transcript_lines t WHERE t.space_id = s.id"
            " AND to_tsvector('simple', t.text) @@ plainto_tsquery('simple', {param}))",
            query,
        )

    async def _connect(self) -> None:
        # search_path as a startup setting survives the pool's RESET ALL between uses.
        settings = {} if self._schema is None else {"search_path": self._schema}
        pool = await asyncpg.create_pool(
            self._dsn, min_size=1, max_size=10, server_settings=settings
        )
        self._pool = pool
        if self._schema is not None:
            # Two processes creating it at once: the loser sees a unique violation.
            with suppress(asyncpg.UniqueViolationError):
                await pool.execute(f"CREATE SCHEMA IF NOT EXISTS {self._schema}")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _connected_pool(self) -> Any:
        if self._pool is None:
            raise RuntimeError("PostgresStore is not open")
        return self._pool

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Tx]:
        async with self._connected_pool().acquire() as conn:
            yield _PgTx(conn)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[Tx]:
        try:
            async with self._connected_pool().acquire() as conn, conn.transaction():
                yield _PgTx(conn)
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateError(str(exc)) from exc
