"""The whole chain in order (`gammastar run`): each stage skipped when up to date.

A stage is up to date when the config sections it reads hash as they did when it last
finished, its outputs exist and are the very files it wrote (size and modification time in
nanoseconds as recorded then: an output overwritten by a standalone command, e.g.
``gammastar generate --force --seed 99``, reruns the stage), its input files are the ones it
read (the same set, ``input.files`` globs expanded, efficiency/acceptance maps and the
reach's ``yields``/``flow`` included, each with the size and mtime it had then).
Upstream reruns propagate through these identities (a rerun stage rewrites its outputs, the
next stage's inputs). Timestamps are compared only with themselves, never across files, so
skewed clocks or copied timestamps cannot make a stage rerun forever. The record is ``<run>/.gammastar/<stage>.json``,
written only after the stage succeeded, so an interrupted run loses nothing that had finished;
a record without output or input identities (written by an older gammastar) counts as not up
to date.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gammastar.config import AnalysisConfig, flavour_config
from gammastar.core import rundir, runlock
from gammastar.core.artifacts import ENVIRONMENT_ERRNOS, SCHEMA_VERSION, os_error_text
from gammastar.core.interrupt import stage as running
from gammastar.core.urls import is_url
from gammastar.core.verdicts import n_inside
from gammastar.corrections.unfold import split_map_spec
from gammastar.errors import ConfigError, EnvironmentFailure, GammastarError
from gammastar.io import branch_map, check_inputs, fileset_from_config
from gammastar.mock.detector import resolve_efficiency_map
from gammastar.reach import edges
from gammastar.yields.error_parts import PART_LABELS, error_parts
from gammastar.yields.npot import meta_from_root

log = logging.getLogger(__name__)

STATE_DIR = rundir.STATE_DIR


@dataclass(frozen=True)
class Stage:
    """One step of the chain.

    Arguments:
        name: stage name (also the ``--force`` value).
        func: the stage's function, called as ``func(config)`` (its outputs overwritten: the
            pipeline owns them); it imports its stage when called (``modules``).
        sections: config sections (top-level keys) the stage reads.
        outputs: run-directory-relative files the stage writes.
        needs: upstream stages whose outputs this stage reads.
        needs_if: further upstream stages for some configs (a function of the config).
        external: callable giving further files the stage reads (absolute paths).
        enabled: whether the stage applies to this config.
        check: raises a ``GammastarError`` for a config the stage would refuse; called for
            every selected stage before any stage runs (so a run writes nothing for it).
        modules: what the stage imports, loaded before its clock starts (a stage's time is
            its work) and only when it runs (a run whose stages are up to date loads none).
    """

    name: str
    func: Callable[[AnalysisConfig], Any]
    sections: tuple[str, ...]
    outputs: tuple[str, ...]
    needs: tuple[str, ...] = ()
    needs_if: Callable[[AnalysisConfig], tuple[str, ...]] = field(default=lambda cfg: ())
    """Further upstream stages for some configs (``train`` of a both-channels run reads
    ``yields.json``'s combination weights)."""
    external: Callable[[AnalysisConfig], list[Path]] = field(default=lambda cfg: [])
    enabled: Callable[[AnalysisConfig], bool] = field(default=lambda cfg: True)
    check: Callable[[AnalysisConfig], None] = field(default=lambda cfg: None)
    modules: tuple[str, ...] = ()

    def inputs(self, config: AnalysisConfig) -> list[Path]:
        """Every file the stage reads: upstream outputs and external inputs.

        External inputs that an enabled stage of this config produces are left out (they are
        tracked through ``needs``); any other file, in the run directory or not, is kept, e.g.
        ``${output}/mock.root`` made by a standalone ``gammastar generate`` with ``mock: null``.
        """
        upstream = [
            config.output_dir / o
            for s in STAGES
            if (s.name in self.needs or s.name in self.needs_if(config)) and s.enabled(config)
            for o in s.outputs
        ]
        produced = {
            (config.output_dir / o).resolve()
            for s in STAGES
            if s.enabled(config)
            for o in s.outputs
        }
        external = [p for p in self.external(config) if p.resolve() not in produced]
        return upstream + list(dict.fromkeys(external))

    def call(self, config: AnalysisConfig) -> Any:
        """Run the stage (its outputs overwritten: the pipeline owns them)."""
        return self.func(config)


def _mock_path(cfg: AnalysisConfig) -> Path:
    return cfg.output_dir / rundir.MOCK


def _run_generate(config: AnalysisConfig) -> Any:
    from gammastar.mock.generate import generate_file
    from gammastar.mock.plots import plot_file

    result = generate_file(config, _mock_path(config), force=True)
    plot_file(result.path, config.output_dir / rundir.FIGURES_DIR, force=True)
    return result


def _run_select(config: AnalysisConfig) -> Any:
    from gammastar.selection.stage import select

    return select(config, force=True)


def _check_select(config: AnalysisConfig) -> None:
    """The input's branches, the default flavour's too, against the mock that generate
    will write (the config's own check names only stated keys: a config may only generate),
    or against the first input file when it exists already (the others: when select runs),
    with the truth tag that ``background.remove_eta_mumu: truth`` reads."""
    problems = config.input_problems()
    if problems:
        raise ConfigError("\n".join(f"{config.source or '<config>'}: {p}" for p in problems))
    first = next(iter(_input_files(config)), None)
    if first is None or not first.is_file() or first == _mock_path(config):
        return
    from gammastar.selection.stage import eta_truth_problem

    fileset = fileset_from_config(config)
    tree = next(s["files"][str(first)] for s in fileset.values() if str(first) in s["files"])
    for f in config.input.flavours:
        one = flavour_config(config, f) if len(config.input.flavours) > 1 else config
        inp = one.input
        checked = check_inputs(
            {"first": {"files": {str(first): tree}}}, branch_map(inp.layout, inp.branches, f)
        )
        problem = eta_truth_problem(one, checked.branches.all)
        if problem is not None:  # before the generate stage and any other
            raise ConfigError(problem)


def _check_yields(config: AnalysisConfig) -> None:
    """Outside the mock, ``beam.n_pot: from_input`` (stated or the default) needs the mock
    generator's N_POT record (``meta.n_pot``) in the input files: the first local input file
    without one refuses the run before any stage (the yields would fail after the selection)."""
    if config.mock is not None or config.beam.n_pot != "from_input":
        return
    first = next(iter(_input_files(config)), None)
    if first is None or not first.is_file():
        return
    if (meta_from_root(first) or {}).get("n_pot") is None:
        default = "" if "n_pot" in config.beam.model_fields_set else " (the default)"
        raise ConfigError(
            f"{config.source or '<config>'}: beam.n_pot: from_input{default} reads the N_POT "
            f"the mock generator records in its files (meta.n_pot), which {first} lacks: your "
            "data's protons on target, `beam: {n_pot: <POT>}`"
        )


def _run_yields(config: AnalysisConfig) -> Any:
    from gammastar.yields.stage import compute_yields

    return compute_yields(config, force=True)


def _run_train(config: AnalysisConfig) -> Any:
    """Train the flow; an interrupted training of the same config and data resumes."""
    import sys

    from gammastar.flow.stage import train
    from gammastar.flow.training import CheckpointMismatchError

    progress = sys.stderr.isatty()
    checkpoint = config.output_dir / rundir.FLOW_CHECKPOINT
    if checkpoint.exists():
        try:
            train(config, resume=True, force=True, progress=progress)
            return {"note": f"resumed from {checkpoint.name}"}
        except CheckpointMismatchError:
            pass  # a checkpoint of another config or data set: start afresh
    train(config, force=True, progress=progress)
    return {"note": "trained from scratch"}


def _run_validate(config: AnalysisConfig) -> Any:
    from gammastar.flow.validate import validate  # torch: only when a flow is used

    return validate(config, force=True)


def _check_reach(config: AnalysisConfig) -> None:
    from gammastar.reach.stage import check_config

    check_config(config)


def _run_reach(config: AnalysisConfig) -> Any:
    from gammastar.reach.stage import run_reach

    return run_reach(config, force=True)


def _input_files(cfg: AnalysisConfig) -> list[Path]:
    """The input files of ``input.files`` as the selection resolves them
    (:func:`gammastar.io.fileset_from_config`: globs expanded, so a new match is a new
    input); none when they do not resolve (the stage then reruns and reports why). Files at
    URLs are not among them: they are not watched for changes (a changed ``input.files``
    still reruns the stage through its config hash)."""

    try:
        fileset = fileset_from_config(cfg)
    except GammastarError:
        return []
    return [Path(p) for spec in fileset.values() for p in spec["files"] if not is_url(p)]


def _mock_maps(cfg: AnalysisConfig) -> list[Path]:
    """The generator's efficiency map (``mock.efficiency_map``, shipped-file fallback included)."""

    try:
        path = resolve_efficiency_map(cfg)
    except ConfigError:  # missing: dropped from the inputs, so the stage reruns and says so
        return []
    return [path] if path is not None else []


def _yields_inputs(cfg: AnalysisConfig) -> list[Path]:
    """The detector simulation of ``yields.resolution_migration`` (when set)."""
    mc = cfg.yields.resolution_migration
    return [] if mc is None else [cfg.resolve(p) for p in mc.simulation]


def _select_inputs(cfg: AnalysisConfig) -> list[Path]:
    """Input files plus ``unfold.efficiency_map``, ``unfold.acceptance_map``,
    ``unfold.lepton_acceptance.map`` and ``unfold.polarisation_correction.simulation`` (when
    set), of every flavour (``input.lepton: [mu, e]``)."""
    if len(cfg.input.flavours) > 1:

        out = []
        for f in cfg.input.flavours:
            out += [p for p in _select_inputs(flavour_config(cfg, f)) if p not in out]
        return out

    out = _input_files(cfg)
    if cfg.unfold.efficiency_map is not None:
        # the file select reads (shipped-file fallback included); a missing one is dropped
        # from the inputs, so the stage reruns and reports it
        with contextlib.suppress(GammastarError):
            out.append(cfg.resolve_data(cfg.unfold.efficiency_map, "unfold.efficiency_map"))
    if cfg.unfold.acceptance_map is not None:
        out.append(cfg.resolve(split_map_spec(cfg.unfold.acceptance_map)[0]))
    lepton = cfg.unfold.lepton_acceptance
    if lepton is not None and lepton.map is not None:  # the per-lepton acceptance map
        out.append(cfg.resolve(split_map_spec(lepton.map)[0]))
    pc = cfg.unfold.polarisation_correction
    if pc is not None:  # the λ_θ correction's detector simulation
        out += [cfg.resolve(p) for p in pc.simulation]
    return out


def _reach_inputs(cfg: AnalysisConfig) -> list[Path]:
    """``reach.yields`` and the files of ``reach.flow`` (run dir, ``flow/`` or ``model.pt``)."""
    out = [cfg.resolve(cfg.reach.yields)]
    if cfg.reach.flow is not None:
        from gammastar.flow.model import resolve_model_dir  # torch: only when a flow is used

        p = cfg.resolve(cfg.reach.flow)
        try:  # as gammastar.flow.model.load finds the model
            d = resolve_model_dir(p)
        except GammastarError:
            d = p
        out += [d / rundir.MODEL_FILE, d / rundir.MODEL_META_FILE]
    return out


STAGES: tuple[Stage, ...] = (
    Stage(
        "generate",
        _run_generate,
        sections=("seed", "beam", "mock"),
        outputs=rundir.stage_outputs("generate"),
        external=_mock_maps,
        enabled=lambda cfg: cfg.mock is not None,
        modules=("gammastar.mock.generate", "gammastar.mock.plots"),
    ),
    Stage(
        "select",
        _run_select,
        sections=("input", "selection", "background", "unfold"),
        outputs=rundir.stage_outputs("select"),
        needs=("generate",),
        external=_select_inputs,
        check=_check_select,
        modules=("gammastar.selection.stage",),
    ),
    Stage(
        "yields",
        _run_yields,
        # seed: the mock's true fiducial fraction and the migration bootstrap's default seed
        sections=("seed", "beam", "yields", "uncertainties"),
        outputs=rundir.stage_outputs("yields"),
        needs=("generate", "select"),
        external=_yields_inputs,
        check=_check_yields,
        modules=("gammastar.yields.stage",),
    ),
    Stage(
        "train",
        _run_train,
        sections=("seed", "flow"),
        outputs=rundir.stage_outputs("train"),
        needs=("select",),
        # both channels in one run: the flow weights each pair by its channel's share of
        # the combined A′ yield (yields.json aprime.weights)
        needs_if=lambda cfg: ("yields",) if len(cfg.input.flavours) > 1 else (),
        modules=("gammastar.flow.stage",),
    ),
    Stage(
        "validate",
        _run_validate,
        sections=("seed", "validate"),
        outputs=rundir.stage_outputs("validate"),
        needs=("select", "train"),
        modules=("gammastar.flow.validate",),
    ),
    Stage(
        "reach",
        _run_reach,
        sections=("seed", "beam", "detector", "reach", "uncertainties"),
        outputs=rundir.stage_outputs("reach"),
        needs=("yields", "train"),
        external=_reach_inputs,
        # a reach needs its statistics inputs stated (no defaults): only configs with a
        # `reach:` section have one
        enabled=lambda cfg: "reach" in cfg.model_fields_set,
        check=_check_reach,
        modules=("gammastar.reach.stage",),
    ),
)


def stage_names() -> list[str]:
    """Names of all stages, in order."""
    return [s.name for s in STAGES]


def _state_path(cfg: AnalysisConfig, stage: Stage) -> Path:
    return cfg.output_dir / rundir.state_name(stage.name)


def _identity(path: Path) -> list[int] | None:
    """A file's identity for the up-to-date check: ``[size, mtime_ns]`` (``None``: missing)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _withdraw(run_dir: Path, before: dict[str, list[int] | None]) -> None:
    """Remove the outputs a failed stage wrote (those whose identity changed since it
    started): a stage's outputs appear together with its stage record or not at all. What
    it did not touch stays."""
    for name, identity in before.items():
        path = run_dir / name
        if _identity(path) in (None, identity):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as err:  # the stage's own error is the one to report
            log.warning("could not remove %s, written by the failed stage: %s", path, err)


def is_up_to_date(cfg: AnalysisConfig, stage: Stage) -> tuple[bool, str]:
    """Whether ``stage`` can be skipped, and why (or why not).

    Not up to date: never run, config sections changed, an output missing or not the file the
    stage wrote (its recorded size and mtime differ: overwritten outside the pipeline), the set
    of input files changed (a new file matching an ``input.files`` glob, one gone), or an
    input changed since the stage read it (size or mtime differ from those recorded).
    """
    state_file = _state_path(cfg, stage)
    if not state_file.exists():
        return False, "never run"
    try:  # schema-checked (gammastar.core.rundir); an unusable record reruns the stage
        state = rundir.RunDir(cfg.output_dir).read_json(rundir.state_name(stage.name))
    except GammastarError as err:
        return False, f"state file unusable ({err})"
    if state.get("config_sha256") != cfg.section_sha256(*stage.sections):
        return False, f"config changed ({', '.join(stage.sections)})"
    outputs = [cfg.output_dir / o for o in stage.outputs]
    missing = [o.name for o in outputs if not o.exists()]
    if missing:
        return False, f"missing {', '.join(missing)}"
    recorded = state.get("outputs")
    if not isinstance(recorded, dict):
        return False, "no output identities recorded (state file of an older gammastar)"
    for o in stage.outputs:
        if recorded.get(o) != _identity(cfg.output_dir / o):
            return False, f"{o} is not the file {stage.name} wrote (overwritten outside the run)"
    inputs = stage.inputs(cfg)
    seen = state.get("inputs")
    if not isinstance(seen, dict):
        return False, "no input identities recorded (state file of an older gammastar)"
    added = [p.name for p in inputs if str(p) not in seen]
    gone = sorted(Path(k).name for k in seen.keys() - {str(p) for p in inputs})
    if added or gone:
        what = [f"new input {', '.join(added)}"] if added else []
        what += [f"no longer an input: {', '.join(gone)}"] if gone else []
        return False, "; ".join(what)
    for i in inputs:
        if seen[str(i)] != _identity(i):
            return False, f"{i.name} changed"
    return True, "up to date"


@dataclass
class StageReport:
    """What happened to one stage in a run."""

    name: str
    status: str  # "ran", "skipped", "disabled"
    reason: str
    seconds: float = 0.0
    result: Any = None


def run(
    config: AnalysisConfig,
    *,
    force: Sequence[str] = (),
    only: Sequence[str] | None = None,
    echo: Callable[[str], None] = print,
    report: bool = True,
    wait: bool = False,
) -> list[StageReport]:
    """Run every stage in order, skipping those that are up to date.

    The whole run holds the run directory's writer lock (:mod:`gammastar.core.runlock`; the
    command line took it already), so the up-to-date decisions and the outputs are this
    run's alone; each stage runs marked as such (:func:`gammastar.core.interrupt.stage`), for the
    one line an interruption prints.

    Arguments:
        config: the analysis.
        force: stage names to redo even when up to date (``"all"`` redoes everything).
        only: restrict to these stages (default: all enabled ones).
        echo: where progress lines go.
        report: (re)build ``report.html`` from whatever the run directory holds.
        wait: wait for another writer of the run directory instead of refusing.

    Returns:
        One :class:`StageReport` per stage.
    """
    names = stage_names()
    unknown = [f for f in (*force, *(only or ())) if f not in names and f != "all"]
    if unknown:
        raise GammastarError(f"unknown stage {unknown[0]!r}; stages are: {', '.join(names)}")
    for stage in STAGES:
        if not (only and stage.name not in only) and stage.enabled(config):
            stage.check(config)  # e.g. the reach's statistics inputs, before anything runs

    try:
        config.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        kind = EnvironmentFailure if err.errno in ENVIRONMENT_ERRNOS else GammastarError
        raise kind(
            f"{config.output_dir}: cannot create the run directory ({os_error_text(err)}; output)"
        ) from None
    with runlock.locked(config.output_dir, wait=wait):
        return _run(config, force, only, echo, report)


def _run(
    config: AnalysisConfig,
    force: Sequence[str],
    only: Sequence[str] | None,
    echo: Callable[[str], None],
    report: bool,
) -> list[StageReport]:

    reports: list[StageReport] = []
    if not only or "select" in only:  # outside the mock: the choices left to the mock's values
        for line in config.assumed_lines():
            echo(line)
    for stage in STAGES:
        if (only and stage.name not in only) or not stage.enabled(config):
            reports.append(StageReport(stage.name, "disabled", "not in this analysis"))
            continue
        fresh, why = is_up_to_date(config, stage)
        forced = "all" in force or stage.name in force
        if fresh and not forced:
            echo(f"[{stage.name}] skipped: {why}")
            reports.append(StageReport(stage.name, "skipped", why))
            continue
        reason = "forced" if forced else why
        echo(f"[{stage.name}] running: {reason}")
        inputs = {str(p): _identity(p) for p in stage.inputs(config)}  # as read by the stage
        before = {o: _identity(config.output_dir / o) for o in stage.outputs}
        for module in stage.modules:
            importlib.import_module(module)
        t0 = time.perf_counter()
        try:
            with running(stage.name):
                result = stage.call(config)
        except BaseException:
            _withdraw(config.output_dir, before)
            raise
        dt = time.perf_counter() - t0
        note = result.get("note") if isinstance(result, dict) else None
        rundir.RunDir(config.output_dir).write_json(
            rundir.state_name(stage.name),
            {
                "schema_version": SCHEMA_VERSION,
                "stage": stage.name,
                "config_sha256": config.section_sha256(*stage.sections),
                "seconds": dt,
                "finished": time.time(),
                "note": note,
                "inputs": inputs,
                "outputs": {o: _identity(config.output_dir / o) for o in stage.outputs},
            },
            force=True,
        )
        echo(f"[{stage.name}] done in {dt:.1f} s" + (f" ({note})" if note else ""))
        reports.append(StageReport(stage.name, "ran", reason, dt, result))
    if report:
        from gammastar.report import build_report, report_line

        with running("report"):
            echo(f"[report] {report_line(build_report(config, force=True).path)}")
    return reports


def _read(rd: rundir.RunDir, name: str, lines: list[str]) -> dict[str, Any] | None:
    """JSON artifact ``name`` if present (:meth:`gammastar.core.rundir.RunDir.read_optional`);
    one that cannot be used is ``None`` and its one-line reason, naming the file, in ``lines``
    (a summary never fails the run)."""
    try:
        return rd.read_optional(name)
    except GammastarError as err:
        lines.append(str(err))
        return None


def _mock_meta(rd: rundir.RunDir, lines: list[str]) -> dict[str, Any] | None:
    """``mock.root``'s meta (:meth:`gammastar.core.rundir.RunDir.read_root_meta`), or ``None``
    and the one-line reason in ``lines``."""
    try:
        return rd.read_root_meta(rundir.MOCK)
    except GammastarError as err:
        lines.append(str(err))
        return None


def summarize(config: AnalysisConfig, reports: Sequence[StageReport]) -> str:
    """A plain-text summary of a run: stages, the key numbers, where the outputs are."""
    out = config.output_dir
    lines = [f"gammastar run of '{config.name}'"]
    for r in reports:
        if r.status != "disabled":
            extra = f" ({r.seconds:.1f} s)" if r.status == "ran" else ""
            lines.append(f"  {r.name:<9} {r.status}{extra}: {r.reason}")
    mock = out / rundir.MOCK
    has_mock = config.mock is not None and mock.exists()
    if has_mock and (meta := _mock_meta(rundir.RunDir(out), lines)):
        lines.append(f"mock data: {mock}")
        n_pot = meta.get("n_pot")
        if n_pot is not None:
            lines.append(f"  equivalent protons on target: {float(n_pot):.3e}")
        for key in ("n_events_written", "n_generated_total"):
            if key in meta:
                lines.append(f"  {key.replace('_', ' ')}: {meta[key]}")
        per_channel = meta.get("n_generated") or {}
        if per_channel:
            lines.append("  generated sources per channel:")
            lines.extend(f"    {k:<18} {v}" for k, v in per_channel.items())
    lines.extend(_summary_lines(out))
    report = out / rundir.REPORT
    lines.append(f"run directory: {out}")
    if report.exists():
        from gammastar.report import report_line

        lines.append(f"report: {report_line(report)}")
    return "\n".join(lines)


def _mass_texts(mass: Sequence[float]) -> list[str]:
    """The masses with the fewest decimals (2 to 6) that tell every bin centre apart: 10 MeV
    bins centred on 5 MeV need three, where two would print 0.285 and 0.295 alike."""
    for digits in range(2, 7):
        texts = [f"{m:.{digits}f}" for m in mass]
        if len(set(texts)) == len(texts):
            return texts
    return [f"{m:.6g}" for m in mass]


def _yield_lines(doc: dict[str, Any], ap: dict[str, Any]) -> list[str]:
    """The A′ yield at 4 masses with its total error, and the error's named parts there
    (:func:`gammastar.yields.error_parts.error_parts`: in quadrature)."""
    mass, val = ap.get("mass") or [], ap.get("per_pot_per_eps2") or []
    picks = [i for i in range(len(mass)) if val[i] is not None][:: max(1, len(mass) // 4)][:4]
    parts = error_parts(doc)
    total = parts.absolute() if len(parts.y) == len(mass) else [None] * len(mass)

    def pm(i: int) -> str:
        return "" if total[i] is None else f" ± {total[i]:.1e}"

    at = _mass_texts(mass)
    shown = ", ".join(f"{val[i]:.2e}{pm(i)} at {at[i]} GeV" for i in picks)
    lines = [f"A′ yield per POT per ε² ± total error: {shown}"]
    names = [k for k in parts.nonzero() if len(parts.y) == len(mass)]
    if names:

        def pct(r: float | None) -> str:
            return "n/a" if r is None else ("-" if r == 0 else f"{100 * r:.2g}")

        each = "; ".join(
            f"{PART_LABELS.get(k, k)} {'/'.join(pct(parts.rel[k][i]) for i in picks)}"
            for k in names
        )
        lines.append(f"  its parts there, % of the yield (in quadrature): {each}")
    return lines


def _summary_lines(out: Path) -> list[str]:
    """Key numbers of the later stages, from whatever artifacts exist."""
    lines: list[str] = []
    rd = rundir.RunDir(out)
    if sel := _read(rd, rundir.SELECT, lines):
        c = sel.get("counts", {})
        lines.append(
            f"selection: {c.get('os')} OS, {c.get('pp')} ++, {c.get('mm')} -- pairs; "
            f"combinatorial {c.get('comb_estimate', float('nan')):.4g} "
            f"± {c.get('comb_estimate_err', float('nan')):.2g}; "
            f"unfolded γ* yield {c.get('unfolded', float('nan')):.4g} "
            f"± {c.get('unfolded_err', float('nan')):.2g}"
        )
    if (y := _read(rd, rundir.YIELDS, lines)) and (a := y.get("aprime")):
        lines.extend(_yield_lines(y, a))
    if v := _read(rd, rundir.VALIDATION, lines):
        lines.append(
            f"flow validation: model-vs-data KL inside the data-vs-data 95% band "
            f"in {n_inside(v)}/{len(v.get('mass', []))} mass windows"
        )
    if (r := _read(rd, rundir.REACH, lines)) and (e := r.get("expected")):
        lo = [x for x in e.get("eps_low", []) if x is not None]
        masses = [
            m
            for m, x in zip(e.get("mass", []), e.get("eps_low", []), strict=False)
            if x is not None
        ]
        if lo and (span := edges.eps_range(e)):
            # a boundary at the scan's eps_min/eps_max is shown as such: "≤ 1.00e-09 (scan edge)"
            lines.append(
                f"expected {r.get('cl', 0.9):.0%} CL exclusion: {len(masses)}/{len(e.get('mass', []))} masses "
                f"({min(masses):.3f}-{max(masses):.3f} GeV), ε from {span[0]} to {span[1]}"
            )
            lines += [f"warning: {text}" for text in edges.edge_warnings(e)]
        else:
            lines.append("expected exclusion: none in the scanned (m, ε) range")
    return lines
