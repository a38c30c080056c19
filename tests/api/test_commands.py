"""README gives the two commands: set up and run, set up and test."""

from __future__ import annotations

from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
SCRIPTS = README.parent / "scripts"


@pytest.mark.parametrize("command", ["scripts/serve", "scripts/test"])
def test_readme_names_the_command(command: str) -> None:
    if not README.exists():
        pytest.skip("README.md is not written yet")
    text = README.read_text(encoding="utf-8")
    assert command in text, f"README.md does not mention {command}"
    script = README.parent / command
    assert script.is_file(), f"{command} does not exist"
    assert script.stat().st_mode & 0o111, f"{command} is not executable"
