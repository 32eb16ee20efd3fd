"""The documentation: generated references up to date, the site's pages present, links that
resolve, and no work-log text in the user-facing files or the code.

The site itself (``make docs``: ``mkdocs build --strict``) is built by the last test, which
needs the ``docs`` extra and skips without it.
"""

from __future__ import annotations

import json
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


def _generate(flag: str) -> subprocess.CompletedProcess:
    """docs/_generate.py ``flag`` in the repository. ``-P``: docs/ is not put on
    ``sys.path``, where a folder of it could shadow a library."""
    return subprocess.run([sys.executable, "-P", str(DOCS / "_generate.py"), flag], cwd=REPO,
                          capture_output=True, text=True, check=False)  # fmt: skip


def test_generated_references_are_up_to_date():
    """docs/reference/{config,cli,outputs}.md are what docs/_generate.py makes of the code
    (``make docs-reference`` rewrites them)."""
    run = _generate("--check")
    assert run.returncode == 0, run.stderr + run.stdout


def _word_counts() -> dict:
    """docs/_generate.py --words: the pages' word counts, its last line as JSON."""
    run = _generate("--words")
    return {"rc": run.returncode, "out": run.stdout, **json.loads(run.stdout.splitlines()[-1])}


def test_hand_written_docs_stay_short():
    """README.md and docs/ hold at most 16,000 hand-written words (generated pages and the
    generated sections of hand-written ones not counted): ``python -P docs/_generate.py
    --words`` lists them by page."""
    counts = _word_counts()
    assert counts["limit"] == 16_000  # the limit the documentation was cut to
    assert counts["hand_written"] <= counts["limit"], counts["out"]
    assert counts["rc"] == 0, counts["out"]
    # the generated references are counted apart: they are many thousand words
    assert counts["generated"] > counts["hand_written"] / 2, counts["out"]


def test_the_quoted_pythia_version_is_the_pinned_one():
    """Every "PYTHIA 8.3xx" that README.md, docs/, the analysis configs and the package quote
    is the version pyproject.toml pins (``pythia8mc==8.3xx.y``): the cocktail inputs were
    made with it."""
    pin = re.search(r'"pythia8mc==(8\.\d+)\.\d+"', (REPO / "pyproject.toml").read_text())
    assert pin, "pyproject.toml pins no pythia8mc"
    wrong = []
    for where in ("README.md", "docs", "analysis", "src"):
        paths = [REPO / where] if where.endswith(".md") else (REPO / where).rglob("*")
        for path in paths:
            if path.suffix not in {".md", ".py", ".yaml"}:
                continue
            for m in re.finditer(r"PYTHIA (8\.\d{3})", path.read_text(encoding="utf-8")):
                if m.group(1) != pin.group(1):
                    wrong.append(f"{path.relative_to(REPO)}: {m.group(0)}")
    assert not wrong, f"not the pinned PYTHIA {pin.group(1)}: {wrong}"


def test_the_python_version_the_pages_name_is_pyproject_s():
    """ "Python ≥ X" on README.md and the pages is pyproject.toml's ``requires-python``."""
    pin = re.search(r'requires-python = ">=([\d.]+)"', (REPO / "pyproject.toml").read_text())
    assert pin, "pyproject.toml: no requires-python"
    quoted = {
        (page, v)
        for page, text in _quotes(r"Python ≥ [\d.]+", 0)
        for v in re.findall(r"Python ≥ ([\d.]+)", text)
    }
    assert quoted, "no page names the Python version"
    assert all(v == pin.group(1) for _, v in quoted), (pin.group(1), quoted)


def test_the_mock_page_s_truth_codes_are_the_code_s():
    """docs/reference/mock.md's source table (code, name) and its electron codes "8–16" are
    ``gammastar.cocktail_channels.Channel``'s and ``ELECTRON_CHANNELS``'s."""
    from gammastar.cocktail_channels import ELECTRON_CHANNELS, Channel

    page = (DOCS / "reference" / "mock.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (\d+) `(\w+)` \|", page, re.MULTILINE))
    assert rows, "mock.md: no source table"
    assert {int(c): n for c, n in rows.items()} == {
        c.value: c.name for c in Channel if c not in ELECTRON_CHANNELS
    }
    lo, hi = min(ELECTRON_CHANNELS), max(ELECTRON_CHANNELS)
    assert f"truth codes {lo.value}–{hi.value}" in page


def _schema_keys(node: object, path: str = "") -> list[tuple[str, dict]]:
    """(dotted path, schema) of every named key of a JSON Schema, at any depth: each property,
    and each definition that has properties of its own."""
    out: list[tuple[str, dict]] = []
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            key = f"{path}.{name}" if path else name
            out.append((key, sub))
            out += _schema_keys(sub, key)
        for word in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(word) or []:
                out += _schema_keys(sub, path)
        for word in ("additionalProperties", "items"):
            if isinstance(node.get(word), dict):
                out += _schema_keys(node[word], f"{path}.<name>" if word[0] == "a" else f"{path}[]")
        for name, sub in (node.get("definitions") or {}).items():
            out += _schema_keys(sub, name)
    return out


def test_every_output_key_is_described_in_the_reference():
    """Every key of every JSON Schema of the run directory's files (src/gammastar/schemas)
    says what it means (`description`: meaning and unit), and docs/reference/outputs.md, the
    page generated from the schemas, has a row for it with that text."""
    from gammastar.core import artifacts, rundir

    folder = rundir.SCHEMA_DIR / str(artifacts.SCHEMA_VERSION)
    page = (DOCS / "reference" / "outputs.md").read_text(encoding="utf-8")
    cells = [re.split(r"(?<!\\)\|", ln)[1:-1] for ln in page.splitlines() if ln.startswith("| `")]
    rows = {c[0].strip().strip("`"): c[-1] for c in cells}
    files = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json")}

    def described(sub: dict, base: str) -> bool:  # its own text, or that of what it refers to
        if sub.get("description"):
            return True
        file, _, pointer = sub.get("$ref", "").partition("#")
        target = files.get(file or base) if "$ref" in sub else None
        for part in pointer.strip("/").split("/") if target and pointer else []:
            target = target[part]
        return bool(target and target.get("description"))

    undescribed, missing = [], []
    n = 0
    for name, schema in sorted(files.items()):
        for key, sub in _schema_keys(schema):
            n += 1
            if not described(sub, name):
                undescribed.append(f"{name}: {key}")
            last = key.rsplit(".", 1)[-1]
            if not any(r in (key, last) or r.endswith(f".{last}") for r in rows):
                missing.append(f"{name}: {key}")
    assert n > 200, n  # the walk found the schemas' keys
    assert not undescribed, "keys without a description:\n" + "\n".join(undescribed)
    assert not missing, "keys missing from docs/reference/outputs.md:\n" + "\n".join(missing)
    assert not [k for k, text in rows.items() if text.strip() in {"", "—"}], "an empty meaning"


def _quotes(pattern: str, reach: int = 150) -> list[tuple[str, str]]:
    """(page, text) around every match of ``pattern`` in docs/ and README.md: ``reach``
    characters either side, code blocks left out and line breaks joined."""
    out = []
    for page in _markdown_files():
        text = " ".join(_FENCE.sub("", page.read_text(encoding="utf-8")).split())
        for m in re.finditer(pattern, text):
            around = text[max(0, m.start() - reach) : m.end() + reach]
            out.append((str(page.relative_to(REPO)), around))
    return out


def test_the_n_pot_limit_the_pages_quote_is_the_code_s():
    """Every page that quotes the zero-background 90% CL limit with a 20% log-normal N_POT
    uncertainty quotes the number the exact construction gives (2.353 to the three digits the
    pages print; ``tests/test_stats.py`` checks it against an independent quadrature)."""
    from gammastar.reach.stats import upper_limit
    from gammastar.reach.stats.model import Channel, Model

    model = Model([Channel("mumu", [1.0], [1e-9], observed=[0])], n_pot_unc=0.2)
    limit = f"{upper_limit(model, cl=0.9, method='exact').observed:.3f}"
    quotes = _quotes(r"20% log-normal N_POT")
    found: dict[str, set[str]] = {}
    for page, text in quotes:  # 2.3x near the phrase: not 2.3026 (ln 10), not 2.996 (95% CL)
        found.setdefault(page, set()).update(re.findall(r"\b2\.3\d{1,2}\b", text))
    assert {"docs/explanation/physics.md", "docs/explanation/reach.md"} <= set(found), quotes
    assert all(numbers == {limit} for numbers in found.values()), (limit, found)


def test_the_auto_order_the_reach_page_gives_is_the_registry_s():
    """docs/explanation/reach.md lists the CLs methods in the order `reach.method: auto` tries
    them (the registry gammastar.reach.stats.METHODS), and the background above which the
    asymptotic formulae are taken is the rule's."""
    from gammastar.reach.stats import METHODS, choose_method
    from gammastar.reach.stats.model import Channel, Model

    page = (DOCS / "explanation" / "reach.md").read_text(encoding="utf-8")
    section = page.split("## 4. Which CLs calculation", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^- \*\*(\w+)\*\*", section, re.MULTILINE)
    assert listed == list(METHODS), listed
    b = float(re.search(r"at least (\d+)\s+background events", section).group(1))

    def chosen(background: float) -> str:  # too many counts to enumerate: not exact
        return choose_method(Model([Channel("mumu", [1.0] * 40, [background] * 40)]))

    assert chosen(b) == "asymptotic"
    assert chosen(0.9 * b) == "toys"


def test_each_validation_status_is_backed_by_what_checks_it():
    """docs/validation/index.md: every row's "holds" opens with yes, partly or a pointer; each
    path of "checked by" exists; a "yes" names a test (tests/ or validation/tests/) that asserts
    the claim, so that a broken claim fails a test, and "partly" says what misses."""
    page = (DOCS / "validation" / "index.md").read_text(encoding="utf-8")
    rows = [
        [c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]]
        for ln in page.splitlines()
        if ln.startswith("| **")
    ]
    assert len(rows) >= 10, "no claims table"
    for claim, holds, _details, checked in rows:
        paths = re.findall(r"`([\w./-]+)`", checked)
        assert paths, claim
        for path in paths:
            assert (REPO / path).exists(), f"{claim}: {path} does not exist"
        tests = [p for p in paths if re.match(r"(validation/)?tests/test_\w+\.py$", p)]
        if holds.startswith("yes"):
            assert tests, f"{claim}: 'yes' with no test asserting it"
            for path in tests:
                assert re.search(r"^def test_", (REPO / path).read_text(), re.MULTILINE), path
        elif holds.startswith("partly"):
            assert holds.startswith("partly: "), f"{claim}: 'partly' without what misses"
        else:
            assert holds.startswith(("the demo's count", "see the page")), f"{claim}: {holds}"


def test_the_demo_s_selection_line_is_the_same_on_every_page():
    """The demo's summary line (README.md, the demo tutorial) is one run's: every page that
    prints a `selection: N OS, ...` line of the demo prints the same counts."""
    lines = set()
    for page in (REPO / "README.md", DOCS / "tutorial" / "01-demo.md"):
        lines |= set(re.findall(r"selection: \d+ OS, \d+ \+\+, \d+ -- pairs", page.read_text()))
    assert len(lines) == 1, lines


def _generated(page: Path, name: str) -> list[str]:
    """The lines of ``page``'s generated section ``name`` (docs/_generate.py's markers)."""
    text = page.read_text(encoding="utf-8")
    m = re.search(
        rf"<!-- BEGIN generated: {name} -->\n(.*?)<!-- END generated: {name} -->", text, re.DOTALL
    )
    assert m, f"{page.relative_to(REPO)}: no generated section {name!r}"
    return m.group(1).strip().strip("`").strip().splitlines()


def test_the_readme_s_demo_summary_is_the_tutorial_s():
    """README.md quotes the end of the demo's summary that the tutorial shows whole, both filled
    from one run by ``make docs`` (docs/_generate.py --demo-run): the README's lines are the
    tutorial's from its `selection:` line on, and the summary has every stage's line."""
    tutorial = _generated(DOCS / "tutorial" / "01-demo.md", "demo_summary")
    readme = _generated(REPO / "README.md", "demo_summary")
    first = next(i for i, line in enumerate(tutorial) if line.startswith("selection:"))
    assert readme == tutorial[first:]
    for start in ("A′ yield per POT per ε² ± total", "flow validation:", "expected 90% CL exclusion:"):
        assert any(line.startswith(start) for line in readme), start


def test_the_demo_s_figures_are_the_generated_ones():
    """Every figure of the demo that README.md and the pages show is one ``make docs`` copies
    from the demo's run (docs/_generate.py's DEMO_FIGURES), none committed by hand."""
    import ast

    # DEMO_FIGURES read from docs/_generate.py's source (a literal): no test imports a script
    tree = ast.parse((DOCS / "_generate.py").read_text(encoding="utf-8"))
    demo_figures = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "DEMO_FIGURES"
    )
    shown = set()
    for page in _markdown_files():
        shown |= set(re.findall(r"images/(demo-[\w-]+\.png)", page.read_text(encoding="utf-8")))
    present = {p.name for p in (DOCS / "images").glob("demo-*.png")}
    assert shown, "no page shows a demo figure"
    assert shown <= set(demo_figures), shown - set(demo_figures)
    assert present == set(demo_figures), present ^ set(demo_figures)


def test_the_workspace_files_the_pages_name_are_the_demo_s():
    """Every `m_<mass>.json` a page names (workspaces, exported likelihoods of the demo) is a
    mass of the demo's reach grid: `reach.mass_points` masses over the range its generated
    summary line prints (README.md), named as gammastar.core.rundir.workspace_name names them."""
    import numpy as np

    from gammastar.config import load_config
    from gammastar.core.rundir import workspace_name

    line = next(x for x in _generated(REPO / "README.md", "demo_summary") if "CL exclusion" in x)
    lo, hi = map(float, re.search(r"masses \(([\d.]+)-([\d.]+) GeV\)", line).groups())
    points = load_config(REPO / "analysis" / "na60_like_both.yaml").reach.mass_points
    names = {workspace_name(m).rsplit("/", 1)[1] for m in np.linspace(lo, hi, points)}
    quoted = {
        (str(page.relative_to(REPO)), n)
        for page in _markdown_files()
        for n in re.findall(r"m_\d\.\d+\.json", page.read_text(encoding="utf-8"))
    }
    assert quoted, "no page names a workspace file"
    assert all(n in names for _, n in quoted), sorted(q for q in quoted if q[1] not in names)


def test_installation_lists_every_extra_and_its_packages():
    """docs/installation.md's table of extras names each extra of pyproject.toml with every
    package it installs."""
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    page = (DOCS / "installation.md").read_text(encoding="utf-8")
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| `([\w-]+)` \| ([^|]*) \|", page, re.MULTILINE)
    }
    for extra, packages in extras.items():
        assert extra in rows, f"installation.md: no row for the extra {extra!r}"
        for requirement in packages:
            name = re.split(r"[<>=\[ ;]", requirement, maxsplit=1)[0]
            assert name in rows[extra], f"installation.md: extra {extra!r} lacks {name}"


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
