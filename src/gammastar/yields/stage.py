r"""The ``gammastar yields`` stage: A′ and χχ̄ yields per proton on target (paper Eqs. 6 and 8).

:func:`compute_yields`, a thin orchestration returning a :class:`YieldsResult`: the inputs
(:mod:`.inputs`, N_POT :mod:`.npot`), the yields (:mod:`.compute` over the pure functions of
:mod:`.formulas`), the document (:mod:`.document`; both channels in one run: :mod:`.combined`),
the writers of ``yields.json``, the CSV tables and the figures (:mod:`.plots`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.config import AnalysisConfig, flavour_config, load_config
from gammastar.core import rundir
from gammastar.core.artifacts import atomic_path, check_writable
from gammastar.core.results import StageResult
from gammastar.errors import InputError
from gammastar.selection.flavour_codes import flavour_channel
from gammastar.yields.below_seam import above_seam_record, below_seam_record
from gammastar.yields.combined import _combined_mcp, _combined_uncertainties, _seam_extrapolation
from gammastar.yields.compute import _warn_flags, _yields, flag_acceptance_loss
from gammastar.yields.document import _jsonable, _yields_meta, yields_document
from gammastar.yields.error_parts import error_parts
from gammastar.yields.formulas import AprimeYield, McpYield
from gammastar.yields.inputs import YieldInputs, read_acceptance_loss, read_yield_inputs
from gammastar.yields.npot import resolve_n_pot
from gammastar.yields.plots import plot_aprime, plot_mcp, plot_standard_recipe
from gammastar.yields.theory import standard_recipe, theory_curves
from gammastar.yields.universality import combine, combine_channels, compare_aprime

log = logging.getLogger(__name__)


OUTPUT_FILES = rundir.stage_outputs("yields")  # yields.json, yields_aprime.csv, yields_mcp.csv
FIGURES = rundir.stage_figures("yields")


@dataclass(frozen=True, kw_only=True)
class YieldsResult(StageResult):
    """What :func:`compute_yields` wrote: ``yields.json`` (``path``), its ``document`` (as
    written, before the JSON encoding: arrays may be numpy), and the typed yields it was made
    from.

    Arguments:
        aprime: the A′ yield (Eq. 6; the channels' combination in a both-channels run).
        mcp: the χχ̄ yield (Eq. 8).
        aprime_source: where the A′ yield came from (``histogram``, ``pairs``, ``combined``).
        inputs: what was read (:class:`~gammastar.yields.inputs.YieldInputs`; the first
            flavour's in a both-channels run).
        files: the stage's tracked outputs by name (``yields.json`` and the two CSV tables).
    """

    aprime: AprimeYield = field(repr=False)
    mcp: McpYield = field(repr=False)
    aprime_source: str = "histogram"
    inputs: YieldInputs | None = field(default=None, repr=False)
    files: Mapping[str, Path] = field(default_factory=dict)


def compute_yields(
    config: AnalysisConfig | str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    force: bool = False,
    plots: bool = True,
    theory: bool = True,
) -> YieldsResult:
    """The ``gammastar yields`` stage: A′ and χχ̄ yields per POT from the run directory.

    Reads ``histograms.root`` (``unfolded_m``, ``comb_m``, ``signal_m``) and, when present,
    ``pairs.parquet``; writes ``yields.json`` (public contract, docs/reference/outputs.md), ``yields_aprime.csv``,
    ``yields_mcp.csv`` and with ``plots`` the Fig. 2/3 analogues ``figures/yields_aprime.png``,
    ``figures/yields_mcp.png`` and, with a standard recipe, ``figures/yields_standard_recipe.png``.

    Arguments:
        config: the analysis config (object or YAML path).
        output: run directory (default: the config's).
        force: overwrite existing outputs.
        plots: also draw the figures.
        theory: compute the bremsstrahlung / π0 / J/ψ comparison curves (in ``theory``) and
            the standard generator-level recipe (``standard_recipe``).

    Returns:
        A :class:`YieldsResult`: ``yields.json``, its document (``.document``) and the typed
        yields (``.aprime``, ``.mcp``).

    Raises:
        GammastarError: missing inputs, bad N_POT, outputs exist without ``force``.
    """

    cfg = config if isinstance(config, AnalysisConfig) else load_config(config)
    if output is not None:
        cfg = cfg.model_copy(update={"output": str(Path(output).resolve())})
    run_dir = cfg.output_dir
    outs = [run_dir / n for n in OUTPUT_FILES] + ([run_dir / n for n in FIGURES] if plots else [])
    for p in outs:  # refuse early, before any work
        check_writable(p, force)
    if len(cfg.input.flavours) > 1:  # input.lepton: [mu, e]: both channels in one run
        res = _flavour_yields(cfg, theory)
        _write_outputs(cfg, res, force, plots)
        return res
    inp = read_yield_inputs(cfg)
    ap, ap_source, mcp, fid = _yields(cfg, inp)
    loss = read_acceptance_loss(run_dir) if inp.phase_space == "full" else None
    lost_fraction = (
        flag_acceptance_loss(loss, ap, mcp, cfg.input.lepton_mass) if loss is not None else None
    )
    _warn_flags(ap)
    res = YieldsResult(
        run_dir / rundir.YIELDS,
        yields_document(cfg, inp, ap, ap_source, mcp, fid, lost_fraction, theory),
        aprime=ap, mcp=mcp, aprime_source=ap_source, inputs=inp,
        files={n: run_dir / n for n in OUTPUT_FILES},
    )  # fmt: skip
    _write_outputs(cfg, res, force, plots)
    return res


def _write_outputs(cfg: AnalysisConfig, res: YieldsResult, force: bool, plots: bool) -> None:
    """``yields.json`` (schema-checked), the two CSV tables and, with ``plots``, the figures."""
    rd = rundir.RunDir(cfg.output_dir)
    ap, mcp, inp, doc = res.aprime, res.mcp, res.inputs, res.document
    assert inp is not None  # compute_yields gives both
    assert doc is not None
    rd.write_json(rundir.YIELDS, doc, force)  # schema-checked
    comment = (
        f"gammastar yields; n_pot={inp.n_pot:.6g} ({inp.n_pot_source}); "
        f"phase_space={inp.phase_space}; see yields.json meta"
    )
    # the whole error after the contract columns: its total and each named part, absolute
    # (gammastar.yields.error_parts: the parts in quadrature)
    parts = error_parts(doc)
    errs = [parts.absolute()] + [parts.absolute(k) for k in parts.rel]
    _write_csv(
        rd.path(rundir.YIELDS_APRIME_CSV),
        ["mass", "m_lo", "m_hi", "per_pot_per_eps2", "stat_err", "bkg_sub_err", "flags"]
        + ["total_err"] + [f"err_{k}" for k in parts.rel],
        [
            [
                ap.mass[i],
                ap.edges[i],
                ap.edges[i + 1],
                ap.per_pot_per_eps2[i],
                ap.stat_err[i],
                ap.bkg_sub_err[i],
                ap.flags[i],
            ]
            + [float("nan") if e[i] is None else e[i] for e in errs]
            for i in range(len(ap.mass))
        ],
        comment,
        force,
    )
    _write_csv(
        rd.path(rundir.YIELDS_MCP_CSV),
        ["m_chi", "per_pot_per_q2", "stat_err", "flags"],
        [
            [mcp.mass[i], mcp.per_pot_per_q2[i], mcp.stat_err[i], mcp.flags[i]]
            for i in range(len(mcp.mass))
        ],
        comment,
        force,
    )
    if plots:

        plot_aprime(dict(doc), cfg.output_dir / FIGURES[0], force=force)
        plot_mcp(dict(doc), cfg.output_dir / FIGURES[1], force=force)
        if doc.get("standard_recipe"):
            plot_standard_recipe(dict(doc), cfg.output_dir / FIGURES[2], force=force)


def _flavour_yields(cfg: AnalysisConfig, theory: bool) -> YieldsResult:
    """The yields of a both-channels run (``input.lepton: [mu, e]``).

    Each flavour's yields are those of its single-flavour run
    (:func:`gammastar.config.flavour_config` on its histograms and pairs:
    :func:`~gammastar.yields.inputs.read_yield_inputs` with ``flavour``), in
    ``flavours.<channel>``. ``aprime`` is their combination
    (:func:`gammastar.yields.universality.combine_channels`: the inverse-variance mean where
    both measure a bin, half the difference as ``syst_err``; one channel alone
    elsewhere, e.g. ee below 2m_μ), with each channel's share per bin in ``aprime.weights``
    (what the flow's training weights use); ``lepton_universality`` the ee/μμ ratio per
    shared bin and its χ² (:func:`gammastar.yields.universality.compare_aprime`); ``mcp`` per χ
    mass the combination of the channels whose data reach down to 2m_χ."""

    per: dict[str, Any] = {}
    for f in cfg.input.flavours:
        fcfg = flavour_config(cfg, f)
        ch = flavour_channel(f)
        inp = read_yield_inputs(fcfg, f)
        ap, ap_source, f_mcp, fid = _yields(fcfg, inp)
        loss = read_acceptance_loss(cfg.output_dir, ch) if inp.phase_space == "full" else None
        lost = flag_acceptance_loss(loss, ap, f_mcp, fcfg.input.lepton_mass) if loss else None
        _warn_flags(ap, ch)
        f_doc = _jsonable(
            yields_document(fcfg, inp, ap, ap_source, f_mcp, fid, lost, theory=False)
        )
        per[ch] = {"cfg": fcfg, "inp": inp, "ap": ap, "mcp": f_mcp, "doc": f_doc}
    chans = list(per)
    comb = combine_channels({c: per[c]["doc"]["aprime"] for c in chans})
    first = per[chans[0]]
    # the run's N_POT (meta.n_pot); each flavour's yields are per its own effective N_POT
    # (a prescaled trigger's: N_POT / k, resolve_n_pot), in meta.n_pot_by_flavour
    n_pot, n_pot_source = resolve_n_pot(cfg, cfg.output_dir)
    edges = np.asarray(comb["bin_edges"], float)
    def nan(v: Iterable[float | None]) -> NDArray[np.float64]:  # JSON null: NaN
        return np.asarray([np.nan if x is None else x for x in v], float)

    ap = AprimeYield(np.asarray(comb["mass"]), edges, nan(comb["per_pot_per_eps2"]),
                     nan(comb["stat_err"]), nan(comb["bkg_sub_err"]), comb["flags"], n_pot)  # fmt: skip
    universality = None
    if {"ee", "mumu"} <= set(chans):
        try:
            universality = compare_aprime(
                per["ee"]["doc"]["aprime"], per["mumu"]["doc"]["aprime"],
                labels=("ee", "mumu"), mass_range=cfg.yields.universality_mass_range,
            )  # fmt: skip
            universality.pop("combined")  # the combination is `aprime`
        except InputError as err:
            log.warning("yields: no lepton-universality comparison (%s)", err)
    mcp = _combined_mcp(per, combine)
    doc: dict[str, Any] = {
        "aprime": {
            **{k: v for k, v in comb.items() if k != "index"},
            "source": "combined",
            "combination": "inverse-variance mean of the channels measuring a bin; syst_err "
            "= |difference|/2 (the disagreement); weights: each channel's share per bin",
        },
        "mcp": mcp,
        "lepton_universality": universality,
        "flavours": {c: {k: v for k, v in per[c]["doc"].items() if k != "meta"} for c in chans},
        "polarisation": first["doc"].get("polarisation"),
    }
    seam = _seam_extrapolation(per)
    if seam is not None:
        below = below_seam_record(cfg, per, seam["seam"])
        above = above_seam_record(cfg, per, seam["seam"])
        doc["extrapolation"] = {**seam, **({} if below is None else {"below_seam": below}),
                                **({} if above is None else {"arm_above_seam": above})}  # fmt: skip
    elif cfg.yields.extrapolation_below_seam is not None:
        log.warning("yields: yields.extrapolation_below_seam ignored: the run has no seam "
                    "(one fiducial and one full-phase-space channel)")  # fmt: skip
    if cfg.uncertainties.enabled:
        doc["uncertainties"] = _combined_uncertainties(per, comb)
    if theory:
        doc["theory"] = theory_curves(cfg, ap.mass, np.asarray(cfg.yields.mcp_masses, float))
        doc["standard_recipe"] = standard_recipe(cfg, doc["aprime"])
    inputs = list(dict.fromkeys(p for c in chans for p in per[c]["inp"].inputs))
    meta_inp = dataclasses.replace(
        first["inp"], consistent=all(bool(per[c]["inp"].consistent) for c in chans),
        n_pot=n_pot, n_pot_source=n_pot_source,
    )  # fmt: skip
    doc["meta"] = {
        **_yields_meta(cfg, meta_inp, ap, inputs),
        "n_pot_by_flavour": {c: per[c]["inp"].n_pot for c in chans},
        "flavours": chans,
        "lepton_masses": {c: per[c]["cfg"].input.lepton_mass for c in chans},
        "phase_space_per_flavour": {c: per[c]["inp"].phase_space for c in chans},
    }
    mcp_y = McpYield(np.asarray(mcp["mass"]), nan(mcp["per_pot_per_q2"]), nan(mcp["stat_err"]),
                     mcp["flags"], n_pot, mcp["source"])  # fmt: skip
    return YieldsResult(
        cfg.output_dir / rundir.YIELDS, doc, aprime=ap, mcp=mcp_y, aprime_source="combined",
        inputs=first["inp"], files={n: cfg.output_dir / n for n in OUTPUT_FILES},
    )  # fmt: skip


def _write_csv(
    path: Path, header: list[str], rows: list[list[Any]], comment: str, force: bool
) -> None:

    def fmt(x: Any) -> str:
        if isinstance(x, list):
            return ";".join(x)
        if isinstance(x, float | np.floating):
            return "" if not np.isfinite(x) else f"{float(x):.8g}"
        return str(x)

    lines = [f"# {comment}", ",".join(header)]
    lines += [",".join(fmt(x) for x in r) for r in rows]
    with atomic_path(path, force) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
