"""One version: the package's, the changelog's newest release and the citation's agree."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from gammastar import __version__

REPO = Path(__file__).resolve().parents[1]


def test_package_changelog_and_citation_name_one_version():
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    # the newest released heading (an "Unreleased" one above it names no version)
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", changelog, flags=re.MULTILINE)
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__), __version__
    assert released[0] == __version__, (released[:2], __version__)
    assert str(citation["version"]) == __version__
