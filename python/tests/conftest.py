"""The pytest suite of the loom package (python/tests). CTest runs it with PYTHONPATH=build/python (the
build tree's package); run by hand with `PYTHONPATH=build/python python3 -m pytest python/tests`, or after
`pip install ./python` with plain `python3 -m pytest python/tests`."""
import os
from pathlib import Path

import pytest

SOURCE_DIR = Path(os.environ.get("LOOM_SOURCE_DIR", Path(__file__).resolve().parents[2]))


@pytest.fixture
def source_dir() -> Path:
    return SOURCE_DIR
