"""A newcomer's mistakes get one line saying what to do, never a traceback (issue 16)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

MAJLIS = [str(Path(sys.executable).parent / "majlis")]


def run(args: list[str], tmp_path: Path, **config: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAJLIS_")} | config
    return subprocess.run(
        [*MAJLIS, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], says: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("majlis: "), result.stderr
    assert says in lines[0], lines[0]


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(["serve", "--port", str(port), "--data-dir", str(tmp_path)], tmp_path)
    assert_one_line(result, f"127.0.0.1:{port}")


def test_no_password_and_no_terminal_is_one_line(tmp_path: Path) -> None:
    result = run(["user", "create", "zed", "--data-dir", str(tmp_path)], tmp_path)
    assert_one_line(result, "MAJLIS_PASSWORD")
    result = run(["speak", "some-space", "--user", "zed"], tmp_path)
    assert_one_line(result, "MAJLIS_PASSWORD")


def test_an_unreachable_database_or_bus_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = closed.getsockname()[1]
        for key, url in (
            ("MAJLIS_DATABASE_URL", f"postgresql://majlis@127.0.0.1:{port}/majlis"),
            ("MAJLIS_BUS_URL", f"redis://127.0.0.1:{port}/0"),
        ):
            serve = ["serve", "--port", "0", "--data-dir", str(tmp_path)]
            assert_one_line(run(serve, tmp_path, **{key: url}), "cannot reach")
