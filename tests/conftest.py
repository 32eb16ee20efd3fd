"""Shared fixtures."""

from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data", "cms-open-data")


@pytest.fixture(scope="session")
def repo_dir() -> str:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def cms_data_dir() -> str:
    """The CMS open-data files beside the repository (skip when absent)."""
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(f"CMS open data not found at {SHARED_DATA}")
    return SHARED_DATA
