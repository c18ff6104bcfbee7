"""Shared fixtures: the fixture raw folder, one built copy of it, and a writable copy to break.

The whole session runs offline: nothing may reach the Hugging Face Hub.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

FIXTURE_RAW = Path(__file__).parent / "fixtures" / "raw"


@pytest.fixture(scope="session")
def fixture_raw() -> Path:
    """The read-only fixture raw folder (en-0001, en-0002, zh-0001)."""
    return FIXTURE_RAW


@pytest.fixture(scope="session")
def built_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture raw folder built once per session with ``build_dataset``; do not modify it."""
    from medsyn.data.build import build_dataset

    out = tmp_path_factory.mktemp("built") / "medsyn"
    build_dataset(FIXTURE_RAW, out, progress=False)
    return out


@pytest.fixture
def raw_copy(tmp_path: Path) -> Path:
    """A writable copy of the fixture raw folder at ``tmp_path/raw``, for tests that break a case."""
    dst = tmp_path / "raw"
    shutil.copytree(FIXTURE_RAW, dst)
    return dst


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random vision-language model, built once per session (offline, seconds)."""
    from medsyn.eval.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
