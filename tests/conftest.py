import os
import sys
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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """Say how to run the slow group when the default `-m "not slow"` left it out."""
    deselected = len(terminalreporter.stats.get("deselected", []))
    if deselected and config.option.markexpr == "not slow":
        terminalreporter.write_line(f"{deselected} slow tests (tiny-model training, the demo end to end) were not "
                                    "run; run them with: python -m pytest -q -m slow")
