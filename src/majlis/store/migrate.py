"""The migration runner both SQL dialects share.

Migrations are package data: `migrations/<dialect>/NNNN_name.sql`, applied in version
order, each in its own transaction together with its row in `schema_migrations`, so a
crash leaves either all of a migration or none of it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from importlib.resources import files

from majlis.store.base import Tx

__all__ = ["Migration", "load_migrations", "migrate"]

# Valid in both dialects; created inside each migration's transaction (cheap when present).
_CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version integer PRIMARY KEY, applied_at double precision NOT NULL)"
)
_IS_APPLIED = "SELECT 1 FROM schema_migrations WHERE version = $1"
_RECORD = "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """The dialect's migrations in version order; rejects duplicate versions."""
    folder = files("majlis.store").joinpath("migrations", dialect)
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two {dialect} migrations numbered {version:04d}")
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    if not found:
        raise ValueError(f"no migrations found for dialect {dialect!r}")
    return [found[v] for v in sorted(found)]


async def migrate(
    begin: Callable[[], AbstractAsyncContextManager[Tx]],
    dialect: str,
    lock_sql: str | None = None,
) -> list[int]:
    """Apply every migration not yet recorded; return the versions applied now.

    `begin` opens a write transaction. `lock_sql`, run first in each transaction, makes
    concurrent starters queue so each migration is applied exactly once.
    """
    applied: list[int] = []
    for migration in load_migrations(dialect):
        async with begin() as tx:
            if lock_sql is not None:
                await tx.execute(lock_sql)
            await tx.execute(_CREATE_TABLE)
            if await tx.fetchrow(_IS_APPLIED, migration.version) is not None:
                continue
            await tx.script(migration.sql)
            await tx.execute(_RECORD, migration.version, time.time())
            applied.append(migration.version)
    return applied
