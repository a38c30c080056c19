"""Runs Varnish with the generated VCL in the foreground: `majlis edge`.

The edge's working files (the VCL, Varnish's instance directory with its counters) live in a
private directory: a fresh temporary one unless `--workdir` names one. Started as root,
varnishd reads the VCL and runs its cache as the unprivileged users of the Debian package
(`varnish`, `vcache`), so the directory goes to `varnish` and must be reachable by it. The
VCL, inline C included, is compiled by varnishd with the system's C compiler, which the
Debian package depends on.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from majlis.edge.feeder import FeedSettings, run_feeder
from majlis.edge.nginx import StreamSettings, render_nginx
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
_NGINX_USER = "www-data"
NGINX_PACKAGES = "nginx-light libnginx-mod-nchan libnginx-mod-http-js"
NGINX_MODULES = (
    "/usr/lib/nginx/modules/ngx_nchan_module.so",
    "/usr/lib/nginx/modules/ngx_http_js_module.so",
)


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
    stream_window_s: int = 30
    stream_horizon_s: int = 120
    stream_parts: int = 1  # parts per message on the listener stream


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
    """Run Varnish, nginx and the feeder in the foreground until one stops or we are
    signalled; then stop the others. The exit status is the first one to stop's."""
    workdir = _prepare(run.workdir)
    try:
        return asyncio.run(_run(settings, run, workdir))
    finally:
        (workdir / "edge.vcl").unlink(missing_ok=True)
        if run.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def render_front(settings: EdgeSettings, run: EdgeRun, ports: InternalPorts, workdir: Path) -> str:
    return render_nginx(
        StreamSettings(
            host=run.host,
            port=run.port,
            varnish_port=ports.varnish,
            publish_port=ports.publish,
            feeder_port=ports.feeder,
            playback_key=settings.playback_key,
            workdir=workdir / "nginx",
            user=_NGINX_USER if os.geteuid() == 0 else None,
            window_s=run.stream_window_s,
            horizon_s=run.stream_horizon_s,
            parts_per_message=run.stream_parts,
        )
    )


@dataclass(frozen=True, slots=True)
class InternalPorts:
    """Loopback ports behind the front: Varnish, nchan's publisher, the feeder."""

    varnish: int
    publish: int
    feeder: int

    @classmethod
    def free(cls) -> InternalPorts:
        return cls(*(_free_port() for _ in range(3)))


async def _run(settings: EdgeSettings, run: EdgeRun, workdir: Path) -> int:
    ports = InternalPorts.free()
    vcl_path = workdir / "edge.vcl"
    _write_private(vcl_path, render_vcl(settings))
    _give_to_varnish(vcl_path)
    nginx_conf = _prepare_front(workdir / "nginx", render_front(settings, run, ports, workdir))
    behind = EdgeRun("127.0.0.1", ports.varnish, cache_mb=run.cache_mb, threads_max=run.threads_max)
    varnish = await asyncio.create_subprocess_exec(
        *varnishd_command(behind, workdir, vcl_path), stdin=subprocess.DEVNULL
    )
    processes = [varnish]
    feeding: asyncio.Task[None] | None = None
    try:
        if not await _listening(varnish, "127.0.0.1", ports.varnish):
            return await varnish.wait()
        nginx = await asyncio.create_subprocess_exec(
            *nginx_command(nginx_conf), stdin=subprocess.DEVNULL
        )
        processes.append(nginx)
        feed = FeedSettings(
            upstream=f"http://127.0.0.1:{ports.varnish}",
            publisher=f"http://127.0.0.1:{ports.publish}/publish",
            playback_key=settings.playback_key,
            window_s=run.stream_window_s,
            horizon_s=run.stream_horizon_s,
            parts_per_message=run.stream_parts,
        )
        feeding = asyncio.create_task(run_feeder(feed, "127.0.0.1", ports.feeder))
        if not await _listening(nginx, run.host, run.port):
            return await nginx.wait()
        origins = ", ".join(origin.url for origin in settings.origins)
        print(
            f"majlis edge listening on http://{run.host}:{run.port} "
            f"(nginx and varnish; origins {origins})",
            flush=True,
        )
        return await _until_one_stops(processes, feeding)
    finally:
        if feeding is not None:
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _until_one_stops(
    processes: list[asyncio.subprocess.Process], feeding: asyncio.Task[None]
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    waits = [asyncio.create_task(process.wait()) for process in processes]
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*waits, feeding, stopping], return_when=asyncio.FIRST_COMPLETED)
    for task in [*waits, stopping]:
        task.cancel()
    if stopping in done:
        return 0
    for name, process in zip(("varnishd", "nginx"), processes, strict=False):
        if process.returncode is not None:
            print(f"majlis edge: {name} stopped ({process.returncode})", file=sys.stderr)
            return process.returncode or 1
    if feeding.done() and not feeding.cancelled() and feeding.exception() is not None:
        print(f"majlis edge: the feeder failed: {feeding.exception()!r}", file=sys.stderr)
    return 1


def nginx_command(conf: Path) -> list[str]:
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if nginx is None:
        raise EdgeError(f"nginx is not installed: apt-get install {NGINX_PACKAGES} (Debian)")
    for module in NGINX_MODULES:
        if not Path(module).exists():
            raise EdgeError(f"{module} is missing: apt-get install {NGINX_PACKAGES} (Debian)")
    return [nginx, "-e", "stderr", "-p", f"{conf.parent}/", "-c", str(conf)]


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


def _prepare_front(folder: Path, conf: str) -> Path:
    """nginx's files: the config and script (the key: root's alone, read before nginx drops
    to its user) and the directories its workers write."""
    folder.mkdir(mode=0o711, exist_ok=True)
    _write_private(
        folder / "stream.js", resources.files(__package__).joinpath("stream.js").read_text()
    )
    _write_private(folder / "nginx.conf", conf)
    user = _user(_NGINX_USER)
    for name in (
        "tmp",
        "tmp/body",
        "tmp/proxy",
        "tmp/fastcgi",
        "tmp/uwsgi",
        "tmp/scgi",
        "tmp/notify",
    ):
        (folder / name).mkdir(mode=0o700, exist_ok=True)
        if user is not None:
            os.chown(folder / name, user.pw_uid, user.pw_gid)
    return folder / "nginx.conf"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _prepare(workdir: Path | None) -> Path:
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="majlis-edge-"))
    else:
        workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    workdir = workdir.resolve()
    _give_to_varnish(workdir)
    # Traversable, not listable: nginx's workers reach their own directories inside.
    workdir.chmod(0o711)
    return workdir


def _user(name: str) -> pwd.struct_passwd | None:
    """The user an engine drops to, when it will drop (started as root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _give_to_varnish(path: Path) -> None:
    """The VCL holds the token key: it goes to varnishd's user alone, not to everyone."""
    user = _user(_VARNISH_USER)
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


async def _listening(process: asyncio.subprocess.Process, host: str, port: int) -> bool:
    """True once the port accepts connections; False if the process exited first."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while process.returncode is None and time.monotonic() < deadline:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 0.5)
        except (OSError, TimeoutError):
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return True
    return False


def render_config(settings: EdgeSettings, run: EdgeRun) -> str:
    """Both generated files, as `majlis edge --print-config` shows them (the loopback ports
    behind the front are chosen afresh when the edge starts)."""
    workdir = run.workdir or Path("/tmp/majlis-edge-…")
    front = render_front(settings, run, InternalPorts.free(), workdir)
    return f"# ---- edge.vcl ----\n{render_vcl(settings)}\n# ---- nginx.conf ----\n{front}"
