"""Runs Varnish with the generated VCL in the foreground: `majlis edge`.

The edge's working files (the VCL, Varnish's instance directory with its counters) live in a
private directory: a fresh temporary one unless `--workdir` names one. Started as root,
varnishd reads the VCL and runs its cache as the unprivileged users of the Debian package
(`varnish`, `vcache`), so the directory goes to `varnish` and must be reachable by it. The
VCL, inline C included, is compiled by varnishd with the system's C compiler, which the
Debian package depends on.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from majlis.edge.vcl import EdgeSettings, render_vcl

__all__ = ["EdgeError", "EdgeRun", "read_counter", "run_edge", "varnishd_command"]

# Debian's default compile command, plus libcrypto for verify.c's HMAC.
CC_COMMAND = (
    "exec cc -g -O2 -fstack-protector-strong -Werror -pthread -fpic -shared -Wl,-x "
    "-o %o %s -l:libcrypto.so.3"
)
# Compiling the VCL (inline C included) takes a second or two.
STARTUP_TIMEOUT_S = 60
_VARNISH_USER = "varnish"


class EdgeError(RuntimeError):
    """The edge cannot start: varnishd missing, a working directory it cannot reach."""


@dataclass(frozen=True, slots=True)
class EdgeRun:
    host: str
    port: int
    workdir: Path | None = None  # None: a fresh temporary directory, removed on exit
    cache_mb: int = 256
    threads_min: int = 200
    threads_max: int = 5000


def varnishd_command(run: EdgeRun, workdir: Path, vcl_path: Path) -> list[str]:
    varnishd = shutil.which("varnishd") or next(
        (p for p in ("/usr/sbin/varnishd", "/usr/local/sbin/varnishd") if os.access(p, os.X_OK)),
        None,
    )
    if varnishd is None:
        raise EdgeError("varnishd is not installed: apt-get install varnish (Debian)")
    params = {
        "vcc_allow_inline_c": "on",
        "cc_command": CC_COMMAND,
        "thread_pools": "2",
        "thread_pool_min": str(run.threads_min),
        "thread_pool_max": str(run.threads_max),
        # A live playlist is never served stale, whatever the origin says.
        "default_grace": "0",
        "default_keep": "0",
        # Listeners reload continuously; don't make them reconnect every few seconds.
        "timeout_idle": "30",
    }
    command = [varnishd, "-F", "-a", f"{run.host}:{run.port}", "-n", str(workdir / "varnish")]
    command += ["-f", str(vcl_path), "-s", f"malloc,{run.cache_mb}m"]
    for name, value in params.items():
        command += ["-p", f"{name}={value}"]
    return command


def run_edge(settings: EdgeSettings, run: EdgeRun) -> int:
    """Write the VCL, run varnishd in the foreground until it exits or we are signalled."""
    workdir = _prepare(run.workdir)
    vcl_path = workdir / "edge.vcl"
    fd = os.open(vcl_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(render_vcl(settings))
    _give_to_varnish(vcl_path)
    process = subprocess.Popen(varnishd_command(run, workdir, vcl_path), stdin=subprocess.DEVNULL)

    def forward(signum: int, _frame: object) -> None:
        process.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    try:
        if _wait_listening(process, run):
            origins = ", ".join(origin.url for origin in settings.origins)
            address = f"http://{run.host}:{run.port}"
            print(f"majlis edge listening on {address} (varnish; origins {origins})", flush=True)
        return process.wait()
    finally:
        vcl_path.unlink(missing_ok=True)
        if run.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def read_counter(workdir: Path, name: str) -> int:
    """One of the running edge's own counters (varnishstat), e.g. MAIN.backend_req: the
    requests it made to its origins. 0 when the counter does not exist."""
    out = subprocess.run(
        ["varnishstat", "-n", str(workdir / "varnish"), "-1", "-f", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(out[1]) if len(out) > 1 else 0


def _prepare(workdir: Path | None) -> Path:
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="majlis-edge-"))
    else:
        workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    workdir = workdir.resolve()
    _give_to_varnish(workdir)
    return workdir


def _varnish_user() -> pwd.struct_passwd | None:
    """The user varnishd drops to, when it will drop (started as root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_VARNISH_USER)
    except KeyError:
        return None


def _give_to_varnish(path: Path) -> None:
    """The VCL holds the token key: it goes to varnishd's user alone, not to everyone."""
    user = _varnish_user()
    if user is None:
        return
    for parent in path.parents:
        status = parent.stat()
        if status.st_uid != user.pw_uid and not status.st_mode & stat.S_IXOTH:
            raise EdgeError(
                f"{parent} is closed to the {_VARNISH_USER} user varnishd runs as: "
                "give --workdir a directory it can reach (e.g. under /var/lib or /tmp)"
            )
    os.chown(path, user.pw_uid, user.pw_gid)


def _wait_listening(process: subprocess.Popen[bytes], run: EdgeRun) -> bool:
    """True once the port accepts connections; False if varnishd exited first."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with socket.create_connection((run.host, run.port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False
