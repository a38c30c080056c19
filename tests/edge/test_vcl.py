"""The generated VCL: it compiles in the real varnishd, and bad settings are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from majlis.edge import EdgeSettings, parse_origin, render_vcl
from majlis.edge.runner import CC_COMMAND

from .conftest import require_varnish

KEY = bytes(range(32))


def test_origins_are_plain_http_host_and_port() -> None:
    assert parse_origin("http://127.0.0.1:8080").url == "http://127.0.0.1:8080"
    assert parse_origin("http://media-1.internal").port == 80
    for bad in (
        "https://a:1",
        "ftp://a",
        "http://a:1/hls",
        "http://a:1?x=1",
        "http://:80",
        "http://a:99999",
        "a:80",
    ):
        with pytest.raises(ValueError, match="origin"):
            parse_origin(bad)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one origin"):
        render_vcl(EdgeSettings((), KEY))
    with pytest.raises(ValueError, match="32 bytes"):
        render_vcl(EdgeSettings((parse_origin("http://a:1"),), b"short"))


@pytest.mark.parametrize("count", [1, 3])
def test_the_vcl_compiles_in_varnishd(tmp_path: Path, count: int) -> None:
    require_varnish()
    origins = tuple(parse_origin(f"http://127.0.0.{n + 1}:{8080 + n}") for n in range(count))
    vcl = tmp_path / "edge.vcl"
    vcl.write_text(render_vcl(EdgeSettings(origins, KEY)))
    compiled = subprocess.run(
        [
            "varnishd",
            "-C",
            "-j",
            "none",
            "-f",
            str(vcl),
            "-n",
            str(tmp_path / "n"),
            "-p",
            "vcc_allow_inline_c=on",
            "-p",
            f"cc_command={CC_COMMAND}",
        ],
        capture_output=True,
        text=True,
    )
    assert compiled.returncode == 0, compiled.stderr[-2000:]
    for n in range(count):
        assert f'.host = "127.0.0.{n + 1}";' in vcl.read_text()
    assert (".probe" in vcl.read_text()) == (count > 1)  # health checks only with a standby


def _edge_print_config(origin: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    majlis = str(Path(sys.executable).with_name("majlis"))
    return subprocess.run(
        [majlis, "edge", "--origin", origin, "--print-config"],
        capture_output=True,
        text=True,
        env={"MAJLIS_SECRET_KEY": "x" * 40, "PATH": "/usr/bin:/bin"},
        cwd=cwd,
    )


def test_print_config(tmp_path: Path) -> None:
    printed = _edge_print_config("http://10.0.0.7:8080", tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith("# ---- edge.vcl ----\n# Majlis edge")
    vcl, front = printed.stdout.split("# ---- nginx.conf ----\n")
    assert "listen 127.0.0.1:8081 " in front and "nchan_subscriber http-raw-stream;" in front
    assert '.host = "10.0.0.7";' in vcl and '.port = "8080";' in printed.stdout
    assert "x" * 40 not in printed.stdout  # the server's secret never; a derived key only
    refused = _edge_print_config("https://10.0.0.7", tmp_path)
    assert refused.returncode == 1 and "plain http://" in refused.stderr
    assert "Traceback" not in refused.stderr
