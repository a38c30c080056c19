"""Configuration: defaults < file < MAJLIS_* < flags, and loud failure on anything wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from majlis.config import ConfigError, load_config


def test_precedence_file_then_environment_then_flags(tmp_path: Path) -> None:
    file = tmp_path / "majlis.toml"
    file.write_text('port = 9000\nhost = "0.0.0.0"\nadmission_rate = 5.5\nmedia = false\n')
    config = load_config(file, environ={"MAJLIS_PORT": "9001"}, flags={"host": "127.0.0.2"})
    assert (config.port, config.host, config.admission_rate, config.media) == (
        9001,
        "127.0.0.2",
        5.5,
        False,
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
        ({"MAJLIS_MEDIA": "maybe"}, "'media'"),
        ({"MAJLIS_BUS_URL": "kafka://x"}, "'bus_url'"),
        ({"MAJLIS_PART_SECONDS": "1.5", "MAJLIS_SEGMENT_SECONDS": "2"}, "'segment_seconds'"),
        ({"MAJLIS_STORAGE_URL": "https://bucket/x"}, "'storage_url'"),
        ({"MAJLIS_STORAGE_URL": "s3://No_Such/x"}, "'storage_url'"),
        (
            {"MAJLIS_STORAGE_URL": "s3://bkt/x", "MAJLIS_STORAGE_ENDPOINT": "x"},
            "'storage_endpoint'",
        ),
        ({"MAJLIS_STORAGE_ENDPOINT": "http://minio:9000"}, "'storage_endpoint'"),
        ({"MAJLIS_STORAGE_REGION": " "}, "'storage_region'"),
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


def test_storage_keys_default_to_the_aws_variables() -> None:
    aws = {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"}
    config = load_config(environ={"MAJLIS_STORAGE_URL": "s3://recordings/majlis", **aws})
    assert (config.storage_access_key, config.storage_secret_key) == ("id", "secret")
    assert config.storage_region == "us-east-1" and config.storage_endpoint == ""
    mine = load_config(environ={"MAJLIS_STORAGE_SECRET_KEY": "mine", **aws})
    assert mine.storage_secret_key == "mine"
    assert load_config(environ={}).storage_url == ""


def test_a_bad_secret_is_named_but_never_shown() -> None:
    with pytest.raises(ConfigError, match="'storage_secret_key'") as raised:
        load_config(environ={"MAJLIS_STORAGE_SECRET_KEY": "hunter2 x"})
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MAJLIS_SMTP_URL": "mail.example.org:25"}, "'smtp_url'"),
        ({"MAJLIS_SMTP_URL": "http://mail.example.org"}, "'smtp_url'"),
        ({"MAJLIS_SMTP_URL": "smtp://u:p@mail.example.org:port"}, "'smtp_url'"),
        ({"MAJLIS_SMTP_URL": "smtp://mail.example.org:70000"}, "'smtp_url'"),
        ({"MAJLIS_SMTP_URL": "smtp://:25"}, "'smtp_url'"),
        ({"MAJLIS_SMTP_URL": "smtp://mail.example.org/x?y"}, "'smtp_url'"),
        ({"MAJLIS_SMTP_URL": "smtp://mail.example.org"}, "'smtp_from'"),
        ({"MAJLIS_SMTP_FROM": "not an address"}, "'smtp_from'"),
        ({"MAJLIS_SMTP_FROM": "a@b.c, d@e.f"}, "'smtp_from'"),
        (
            {
                "MAJLIS_SMTP_URL": "smtps://mail.example.org",
                "MAJLIS_SMTP_FROM": "a@example.org",
                "MAJLIS_SMTP_STARTTLS": "true",
            },
            "'smtp_starttls'",
        ),
        ({"MAJLIS_WEBHOOK_URL": "ftp://hooks.example.org"}, "'webhook_url'"),
        ({"MAJLIS_WEBHOOK_URL": "https://hooks.example.org/x"}, "'webhook_secret'"),
        (
            {"MAJLIS_WEBHOOK_URL": "https://h.example.org", "MAJLIS_WEBHOOK_SECRET": "short"},
            "'webhook_secret'",
        ),
        ({"MAJLIS_MISSED_AFTER_S": "-1"}, "'missed_after_s'"),
        ({"MAJLIS_NOTIFY_RETRY_S": "0"}, "'notify_retry_s'"),
    ],
)
def test_bad_delivery_keys_name_the_key(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(environ=environ)


def test_delivery_keys_and_the_smtp_password_never_shown() -> None:
    config = load_config(
        environ={
            "MAJLIS_SMTP_URL": "smtp://user:pa%40ss@mail.example.org:2525",
            "MAJLIS_SMTP_FROM": "spaces@example.org",
            "MAJLIS_SMTP_STARTTLS": "true",
        }
    )
    assert (config.smtp_url, config.smtp_starttls, config.missed_after_s) == (
        "smtp://user:pa%40ss@mail.example.org:2525",
        True,
        1800.0,
    )
    with pytest.raises(ConfigError, match="'smtp_url'") as raised:
        load_config(environ={"MAJLIS_SMTP_URL": "smtp://user:hunter2@host:bad"})
    assert "hunter2" not in str(raised.value)
