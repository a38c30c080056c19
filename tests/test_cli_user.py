"""`majlis user create` takes an optional email (where reminders are mailed), checked as
the API checks it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from majlis.cli import main
from majlis.store import open_store


async def test_user_create_keeps_an_email(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAJLIS_CONFIG", raising=False)
    base = ["user", "create", "--data-dir", str(tmp_path), "--password", "long enough"]
    assert await _run([*base, "lina", "--email", "lina@example.org"]) == 0
    assert await _run([*base, "omar", "--email", "omar@@example"]) != 0
    store = open_store(f"sqlite:///{tmp_path / 'majlis.db'}")
    await store.open()
    try:
        lina = await store.get_user_by_username("lina")
        assert lina is not None and lina.email == "lina@example.org"
        assert await store.get_user_by_username("omar") is None
    finally:
        await store.close()


async def _run(argv: list[str]) -> int:
    # main() runs its own event loop.
    return await asyncio.to_thread(_main, argv)


def _main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
