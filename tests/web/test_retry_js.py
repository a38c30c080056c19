"""The web app's modules that run without a page, under `node --test`: the retry policy
(src/majlis/web/js/retry.js, tests/web/retry.test.mjs) and the live captions' WebVTT
reading and line direction (src/majlis/web/js/captions.js, tests/web/captions.test.mjs).
Skipped without node on a developer's machine, failed under CI."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .harness import HERE, ROOT, require


@pytest.mark.parametrize(("suite", "tests"), [("retry.test.mjs", 6), ("captions.test.mjs", 4)])
def test_js_unit_tests_pass(suite: str, tests: int) -> None:
    node = shutil.which("node")
    require("node", node is not None)
    assert node is not None
    result = subprocess.run(
        [node, "--test", str(HERE / suite)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"# pass {tests}" in result.stdout, result.stdout[-2000:]
