"""The web app's retry policy (src/majlis/web/js/retry.js) under `node --test`:
tests/web/retry.test.mjs. Skipped without node on a developer's machine, failed under CI."""

from __future__ import annotations

import shutil
import subprocess

from .harness import HERE, ROOT, require


def test_retry_js_unit_tests_pass() -> None:
    node = shutil.which("node")
    require("node", node is not None)
    assert node is not None
    result = subprocess.run(
        [node, "--test", str(HERE / "retry.test.mjs")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# pass 6" in result.stdout, result.stdout[-2000:]
