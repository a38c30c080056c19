"""SQLite store for the embedded, one-process deployment (aiosqlite, one connection)."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path

import aiosqlite

from majlis.store.base import DuplicateError, Row, Tx
from majlis.store.rows import SqlStore

__all__ = ["SqliteStore"]

MEMORY = ":memory:"
_BUSY_TIMEOUT_MS = 5000
_PRAGMAS = (
    f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)
# Switching a fresh file to WAL needs an exclusive lock, and SQLite answers "busy" at once
# (no busy handler) when two connections try together, so the switch is retried.
_WAL_ATTEMPTS = 50
_WAL_RETRY_S = 0.02
_UNIQUE_ERRORS = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})
_DOLLAR_PARAM = re.compile(r"\$(\d+)")


@lru_cache(maxsize=256)
def to_sqlite_params(sql: str) -> str:
    """`$1` → `?1`: SQLite's numbered placeholders bind positionally like PostgreSQL's."""
    return _DOLLAR_PARAM.sub(r"?\1", sql)


def split_statements(script: str) -> list[str]:
    """The script's statements; a `;` inside a string, comment or trigger body does not
    split (sqlite3.complete_statement knows SQLite's own lexer rules)."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            statements.append(pending)
            pending = ""
    # A final statement without its `;` got one above; trailing comments run as no-ops.
    return statements


async def _enable_wal(conn: aiosqlite.Connection) -> None:
    for _ in range(_WAL_ATTEMPTS - 1):
        try:
            await _execute(conn, "PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
        await asyncio.sleep(_WAL_RETRY_S)
    await _execute(conn, "PRAGMA journal_mode = WAL")


async def _execute(conn: aiosqlite.Connection, sql: str) -> None:
    """Run `sql` to its end: a PRAGMA's answer left unread keeps its statement open, and
    with it a read lock that stops another connection's commit (and so both stall)."""
    async with conn.execute(sql) as cursor:
        await cursor.fetchall()


class _SqliteTx:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        async with self._conn.execute(to_sqlite_params(sql), args) as cursor:
            return list(await cursor.fetchall())

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def execute(self, sql: str, *args: object) -> None:
        # Drained through fetch so a RETURNING statement finishes before COMMIT.
        await self.fetch(sql, *args)

    async def script(self, sql: str) -> None:
        # Not executescript: on Python 3.11 it COMMITs the open transaction first.
        for statement in split_statements(sql):
            await self.execute(statement)


def fts_query(query: str) -> str | None:
    """`query` as an FTS5 query that cannot be misread as FTS5 syntax: each word a quoted
    phrase, all of them required. None when it holds no word."""
    words = [w for w in query.split() if any(ch.isalnum() for ch in w)]
    if not words:
        return None
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


class SqliteStore(SqlStore):
    DIALECT = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._conn: aiosqlite.Connection | None = None
        # Statements of different coroutines would otherwise interleave inside one
        # connection's transaction; the lock keeps each transaction whole.
        self._lock = asyncio.Lock()

    def _id_in(self, ids: list[str]) -> tuple[str, object]:
        # SQLite binds no arrays: the list travels as one JSON text.
        return "id IN (SELECT value FROM json_each({param}))", json.dumps(ids)

    def _transcript_match(self, query: str) -> tuple[str, str] | None:
        terms = fts_query(query)
        if terms is None:
            return None
        return (
            "s.id IN (SELECT space_id FROM transcript_fts WHERE transcript_fts MATCH {param})",
            terms,
        )

    async def _connect(self) -> None:
        if self._path != MEMORY:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the sqlite3 module must not open transactions on its own;
        # _write issues BEGIN IMMEDIATE itself.
        conn = await aiosqlite.connect(
            self._path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000
        )
        conn.row_factory = aiosqlite.Row
        self._conn = conn
        for pragma in _PRAGMAS:
            await _execute(conn, pragma)
        await _enable_wal(conn)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def _connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("SqliteStore is not open")
        return self._conn

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Tx]:
        async with self._lock:
            yield _SqliteTx(self._connection())

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[Tx]:
        async with self._lock:
            conn = self._connection()
            # IMMEDIATE takes the write lock up front, so another process cannot slip a
            # write between our read (a limit count) and our write.
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(conn)
            except sqlite3.IntegrityError as exc:
                await conn.rollback()
                if exc.sqlite_errorname in _UNIQUE_ERRORS:
                    raise DuplicateError(str(exc)) from exc
                raise
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()
