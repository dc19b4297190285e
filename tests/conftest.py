import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACECUE_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    """The read-only real data and media folder (``../shared`` beside the repo)."""
    if not SHARED.exists():
        pytest.fail(f"real test data not found at {SHARED}; set FACECUE_SHARED")
    return SHARED
