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


@pytest.fixture
def shared_reference() -> Path:
    path = SHARED / "reference" / "tmay"
    if not path.is_dir():
        pytest.skip("../shared/reference is absent")
    return path


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded tiny base, built once per test session (~1 minute on 2 cores) in a session cache
    that the demo test finds through $SELFAWARE_CACHE too."""
    from selfaware.finetune.tiny_base import ensure_tiny_base

    os.environ["SELFAWARE_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")
    return ensure_tiny_base()
