"""The documentation: generated references up to date, the site's pages present, links that
resolve, and no work-log text in the user-facing files or the code.

The site itself (``make docs``: ``mkdocs build --strict``) is built by the last test, which
needs the ``docs`` extra and skips without it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


def test_generated_references_are_up_to_date():
    """docs/reference/{config,cli,outputs}.md are what docs/_generate.py makes of the code
    (``make docs-reference`` rewrites them). ``-P``: docs/ is not put on ``sys.path``, where
    a folder of it could shadow a library."""
    run = subprocess.run(
        [sys.executable, "-P", str(DOCS / "_generate.py"), "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr + run.stdout


def _nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_pages(item)]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_pages(value)]
    return []


def test_every_page_of_the_nav_exists():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = _nav_pages(config["nav"])
    assert len(pages) == len(set(pages)), "a page is twice in the nav"
    missing = [p for p in pages if not (DOCS / p).is_file()]
    assert not missing, f"mkdocs.yml nav names missing pages: {missing}"


_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.DOTALL | re.MULTILINE)
_CODE = re.compile(r"`+[^`\n]*`+")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_INLINE = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_DEFINITION = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s+<?(\S+?)>?(?:\s|$)", re.MULTILINE)


def relative_links(text: str) -> list[str]:
    """The relative link and image targets of Markdown ``text`` (without anchors), outside
    code blocks, code spans and HTML comments.

    Example:
        >>> relative_links("[a](x.md#s) [b](https://x.org) `[c](y.md)` [d](#top)")
        ['x.md']
    """
    text = _COMMENT.sub("", _FENCE.sub("", text))
    text = _CODE.sub("", text)
    out = []
    for target in [*_INLINE.findall(text), *_DEFINITION.findall(text)]:
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith(("#", "/")):
            continue
        path = urllib.parse.unquote(target.split("#", 1)[0])
        if path:
            out.append(path)
    return out


def _markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


@pytest.mark.parametrize("page", _markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_to_existing_files(page):
    """Every relative link of README.md and docs/ reaches a file of the repository (GitHub
    resolves them so; on the site, ``mkdocs build --strict`` also checks anchors)."""
    text = page.read_text(encoding="utf-8")
    broken = [t for t in relative_links(text) if not (page.parent / t).exists()]
    assert not broken, f"{page.relative_to(REPO)}: links to missing files {broken}"


WORK_LOG = {
    "a numbered work session": re.compile(r"\bsession \d+", re.IGNORECASE),
    "an issue number": re.compile(r"\bissue #?\d+", re.IGNORECASE),
    "a date": re.compile(r"\b20\d\d-\d\d-\d\d\b"),
    # written with character classes so that the guard does not match its own source
    "a scratch path": re.compile(r"/[t]mp/"),
    "a machine path": re.compile(r"/work/"),
    "a machine load": re.compile(r"[l]oad average|\b[l]oad \d", re.IGNORECASE),
}
"""Text that belongs to the history of the work, not to the software (dates go to
CHANGELOG.md, by version)."""

GUARDED = ("README.md", "docs", "analysis/*.yaml", "src", "tests", "benchmarks", "validation")
TEXT_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".toml", ".json", ".txt", ".cfg", ".html"}


def _guarded_files(where: str) -> list[Path]:
    if "*" in where:
        found = sorted(REPO.glob(where))
    elif (REPO / where).is_file():
        found = [REPO / where]
    else:
        found = sorted(p for p in (REPO / where).rglob("*") if p.suffix in TEXT_SUFFIXES)
    this = Path(__file__).resolve()  # spells the patterns themselves
    return [p for p in found if p.is_file() and "__pycache__" not in p.parts and p != this]


@pytest.mark.parametrize("where", GUARDED)
def test_no_work_log_text(where):
    """README.md, docs/, the analysis configs, the package, the tests, the benchmarks and the
    validation studies speak of the software only: no work-session numbers, issue numbers,
    dates (CHANGELOG.md keeps those), scratch or machine paths, or machine loads."""
    hits = []
    for path in _guarded_files(where):
        text = path.read_text(encoding="utf-8", errors="replace")
        for what, pattern in WORK_LOG.items():
            if what == "a date" and path.name == "CHANGELOG.md":
                continue
            for m in pattern.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                hits.append(f"{path.relative_to(REPO)}:{line}: {what} ({m.group(0)!r})")
    assert not hits, f"{len(hits)} work-log markers:\n" + "\n".join(hits[:40])


@pytest.mark.slow  # `make docs` (in CI) runs the same build
def test_site_builds_strict(tmp_path):
    """``mkdocs build --strict`` (what ``make docs`` runs): no broken link or anchor, every
    page in the nav, every API docstring readable."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings")
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert (tmp_path / "site" / "reference" / "config" / "index.html").is_file()
