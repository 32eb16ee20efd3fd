"""The command lines of the README, the tutorials and the how-to guides, as written.

Every ``gammastar …`` line of a shell code block and every ``gammastar …`` code span in README.md,
docs/tutorial/*.md and docs/howto/*.md is a documented command (CONFIG, M, N and the like are
placeholders for what the reader chooses). In the default suite each one parses against the
command line as it is (its command exists, its options exist, its values have the option's
type and are among its choices), the ``--help`` of each documented command works, and every
config a command names loads: a shipped one under analysis/, or one the page writes out as a
YAML block. The options with a fixed set of values list the values of their registries, and
``gammastar --help`` names the first command to run and the documentation without loading
numpy.

The slow test runs every command that names a shipped config and no placeholder, as written,
in a copy of the repository's layout (analysis/, data/) whose configs are the shipped ones
made small (:data:`SMALL`: fewer mock events, masses, ε points and flow epochs).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from _experiment import stated_yaml

from gammastar.cli import main

REPO = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "docs/tutorial/*.md", "docs/howto/*.md")
"""The pages whose commands a reader runs as written."""

SHELL = {"bash", "sh", "shell", "console"}
"""Languages of the code blocks that hold commands (untagged blocks hold printed output)."""

PLACEHOLDERS = {
    "CONFIG": "CONFIG",
    "CFG": "CONFIG",
    "…": "CONFIG",
    "RUN_DIR": "RUN_DIR",
    "OUT": "OUT",
    "M": "0.1",
    "N": "10",
    "STAGE": "select",
}
"""Words of a documented command that stand for the reader's own value, and a value of the
right type for parsing it."""

READERS_CONFIGS = {"my_analysis.yaml"}
"""Config names that stand for the reader's own config (Tutorial 2 ends with one)."""

_FENCE = re.compile(r"^(```|~~~)([^\n]*)\n(.*?)^\1[ \t]*$", re.DOTALL | re.MULTILINE)
_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_COMMAND = re.compile(r"^(?:\$\s+)?(?:\S*/)?gammastar\s+(\S.*)$")
_SEPARATORS = {"&&", "||", ";", "|"}


@dataclass(frozen=True)
class Documented:
    """One documented command line."""

    page: str
    line: int
    text: str
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: gammastar {self.text}"


def _argv(text: str) -> tuple[str, ...]:
    words = shlex.split(text, comments=True)
    cut = next((i for i, w in enumerate(words) if w in _SEPARATORS), len(words))
    return tuple(words[:cut])


@cache
def documented() -> tuple[Documented, ...]:
    """The documented commands of :data:`PAGES`, page by page in the order they appear."""
    found = []
    for pattern in PAGES:
        for page in sorted(REPO.glob(pattern)):
            text = page.read_text(encoding="utf-8")
            hits = []
            for m in _FENCE.finditer(text):
                if m.group(2).strip().lower() not in SHELL:
                    continue
                first = text.count("\n", 0, m.start(3)) + 1
                for k, line in enumerate(m.group(3).splitlines()):
                    if c := _COMMAND.match(line.strip()):
                        hits.append((first + k, c.group(1)))
            prose = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
            for m in _SPAN.finditer(prose):
                if c := _COMMAND.match(m.group(1).strip()):
                    hits.append((prose.count("\n", 0, m.start()) + 1, c.group(1)))
            rel = str(page.relative_to(REPO))
            found += [Documented(rel, n, t, _argv(t)) for n, t in sorted(hits)]
    return tuple(found)


@cache
def _commands() -> dict[str, Any]:
    """The click commands of the typer app, by name."""
    import typer

    from gammastar import cli

    cli._register()
    return dict(typer.main.get_command(cli.app).commands)


def _click_error() -> type[Exception]:
    """click's ``ClickException``, the base of its usage errors (typer may vendor click)."""
    import typer

    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _takes_value(param: Any) -> bool:
    return not (getattr(param, "is_flag", False) or getattr(param, "count", False))


def _split(cmd: Any, args: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The option names and the positional arguments of ``args`` (a command's words after its
    name).

    Raises:
        AssertionError: an option the command does not have.
    """
    options = {
        o: p
        for p in cmd.params
        if getattr(p, "param_type_name", "") == "option"
        for o in [*p.opts, *p.secondary_opts]
    }
    names, positional = [], []
    words = iter(args)
    for word in words:
        if word.startswith("-") and len(word) > 1 and not word.lstrip("-.").isdigit():
            name = word.split("=", 1)[0]
            assert name in options, f"no option {name} (options: {sorted(options)})"
            names.append(name)
            if "=" not in word and _takes_value(options[name]):
                next(words, None)
        else:
            positional.append(word)
    return names, positional


def _config_of(doc: Documented) -> str | None:
    """The config file a command names (its CONFIG argument), if any."""
    cmd = _commands()[doc.argv[0]]
    first = next((p for p in cmd.params if getattr(p, "param_type_name", "") == "argument"), None)
    _, positional = _split(cmd, doc.argv[1:])
    if first is None or first.name != "config" or not positional:
        return None
    return positional[0]


def _is_placeholder(word: str) -> bool:
    return word in PLACEHOLDERS or word in READERS_CONFIGS


def _runnable(doc: Documented) -> bool:
    """A command that names a shipped config and no placeholder."""
    config = _config_of(doc)
    return (
        config is not None
        and (REPO / config).is_file()
        and not any(_is_placeholder(w) for w in doc.argv)
    )


_EDITED = re.compile(r"^# (\S+)\.yaml: (\S+\.yaml) with these keys replaced\n")
"""The first line of a YAML block that edits a shipped config the reader copied: ``# NAME.yaml:
analysis/... .yaml with these keys replaced``."""


def _merged(base: dict, edits: dict) -> dict:
    """``base`` with the keys of ``edits`` replaced, mapping by mapping (the reader's edit)."""
    out = dict(base)
    for key, value in edits.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both else value
    return out


def _page_edits(page: str) -> dict[str, tuple[str, dict]]:
    """The edits a page makes to copied shipped configs (YAML blocks opening with
    :data:`_EDITED`'s line), by the copy's stem: (the shipped config, the keys replaced)."""
    text = (REPO / page).read_text(encoding="utf-8")
    out = {}
    for m in _FENCE.finditer(text):
        if m.group(2).strip().lower() in {"yaml", "yml"} and (e := _EDITED.match(m.group(3))):
            out[e.group(1)] = (e.group(2), yaml.safe_load(m.group(3)))
    return out


def _page_configs(page: str) -> dict[str, dict]:
    """The configs a page writes out as YAML blocks (those with a ``schema_version``), and the
    shipped ones it copies and edits (:func:`_page_edits`), by their ``name``."""
    text = (REPO / page).read_text(encoding="utf-8")
    out = {}
    for m in _FENCE.finditer(text):
        if m.group(2).strip().lower() in {"yaml", "yml"}:
            data = yaml.safe_load(m.group(3))
            if isinstance(data, dict) and "schema_version" in data and "name" in data:
                out[str(data["name"])] = data
    for stem, (shipped, edits) in _page_edits(page).items():
        data = _merged(yaml.safe_load((REPO / shipped).read_text(encoding="utf-8")), edits)
        assert data["name"] == stem, f"{page}: {stem}.yaml's edits name it {data['name']!r}"
        out[stem] = data
    return out


def test_the_pages_have_commands():
    """The extraction finds the commands the README and the demo tutorial are built on."""
    texts = {d.text.split("#")[0].strip() for d in documented()}
    assert "run analysis/na60_like_both.yaml" in texts
    events = "events analysis/na60_like_both.yaml --mass 0.4 --eps 1e-6 -n 1000 -o ev.hepmc3"
    assert events in texts
    assert {d.page for d in documented()} >= {"README.md", "docs/tutorial/01-demo.md"}
    assert sum(_runnable(d) for d in documented()) >= 5


@pytest.mark.parametrize("doc", documented(), ids=str)
def test_documented_command_parses(doc):
    """The command exists and takes the options and values the page gives it. A command line
    with its argument is parsed in full (types, choices, required options; placeholders
    replaced by a value of the right type); a mention without one (`gammastar reach
    --method`) has its option names checked."""
    commands = _commands()
    name, *args = doc.argv
    assert name in commands, f"{doc}: no command {name!r}"
    cmd = commands[name]
    _, positional = _split(cmd, tuple(args))
    if not positional:
        return
    args = [PLACEHOLDERS.get(a, a) for a in args]
    try:
        cmd.make_context(name, args)
    except _click_error() as exc:
        pytest.fail(f"{doc}: {exc.format_message()}")


@pytest.mark.parametrize("name", sorted({d.argv[0] for d in documented()}))
def test_help_of_each_documented_command(name, capsys):
    """`gammastar COMMAND --help` prints the command's usage and options."""
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert f" {name} [OPTIONS]" in out.split("Usage:", 1)[1].splitlines()[0], out
    assert "--help" in out


def _named_configs() -> list[tuple[str, str]]:
    """(page, config) of every config a documented command names, placeholders aside."""
    seen = {}
    for d in documented():
        config = _config_of(d)
        if config is not None and not _is_placeholder(config):
            seen.setdefault((d.page, config), None)
    return list(seen)


@pytest.mark.parametrize(("page", "config"), _named_configs(), ids=lambda v: str(v))
def test_every_named_config_loads(page, config, tmp_path):
    """A config a command names is shipped (the path, from the repository root) or written out
    on the same page as a YAML block whose `name` is the file's stem; either loads."""
    from gammastar.config import load_config

    if (REPO / config).is_file():
        load_config(REPO / config)
        return
    inline = _page_configs(page)
    stem = Path(config).stem
    assert stem in inline, f"{page} names {config}: neither shipped nor written out on the page"
    path = tmp_path / Path(config).name
    path.write_text(yaml.safe_dump(inline[stem], sort_keys=False, allow_unicode=True))
    load_config(path)


def test_tutorial_configs_load(tmp_path):
    """Every complete config a tutorial writes out loads (the reader copies them)."""
    from gammastar.config import load_config

    loaded = []
    for page in sorted(REPO.glob("docs/tutorial/*.md")):
        for name, data in _page_configs(str(page.relative_to(REPO))).items():
            path = tmp_path / f"{name}.yaml"
            path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
            assert load_config(path).name == name
            loaded.append(name)
    assert loaded


def _output_after(text: str, line: int) -> str | None:
    """The first untagged code block (printed output) that starts after ``line`` of ``text``."""
    for m in _FENCE.finditer(text):
        if text.count("\n", 0, m.start()) + 1 > line and not m.group(2).strip():
            return m.group(3)
    return None


def test_tutorial_selection_prints_what_the_page_shows(cms_data_dir, tmp_path, monkeypatch, capsys):
    """Tutorial 2's `gammastar select` on its own config, in the folder holding the CMS files:
    the counts line it prints is the one the page shows (the selection is deterministic), and
    the "assumed" lines it prints first (stderr) are the page's."""
    page = "docs/tutorial/02-your-data.md"
    text = (REPO / page).read_text(encoding="utf-8")
    runs = [d for d in documented() if d.page == page and _config_of(d) is not None]
    runs = [d for d in runs if not _is_placeholder(_config_of(d))]
    assert runs, f"{page}: no command with a config of the page"
    work = tmp_path / "mydata"
    work.mkdir()
    for f in Path(cms_data_dir).glob("*.root"):  # the data only: the configs are written below
        (work / f.name).symlink_to(f)
    configs = _page_configs(page)
    monkeypatch.chdir(work)
    for doc in runs:
        config = _config_of(doc)
        Path(config).write_text(yaml.safe_dump(configs[Path(config).stem], allow_unicode=True))
        assert main(list(doc.argv)) == 0, f"{doc}: {capsys.readouterr().err}"
        captured = capsys.readouterr()
        shown = _output_after(text, doc.line)
        assert shown is not None, f"{doc}: no output block after the command"
        assumed = [ln for ln in shown.splitlines() if ln.startswith("assumed: ")]
        said = [ln for ln in captured.err.splitlines() if ln.startswith("assumed: ")]
        assert said == assumed, doc
        assert shown.splitlines()[len(assumed)] == captured.out.splitlines()[0]


# --------------------------------------------------------------------------- the option values
def test_option_values_are_the_registries():
    """Options with a fixed set of values offer exactly what the code accepts: `--method`
    the statistics methods (and auto), `run --force` the pipeline's stages (and all),
    `--executor` the selection's executors, `--decay` the polarisations
    `source.setup.polarisation` knows, and `--channels` names every modelled decay."""
    from gammastar import pipeline
    from gammastar.cli import events, reach, run, select
    from gammastar.errors import GammastarError
    from gammastar.reach.stats import METHODS
    from gammastar.selection.executors import EXECUTORS
    from gammastar.source.decays import DECAYS
    from gammastar.source.setup import polarisation

    assert [m.value for m in reach.Method] == ["auto", *METHODS]
    assert [s.value for s in run.Stage] == [*pipeline.stage_names(), "all"]
    assert tuple(e.value for e in select.Executor) == EXECUTORS
    assert tuple(DECAYS) == events.CHANNELS
    help_text = _commands()["events"].params
    channels = next(p for p in help_text if p.name == "channels")
    assert all(c in channels.help for c in DECAYS)
    for mode in ("isotropic", "transverse"):
        rho00, _ = polarisation(mode, None, 0.5, None)
        assert 0.0 <= rho00 <= 1.0
    assert "data" in [d.value for d in events.Decay]
    with pytest.raises(GammastarError):
        polarisation("other", None, 0.5, None)


def test_bad_option_values_are_usage_errors(tmp_path, capsys):
    """A value outside an option's set stops before the config is read, naming the values."""
    missing = str(tmp_path / "missing.yaml")
    for argv, values in (
        (["reach", missing, "--method", "cls"], ["auto", "exact", "asymptotic", "toys"]),
        (["run", missing, "--force", "train", "--force", "fit"], ["select", "reach", "all"]),
        (["select", missing, "--executor", "spark"], ["iterative", "futures", "dask"]),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "missing.yaml" not in err
        assert all(repr(v) in err for v in values), err


def test_unknown_event_channel_is_one_line(tmp_path, capsys):
    """`--channels` names checked against the decays: one line naming them, exit status 2."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        stated_yaml("events: {beam_spot_sigma: [0, 0], target_interaction_length: 0.17}\n")
    )
    argv = ["events", str(cfg), "--mass", "0.5", "--eps", "1e-6", "-n", "5",
            "-o", str(tmp_path / "e.hepmc"), "--channels", "ee,tautau"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gammastar: error: --channels: 'tautau'")
    assert "KSKL" in err
    assert len(err.splitlines()) == 1


# --------------------------------------------------------------------------- gammastar --help
def _demo_command() -> str:
    """The command `make demo` runs, from the Makefile (without the venv's path)."""
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    recipe = text.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    line = next(ln.strip() for ln in recipe.splitlines()[1:] if "gammastar" in ln)
    return "gammastar " + line.split("gammastar ", 1)[1]


def test_app_help_names_the_first_command_and_the_docs(capsys):
    """`gammastar --help` names the demo's command (the one `make demo` runs, on a shipped
    config), `make demo`, and the documentation's index and how to build it."""
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    demo = _demo_command()
    assert demo in out
    assert (REPO / demo.split()[-1]).is_file()
    assert "make demo" in out
    assert "docs/index.md" in out
    assert (REPO / "docs" / "index.md").is_file()
    assert "make docs" in out


def test_help_loads_no_numerical_library():
    """`gammastar --help` and the help of the commands with registry-backed values start
    without numpy, torch or pyhf (the values are spelled out in the command modules)."""
    code = (
        "import sys\n"
        "from gammastar.cli import main\n"
        "for argv in (['--help'], ['run', '--help'], ['reach', '--help'], ['events', '--help'],"
        " ['select', '--help']):\n"
        "    assert main(argv) == 0\n"
        "print(sorted(m for m in ('numpy', 'torch', 'pyhf', 'scipy') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert res.stdout.strip().splitlines()[-1] == "[]"


# --------------------------------------------------------------------------- the small run
SMALL: dict[str, dict[str, Any]] = {
    "mock": {"events": 300_000},
    "flow": {"epochs": 2, "points_per_epoch": 4000, "transforms": 2, "hidden_features": [16, 16]},
    "validate": {"repeats": 4, "max_points": 1500},
    "reach": {"mass_points": 5, "eps_points": 8, "samples": 2000},
    "mcp": {"mass_points": 4, "n_samples": 2000},
    "idm": {"m1_points": 3, "samples": 2000, "y_points": 20},
    "uncertainties": {"impact_masses": 1},
}
"""What makes a shipped config small: section → keys replaced (a section the config does not
have stays absent). 3 × 10⁵ mock sources give the demo about 5000 opposite-sign pairs."""


def small_repository(root: Path) -> Path:
    """A copy of the repository's layout under ``root``: every shipped config made small
    (:data:`SMALL`; two validation masses, the last two), ``data/`` linked. Relative paths in
    the configs (``../data/…``, ``../runs/…``) resolve as they do in the repository."""
    for src in sorted((REPO / "analysis").rglob("*.yaml")):
        data = yaml.safe_load(src.read_text(encoding="utf-8"))
        for section, values in SMALL.items():
            if isinstance(data.get(section), dict):
                data[section].update(values)
        val = data.get("validate")
        if isinstance(val, dict) and "masses" in val:
            val["masses"] = val["figure_masses"] = val["masses"][-2:]
        dest = root / src.relative_to(REPO)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    (root / "data").symlink_to(REPO / "data")
    return root


def _outputs(doc: Documented) -> list[str]:
    """The files a command line names with -o/--out."""
    argv = doc.argv
    return [argv[i + 1] for i, w in enumerate(argv[:-1]) if w in {"-o", "--out"}]


@pytest.mark.slow
def test_documented_commands_run_on_a_small_run(tmp_path, monkeypatch, capsys):
    """Every documented command that names a shipped config and no placeholder runs, as
    written, on the small run: exit status 0, and the files it names with -o exist. The
    `gammastar run` lines go first (the other commands read a finished run); each distinct
    line runs once."""
    small_repository(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    todo: dict[tuple[str, ...], Documented] = {}
    for doc in documented():
        if _runnable(doc):
            todo.setdefault(doc.argv, doc)
    ordered = sorted(todo.values(), key=lambda d: d.argv[0] != "run")
    failed = []
    for doc in ordered:
        status = main(list(doc.argv))
        captured = capsys.readouterr()
        if status != 0:
            failed.append(f"{doc}: exit status {status}: {captured.err.strip()[-500:]}")
        missing = [o for o in _outputs(doc) if not (tmp_path / o).is_file()]
        if status == 0 and missing:
            failed.append(f"{doc}: did not write {missing}")
    assert not failed, "\n".join(failed)
    assert len(ordered) >= 5


# --------------------------------------------------------------------------- shipped configs
SHIPPED = sorted((REPO / "analysis").rglob("*.yaml"))
_KEY = re.compile(r"^(\s*)([A-Za-z_]\w*)\s*:(?:\s|$)")
_ROW = re.compile(r"^\| `([^`]+)` \| [^|]* \| ([^|]*) \|", re.MULTILINE)
_SHAPE_LENGTHS = {"z", "z1", "z2", "radius", "r_min", "r_max", "offset"}
_SHAPE_LENGTH_PREFIXES = ("half_",)


@cache
def _units() -> dict[str, str]:
    """Key → unit, from the unit column of the generated config reference."""
    text = (REPO / "docs" / "reference" / "config.md").read_text(encoding="utf-8")
    return {k: u.strip() for k, u in _ROW.findall(text) if u.strip()}


def _unit(path: str) -> str:
    """The unit of the config key ``path`` (dotted), "" for a number without one."""
    path = re.sub(r"\.per_flavour\.\w+", "", path)
    path = re.sub(r"^mcp\.sources\.\w+", "mcp.sources.<name>", path)
    path = re.sub(r"^reach\.observed\.\w+", "reach.observed.<channel>", path)
    if path in _units():
        return _units()[path]
    parts = path.split(".")
    # the shapes of detector.volume / detector.plane (gammastar.physics.volumes): lengths in m
    shape = parts[:1] == ["detector"] and len(parts) == 3 and parts[1] in {"volume", "plane"}
    if shape and (parts[2] in _SHAPE_LENGTHS or parts[2].startswith(_SHAPE_LENGTH_PREFIXES)):
        return "m"
    return "GeV" if path == "detector.daughters.min_energy" else ""


def _states(unit: str, text: str, key: str) -> bool:
    if key.endswith(("_mb", "_hz", "_s")):  # the key's name says it
        return True
    if unit == "m":
        return re.search(r"(?<![\w/])m(?![\w/²⁻])", text) is not None
    return unit in text


def _comment_start(line: str) -> int | None:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return i
    return None


def config_comment_problems(path: Path, label: str) -> list[str]:
    """What a shipped config's comments lack: the pointer to the config reference in the
    header (the comment lines before the first key); per key at most 2 comment lines (the
    comment lines right above it, its inline comment and that comment's continuation lines);
    and the unit of a key that has one (docs/reference/config.md), in those lines (for the
    keys of an inline mapping, in its own or its parent's). The note after the last key is
    free."""
    lines = path.read_text(encoding="utf-8").splitlines()
    keys = [i for i, ln in enumerate(lines) if not ln.lstrip().startswith("#") and _KEY.match(ln)]
    problems = []
    if "docs/reference/config.md" not in "\n".join(lines[: keys[0]]):
        problems.append("the header does not point to docs/reference/config.md")
    stack: list[tuple[int, str, str]] = []
    for i in keys:
        m = _KEY.match(lines[i])
        indent, key = len(m.group(1)), m.group(2)
        comments = []
        j = i - 1
        while i != keys[0] and j >= 0 and lines[j].lstrip().startswith("#"):
            comments.append(lines[j])
            j -= 1
        col = _comment_start(lines[i])
        if col is not None:
            comments.append(lines[i][col:])
            j = i + 1
            while (
                j <= keys[-1] and lines[j].lstrip().startswith("#") and lines[j].index("#") == col
            ):
                comments.append(lines[j])
                j += 1
        text = " ".join(comments)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent_text = stack[-1][2] if stack else ""
        stack.append((indent, key, text))
        dotted = ".".join(k for _, k, _ in stack)
        where = f"{label}:{i + 1}: {dotted}"
        if len(comments) > 2:
            problems.append(f"{where}: {len(comments)} comment lines")
        value = lines[i][m.end() : col].strip()
        checks = [(key, dotted, text)]
        if value.startswith("{"):
            checks += [(k, f"{dotted}.{k}", text + parent_text) for k in yaml.safe_load(value)]
        for name, dotted_key, said in checks:
            unit = _unit(dotted_key)
            if unit and value not in {"", "null"} and not _states(unit, said, name):
                problems.append(f"{label}:{i + 1}: {dotted_key} is in {unit}: its comment omits it")
    return problems


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_config_comments(path):
    """A shipped config points to the config reference once, at the top, and says what each
    key means with its unit in at most two comment lines; longer discussions go to the
    header or the note at the end."""
    problems = config_comment_problems(path, str(path.relative_to(REPO)))
    assert not problems, "\n".join(problems)


def test_comment_check_finds_what_it_should(tmp_path):
    """The check above on a config that breaks each rule once."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "# a config\nname: x\ndetector:\n  # one\n  # two\n  l1: 5.0   # m, three\n"
        "  theta_max: 0.1\n  volume:\n    shape: box\n    z1: 3.0\n"
    )
    problems = config_comment_problems(bad, bad.name)
    assert any("reference" in p for p in problems)
    assert any("detector.l1: 3 comment lines" in p for p in problems)
    assert any("detector.theta_max is in rad" in p for p in problems)
    assert any("detector.volume.z1 is in m" in p for p in problems)
    assert len(problems) == 4


# --------------------------------------------------------------------------- Tutorial 3
TUTORIAL3 = "docs/tutorial/03-own-data-to-reach.md"


def _shell_lines(page: str) -> list[tuple[int, str]]:
    """(line, text) of every line of the page's shell blocks, in order."""
    text = (REPO / page).read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        if m.group(2).strip().lower() in SHELL:
            first = text.count("\n", 0, m.start(3)) + 1
            out += [(first + k, ln.strip()) for k, ln in enumerate(m.group(3).splitlines())]
    return [(n, t) for n, t in out if t and not t.startswith("#")]


def _run_script(argv: list[str], extra: tuple[str, ...] = ()) -> str:
    """A ``python SCRIPT ARGS`` line of a page, with this interpreter and this checkout's
    package; its standard output."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    res = subprocess.run(
        [sys.executable, *argv[1:], *extra], check=False, capture_output=True, text=True, env=env
    )
    assert res.returncode == 0, f"{' '.join(argv)}: {res.stderr[-2000:]}"
    return res.stdout


def _write_page_config(page: str, config: str) -> None:
    """The config a command names, as the reader has it: written out from the page, or the
    copied shipped one with the page's keys replaced."""
    path = Path(config)
    edits = _page_edits(page)
    if path.stem in edits:
        assert path.is_file(), f"{page}: {config} is edited before it is copied"
        data = _merged(yaml.safe_load(path.read_text(encoding="utf-8")), edits[path.stem][1])
    else:
        data = _page_configs(page)[path.stem]
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _tutorial3_config() -> dict:
    configs = _page_configs(TUTORIAL3)
    (name,) = [n for n, d in configs.items() if "input" in d]
    return configs[name]


def test_tutorial3_states_what_a_copy_of_the_mock_would_assume():
    """Tutorial 3's config is written from scratch for data that are not the mock's: no
    `mock:` section, none of the mock's settings (its shipped efficiency map, `n_pot:
    from_input`, `remove_eta_mumu: truth`), every selection choice stated (the keys a config
    outside the mock otherwise takes from the mock), and the exposure it states is the one
    the page shows the script printing."""
    cfg = _tutorial3_config()
    assert "mock" not in cfg
    assert "efficiency_na60_like" not in str(cfg["unfold"]["efficiency_map"])
    assert cfg["background"]["remove_eta_mumu"] != "truth"
    for section, keys in {
        "beam": ("energy", "n_pot", "target", "interaction_lengths", "sigma_inel_mb"),
        "input": ("files", "tree", "layout"),
        "selection": ("lepton_min_energy", "mass_min", "mass_max"),
        "unfold": ("efficiency_map",),
    }.items():
        missing = [k for k in keys if k not in cfg[section]]
        assert not missing, f"{TUTORIAL3}: {section} leaves {missing} to the mock's defaults"
    assert isinstance(cfg["beam"]["n_pot"], float)
    from gammastar.config import config_from_dict

    assert config_from_dict(cfg).assumed() == {}  # `gammastar select` prints no "assumed" line
    text = (REPO / TUTORIAL3).read_text(encoding="utf-8")
    script = next(n for n, t in _shell_lines(TUTORIAL3) if "make_experiment_ntuple.py" in t)
    printed = _output_after(text, script)
    assert printed is not None
    shown = float(printed.split("protons on target:")[1].split()[0])
    # the page prints 4 significant digits: the config must state that number
    assert cfg["beam"]["n_pot"] == pytest.approx(shown, rel=5e-4)


def test_tutorial3_script_and_selection(tmp_path, monkeypatch, capsys):
    """Tutorial 3's script on a small sample (2·10⁴ mock sources, not the page's 6·10⁵) makes a
    file that looks like an experiment's, and the page's `gammastar select` runs on it with
    the page's config.

    The file: the one tree `reco`, the branches the config maps and the experiment's
    bookkeeping, nothing of the mock's (no `events` tree, `muon_*` or `truth*` branches, no
    `meta`); the map: one TH2 with ε in (0, 0.85], rising with mass and pair p_T, the trend
    data/make_experiment_ntuple.py's formula has (ε0 = 0.85). The selection: every pair
    inside the map, the map's file recorded, and more opposite-sign than like-sign pairs (the
    mock's NA60-like cocktail is mostly signal, about 10% combinatorial)."""
    import uproot

    from gammastar.corrections.unfold.efficiency import load_efficiency_map

    lines = _shell_lines(TUTORIAL3)
    script = next(shlex.split(t) for _, t in lines if "make_experiment_ntuple.py" in t)
    cfg = _tutorial3_config()
    work = tmp_path / "mydata"
    work.mkdir()
    script[1] = str(REPO / "data" / Path(script[1]).name)
    _run_script(script, ("--events", "20000", "--out", str(work)))
    monkeypatch.chdir(work)

    (ntuple,) = cfg["input"]["files"]
    with uproot.open(ntuple) as f:
        assert [k.split(";")[0] for k in f] == [cfg["input"]["tree"]]
        branches = set(f[cfg["input"]["tree"]].keys())
    assert set(cfg["input"]["branches"].values()) <= branches
    assert not [b for b in branches if b.startswith(("muon_", "truth"))]
    assert branches - set(cfg["input"]["branches"].values()) == {"run", "nmu"}

    em = load_efficiency_map(cfg["unfold"]["efficiency_map"])
    assert em.values.min() > 0.0
    assert em.values.max() <= 0.85
    assert (np.diff(em.values, axis=0) >= 0).all()
    assert (np.diff(em.values, axis=1) >= 0).all()

    (select,) = [d for d in documented() if d.page == TUTORIAL3 and d.argv[0] == "select"]
    _write_page_config(TUTORIAL3, _config_of(select))
    assert main(list(select.argv)) == 0, capsys.readouterr().err
    capsys.readouterr()
    out = json.loads((work / cfg["output"] / "select.json").read_text(encoding="utf-8"))
    assert out["unfold"]["n_outside_map"] == 0
    assert out["unfold"]["map"].endswith(cfg["unfold"]["efficiency_map"])
    counts = out["counts"]
    assert counts["os"] > 3 * (counts["pp"] + counts["mm"]) > 0


def _small_page_config(path: Path) -> None:
    """A config the reader wrote, made small as the shipped ones are (:data:`SMALL`)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for section, values in SMALL.items():
        if isinstance(data.get(section), dict):
            data[section].update(values)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


@pytest.mark.slow
def test_tutorial3_runs_as_written(tmp_path, monkeypatch, capsys):
    """Every command of Tutorial 3's shell blocks, in order, in a copy of the repository's
    layout (:func:`small_repository`): the script at its default size prints what the page
    shows (the mock is deterministic for its seed), so does `gammastar select`; the reader's
    configs are written from the page (flow, validation and reach made small, as the shipped
    ones are here) and the copied facility config edited with the page's keys. The reach then
    reads the run's yields at the data's N_POT and excludes some mass (SHiP's 6·10²⁰ POT on a
    background-free search exclude every mass of the full run's scan)."""
    small_repository(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    text = (REPO / TUTORIAL3).read_text(encoding="utf-8")
    written: set[str] = set()
    ran = []  # the gammastar commands
    for line, command in _shell_lines(TUTORIAL3):
        for part in (p.strip() for p in command.split("&&")):
            argv = shlex.split(part, comments=True)
            where = f"{TUTORIAL3}:{line}: {part}"
            if argv[0] == "mkdir":
                for d in argv[1:]:
                    if d != "-p":
                        Path(d).mkdir(parents=True, exist_ok=True)
            elif argv[0] == "cd":
                monkeypatch.chdir(argv[1])
            elif argv[0] == "cp":
                shutil.copyfile(argv[1], argv[2])
            elif argv[0].endswith("/python"):
                printed = _run_script(argv)
                assert printed.strip() == (_output_after(text, line) or "").strip(), where
            elif c := _COMMAND.match(part):
                doc = Documented(TUTORIAL3, line, c.group(1), _argv(c.group(1)))
                config = _config_of(doc)
                if config is not None and config not in written:
                    _write_page_config(TUTORIAL3, config)
                    _small_page_config(Path(config))
                    written.add(config)
                status = main(list(doc.argv))
                captured = capsys.readouterr()
                assert status == 0, f"{where}: {captured.err[-1000:]}"
                ran.append(doc.argv[0])
                if doc.argv[0] == "select":
                    shown = _output_after(text, line)
                    assert shown is not None, where
                    assert captured.out.splitlines()[0] == shown.strip(), where
            else:
                pytest.fail(f"{where}: a command the test does not know how to run")
    assert ran == ["select", "yields", "train", "validate", "reach"]
    cfg = _tutorial3_config()
    edits = _page_edits(TUTORIAL3)
    (facility,) = edits
    data_run = Path(cfg["output"])
    yields = json.loads((data_run / "yields.json").read_text(encoding="utf-8"))
    assert yields["meta"]["n_pot"] == pytest.approx(cfg["beam"]["n_pot"], rel=1e-12)
    reach_dir = Path(edits[facility][1]["output"])
    reach = json.loads((reach_dir / "reach.json").read_text(encoding="utf-8"))
    assert any(e is not None for e in reach["expected"]["eps_low"])
    assert (reach_dir / "figures" / "reach.png").is_file()
