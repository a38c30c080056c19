"""Configuration: defaults < file < MAJLIS_* < flags, and loud failure on anything wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from majlis.config import ConfigError, load_config


def test_precedence_file_then_environment_then_flags(tmp_path: Path) -> None:
    file = tmp_path / "majlis.toml"
    file.write_text('port = 9000\nhost = "0.0.0.0"\nadmission_rate = 5.5\ndev = true\n')
    config = load_config(file, environ={"MAJLIS_PORT": "9001"}, flags={"host": "127.0.0.2"})
    assert (config.port, config.host, config.admission_rate, config.dev) == (
        9001,
        "127.0.0.2",
        5.5,
        True,
    )
    assert load_config(environ={}).port == 8080


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MAJLIS_PROT": "1"}, "unknown config key 'prot'"),
        ({"MAJLIS_PORT": "eighty"}, "'port'"),
        ({"MAJLIS_PORT": "70000"}, "'port'"),
        ({"MAJLIS_ADMISSION_RATE": "0"}, "'admission_rate'"),
        ({"MAJLIS_ADMISSION_BURST": "2.5"}, "'admission_burst'"),
        ({"MAJLIS_DEV": "maybe"}, "'dev'"),
        ({"MAJLIS_BUS_URL": "kafka://x"}, "'bus_url'"),
        ({"MAJLIS_PART_SECONDS": "1.5", "MAJLIS_SEGMENT_SECONDS": "2"}, "'segment_seconds'"),
    ],
)
def test_bad_values_name_the_key(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(environ=environ)


def test_bad_file_names_the_file_and_key(tmp_path: Path) -> None:
    file = tmp_path / "majlis.toml"
    file.write_text("listen_port = 1\n")
    with pytest.raises(ConfigError, match="unknown config key 'listen_port'"):
        load_config(file, environ={})
    file.write_text("port = [\n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(file, environ={})
    with pytest.raises(ConfigError, match="'port'"):
        load_config(environ={}, flags={"port": True})


def test_client_variables_are_not_config() -> None:
    config = load_config(
        environ={"MAJLIS_PASSWORD": "x", "MAJLIS_SERVER": "y", "MAJLIS_TEST_REDIS": "z"}
    )
    assert config.port == 8080


def test_the_command_stops_with_the_reason(tmp_path: Path) -> None:
    majlis = str(Path(sys.executable).with_name("majlis"))
    done = subprocess.run(
        [majlis, "serve", "--data-dir", str(tmp_path)],
        env={"MAJLIS_WRITE_RATE_IP": "-1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "write_rate_ip" in done.stderr
