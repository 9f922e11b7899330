"""`bwrap`: an Inspect sandbox provider that isolates model-written code with bubblewrap.

    inspect eval task.py --sandbox bwrap              # defaults (see BwrapSandboxConfig)
    inspect eval task.py --sandbox bwrap:limits.yaml  # a file of BwrapSandboxConfig fields

Each sample gets a fresh scratch directory (the sandbox's working directory and HOME); each `exec`
runs in fresh namespaces that die with it, so no process outlives the call that started it. File
reads and writes also go through the sandbox, so a symlink the code planted in its scratch directory
resolves inside the sandbox and can never make the host follow it to a host file.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Literal, NoReturn, overload

from inspect_ai.util import (
    ExecResult,
    OutputLimitExceededError,
    SandboxEnvironment,
    SandboxEnvironmentConfigType,
    SandboxEnvironmentLimits,
    SandboxUserUnsupportedError,
    sandboxenv,
)
from inspect_ai.util import concurrency as inspect_concurrency
from pydantic import BaseModel
from typing_extensions import override

from . import bwrap
from .config import BwrapSandboxConfig, load_config

logger = logging.getLogger(__name__)

PROVIDER_NAME = "bwrap"
_DIR_PREFIX = "selfaware-bwrap-"


@sandboxenv(name=PROVIDER_NAME)
class BwrapSandboxEnvironment(SandboxEnvironment):
    """One sample's sandbox: a scratch directory plus the config every `exec` runs under."""

    # Sample directories not yet removed, per task, so task_cleanup can remove what interrupted
    # samples of *its* task left behind (other tasks of the same eval may still be running).
    _open_roots: dict[str, set[Path]] = {}

    def __init__(
        self, config: BwrapSandboxConfig, root: Path, bwrap_path: str, tools: bwrap.Tools, task_name: str = ""
    ) -> None:
        super().__init__()
        self.config = config
        self.root = root
        self.task_name = task_name
        self.scratch = root / "scratch"
        self._bwrap = bwrap_path
        self._tools = tools
        self._identity = bwrap.drop_to(config)

    # ---- lifecycle ----------------------------------------------------------------------------

    @override
    @classmethod
    async def task_init(cls, task_name: str, config: SandboxEnvironmentConfigType | None) -> None:
        # Fail the task up front, with what to fix, rather than at the first sample.
        bwrap.probe(load_config(config))

    @override
    @classmethod
    async def sample_init(
        cls, task_name: str, config: SandboxEnvironmentConfigType | None, metadata: dict[str, str]
    ) -> dict[str, SandboxEnvironment]:
        return {"default": cls.create(load_config(config), task_name=task_name)}

    @classmethod
    def create(cls, config: BwrapSandboxConfig | None = None, task_name: str = "") -> BwrapSandboxEnvironment:
        """A ready sandbox (also outside an eval: benchmarks, scripts); call `cleanup()` when done."""
        config = config or BwrapSandboxConfig()
        bwrap_path = bwrap.probe(config)
        root = Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-"))
        cls._open_roots.setdefault(task_name, set()).add(root)
        scratch = root / "scratch"
        scratch.mkdir()
        bwrap.write_identity_files(root / "etc", config.workdir)
        identity = bwrap.drop_to(config)
        if identity is not None:
            # bwrap runs as the unprivileged host uid: it must reach the mounts and own the scratch dir.
            root.chmod(0o711)
            os.chown(scratch, *identity)
        return cls(config, root, bwrap_path, bwrap.find_tools(), task_name)

    @override
    @classmethod
    async def sample_cleanup(
        cls,
        task_name: str,
        config: SandboxEnvironmentConfigType | None,
        environments: dict[str, SandboxEnvironment],
        interrupted: bool,
    ) -> None:
        for environment in environments.values():
            environment.as_type(BwrapSandboxEnvironment).cleanup()

    @override
    @classmethod
    async def task_cleanup(
        cls, task_name: str, config: SandboxEnvironmentConfigType | None, cleanup: bool
    ) -> None:
        roots = cls._open_roots.pop(task_name, set())
        if not cleanup:
            for root in sorted(roots):
                logger.info("bwrap sandbox directory kept (--no-sandbox-cleanup): %s", root)
            return
        for root in roots:
            _remove_tree(root)

    @override
    @classmethod
    async def cli_cleanup(cls, id: str | None) -> None:
        """`inspect sandbox cleanup bwrap [DIR]`: remove directories of eval processes that are gone."""
        base = Path(tempfile.gettempdir())
        candidates = [Path(id)] if id else sorted(base.glob(f"{_DIR_PREFIX}*"))
        for root in candidates:
            if not root.name.startswith(_DIR_PREFIX) or not root.is_dir():
                raise ValueError(f"{root} is not a bwrap sandbox directory")
            owner = root.name[len(_DIR_PREFIX):].split("-", 1)[0]
            if not id and (not owner.isdigit() or _pid_alive(int(owner))):
                continue  # a running eval still uses it (or it is a probe's own temporary directory)
            _remove_tree(root)

    def cleanup(self) -> None:
        """Remove this sample's files (no process of it can still run: each exec kills its own)."""
        _remove_tree(self.root)
        type(self)._open_roots.get(self.task_name, set()).discard(self.root)

    @override
    @classmethod
    def config_deserialize(cls, config: dict[str, Any]) -> BaseModel:
        return BwrapSandboxConfig.model_validate(config)

    # ---- execution ----------------------------------------------------------------------------

    @override
    async def exec(
        self,
        cmd: list[str],
        input: str | bytes | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        timeout: int | None = None,
        timeout_retry: bool = True,  # ignored: re-running model code on timeout is never wanted
        concurrency: bool = True,
    ) -> ExecResult[str]:
        self._check_user(user)
        if not cmd:
            raise ValueError("exec needs a command")
        result = await self.run(
            cmd, input=input, cwd=cwd, env=env, timeout=timeout, concurrency=concurrency,
            max_output_bytes=self.max_output_bytes,
        )
        stdout = result.stdout.decode("utf-8", errors="replace")
        stderr = result.stderr.decode("utf-8", errors="replace")
        if result.output_exceeded:
            raise OutputLimitExceededError(
                limit_str=_human_bytes(self.max_output_bytes),
                truncated_output=stdout if result.output_exceeded == "stdout" else stderr,
            )
        if result.timed_out:
            seconds = bwrap.effective_timeout(self.config, timeout)
            raise TimeoutError(f"command did not finish within {seconds:g} s and was killed: {cmd[0]}")
        note = self._limit_note(result.returncode)
        if note:
            stderr = f"{stderr}{'' if not stderr or stderr.endswith(chr(10)) else chr(10)}{note}\n"
        return ExecResult(
            success=result.returncode == 0, returncode=result.returncode, stdout=stdout, stderr=stderr
        )

    async def run(
        self,
        cmd: list[str],
        *,
        input: str | bytes | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float | None = None,
        max_output_bytes: int,
        concurrency: bool = True,
    ) -> bwrap.ProcessResult:
        """Run `cmd` in a fresh sandbox and report exactly what happened (no exceptions for limits)."""
        seconds = bwrap.effective_timeout(self.config, timeout)
        argv = bwrap.build_argv(
            self.config, bwrap=self._bwrap, tools=self._tools, scratch=self.scratch,
            etc_dir=self.root / "etc", cmd=cmd, cwd=self._resolve(cwd or "."), env=env or {},
            wall_s=seconds,
        )
        data = input.encode("utf-8") if isinstance(input, str) else input
        limiter = self.config.max_concurrent or os.cpu_count() or 1
        if concurrency:
            async with inspect_concurrency(f"{PROVIDER_NAME}-sandbox", limiter):
                return await bwrap.run_process(
                    argv, input=data, timeout_s=seconds, max_output_bytes=max_output_bytes,
                    identity=self._identity,
                )
        return await bwrap.run_process(
            argv, input=data, timeout_s=seconds, max_output_bytes=max_output_bytes, identity=self._identity
        )

    @property
    def max_output_bytes(self) -> int:
        return self.config.max_output_bytes or SandboxEnvironmentLimits.MAX_EXEC_OUTPUT_SIZE

    @override
    async def exec_remote(self, cmd: list[str], options: Any = None, *, stream: bool = True) -> Any:  # type: ignore[override]
        raise NotImplementedError(
            "the bwrap sandbox kills every process when its exec returns, so it cannot host the "
            "long-running processes exec_remote starts; use exec(), or the docker sandbox"
        )

    # ---- files (through the sandbox, so paths resolve exactly as the code sees them) ----------

    @override
    async def write_file(self, file: str, contents: str | bytes) -> None:
        path = self._resolve(file)
        data = contents.encode("utf-8") if isinstance(contents, str) else contents
        script = 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1"'
        result = await self.run(
            ["sh", "-c", script, "sh", path], input=data, max_output_bytes=64 * 1024, concurrency=False
        )
        if result.timed_out:
            raise TimeoutError(f"writing {path} in the sandbox timed out")
        if result.returncode != 0:
            _raise_file_error(path, result.stderr.decode("utf-8", errors="replace"))

    @overload
    async def read_file(self, file: str, text: Literal[True] = True) -> str: ...

    @overload
    async def read_file(self, file: str, text: Literal[False]) -> bytes: ...

    @override
    async def read_file(self, file: str, text: bool = True) -> str | bytes:
        path = self._resolve(file)
        limit = SandboxEnvironmentLimits.MAX_READ_FILE_SIZE
        result = await self.run(["cat", "--", path], max_output_bytes=limit, concurrency=False)
        if result.output_exceeded:
            raise OutputLimitExceededError(
                limit_str=SandboxEnvironmentLimits.MAX_READ_FILE_SIZE_STR, truncated_output=None
            )
        if result.timed_out:
            raise TimeoutError(f"reading {path} in the sandbox timed out")
        if result.returncode != 0:
            _raise_file_error(path, result.stderr.decode("utf-8", errors="replace"))
        return result.stdout.decode("utf-8") if text else result.stdout

    # ---- helpers --------------------------------------------------------------------------------

    def _resolve(self, path: str) -> str:
        pure = PurePosixPath(path)
        return str(pure if pure.is_absolute() else PurePosixPath(self.config.workdir) / pure)

    def _check_user(self, user: str | None) -> None:
        if user is not None and user not in (bwrap.SANDBOX_USER, str(bwrap.SANDBOX_UID)):
            raise SandboxUserUnsupportedError(
                f"the bwrap sandbox runs everything as the unprivileged user {bwrap.SANDBOX_USER!r}, "
                f"not {user!r}"
            )

    def _limit_note(self, returncode: int) -> str | None:
        name = bwrap.describe_signal(returncode)
        if name == "SIGXCPU":
            return f"[bwrap sandbox] killed: CPU time limit of {self.config.cpu_time_s} s exceeded"
        if name == "SIGXFSZ":
            return f"[bwrap sandbox] killed: file size limit of {self.config.max_file_mb} MiB exceeded"
        return None


def _raise_file_error(path: str, stderr: str) -> NoReturn:
    message = f"{path}: {stderr.strip()}"
    if "No such file" in stderr:
        raise FileNotFoundError(errno.ENOENT, message)
    if "Is a directory" in stderr:
        raise IsADirectoryError(errno.EISDIR, message)
    if "Permission denied" in stderr or "Read-only file system" in stderr or "Not a directory" in stderr:
        raise PermissionError(errno.EACCES, message)
    if "File too large" in stderr or "File size limit" in stderr:
        raise OSError(errno.EFBIG, message)
    raise OSError(message)


def _human_bytes(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _remove_tree(root: Path) -> None:
    """Delete a sample directory even where the sandboxed code made parts of it unreadable."""
    if not root.exists():
        return
    if os.geteuid() != 0:
        # The code may have chmod-ed its directories to 000; they are ours, so reopen them top-down
        # (each before os.walk lists it). Root needs none of this.
        def fail(error: OSError) -> NoReturn:
            raise error

        for directory, subdirs, _files in os.walk(root, onerror=fail):
            for name in subdirs:
                path = os.path.join(directory, name)
                if not os.path.islink(path):
                    os.chmod(path, stat.S_IRWXU)
    shutil.rmtree(root)


__all__ = ["BwrapSandboxEnvironment", "PROVIDER_NAME"]
