"""Fixtures of the web app tests (defined in harness.py, shared with the test modules)."""

from .harness import browser_tools, start_server, tones

__all__ = ["browser_tools", "start_server", "tones"]
