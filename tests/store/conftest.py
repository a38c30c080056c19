"""The store fixtures (defined with the Store contract's tests) for every test file here."""

from __future__ import annotations

from .test_store import backend, store

__all__ = ["backend", "store"]
