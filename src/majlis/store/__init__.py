"""The SQL store: `open_store(url)` picks the dialect from the URL's scheme."""

from __future__ import annotations

from majlis.store.base import DuplicateError, Store

__all__ = ["DuplicateError", "Store", "open_store"]

_SQLITE_PREFIX = "sqlite:///"
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(url: str) -> Store:
    """A store for `url`, not yet opened (call `await store.open()`).

    `sqlite:///data/majlis.db` is relative to the working directory,
    `sqlite:////var/lib/majlis.db` absolute, `sqlite:///:memory:` in memory;
    `postgresql://user@host/db` (or `postgres://`) is PostgreSQL.
    """
    # Imported here so a deployment only loads the driver it uses.
    if url.startswith(_SQLITE_PREFIX):
        from majlis.store.sqlite import SqliteStore

        path = url.removeprefix(_SQLITE_PREFIX)
        if not path:
            raise ValueError(f"store URL {url!r} has no database path")
        return SqliteStore(path)
    if url.startswith(_POSTGRES_SCHEMES):
        from majlis.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(
        f"unsupported store URL {url!r}: expected sqlite:///<path> or postgresql://..."
    )
