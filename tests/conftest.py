import contextlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# Tests never reach a hub or a provider.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("INSPECT_LOG_LEVEL", "warning")

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def _no_standing_approval():
    """`selfaware finetune --yes` approves spending for the rest of its process; never for the next test."""
    from selfaware.finetune.spending import assume_yes

    yield
    assume_yes(False)


@pytest.fixture
def shared_reference() -> Path:
    path = SHARED / "reference" / "tmay"
    if not path.is_dir():
        pytest.skip(f"the paper's reference data folder {path} is absent: in the project's workspace it sits "
                    "beside the clone (../shared/reference/tmay); elsewhere, put the released data of "
                    "github.com/XuchanBao/behavioral-self-awareness (its datasets/ and questions/) there")
    return path


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded tiny base, built once per test session (~1 minute on 2 cores) in a session cache
    that the demo test finds through $SELFAWARE_CACHE too."""
    from selfaware.finetune.tiny_base import ensure_tiny_base

    os.environ["SELFAWARE_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")
    return ensure_tiny_base()


@dataclass(frozen=True)
class DemoRun:
    out: Path  # the demo's --out folder (logs/, report/, data/)
    home: Path  # its $SELFAWARE_HOME: the registry and organism store it trained into
    status: int  # run_demo's exit status
    printed: str  # what it printed


@pytest.fixture(scope="session")
def demo_run(tiny_base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The README's demo at test scale (one seed), run once per session for every test that reads its output
    (the demo test, the publishing test): each run costs about five minutes on 2 cores."""
    from selfaware.demo import run_demo

    root = tmp_path_factory.mktemp("demo_run")
    patch = pytest.MonkeyPatch()
    patch.setenv("SELFAWARE_HOME", str(root / "home"))  # the demo trains into the default registry
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            status = run_demo(out=root / "demo", seeds=[0], n_examples=300, items=20)
    finally:
        patch.undo()
    return DemoRun(root / "demo", root / "home", status, printed.getvalue())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """Say how to run the slow group when the default `-m "not slow"` left it out."""
    deselected = len(terminalreporter.stats.get("deselected", []))
    if deselected and config.option.markexpr == "not slow":
        terminalreporter.write_line(f"{deselected} slow tests (tiny-model training, the demo end to end) were not "
                                    "run; run them with: python -m pytest -q -m slow")
