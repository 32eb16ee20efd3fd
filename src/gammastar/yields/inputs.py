"""What the yields stage reads from the run directory.

:func:`read_yield_inputs` (``select.json``, ``histograms.root``, N_POT and the pairs table,
checked, as a :class:`YieldInputs`), :func:`read_phase_space` and :func:`read_acceptance_loss`
(the map's lost fraction per mass bin, ``select.json``).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gammastar.config import AnalysisConfig
from gammastar.core import rundir
from gammastar.corrections.unfold import PHASE_SPACE_FIDUCIAL
from gammastar.errors import GammastarError, InputError
from gammastar.selection.flavour_codes import FLAVOUR_CODES, flavour_channel
from gammastar.yields.formulas import pairs_match_histogram
from gammastar.yields.npot import resolve_n_pot

log = logging.getLogger(__name__)


def _read_histograms(path: Path, suffix: str = "") -> dict[str, Any]:
    """``unfolded_m``, ``comb_m``, ``signal_m`` (``suffix``: one flavour's of a both-channels
    run, e.g. ``_ee``, returned under the plain names)."""
    import uproot

    if not path.exists():
        raise InputError(f"{path}: histograms.root not found; run `gammastar select` first")
    out = {}
    try:
        with uproot.open(path) as f:
            if "unfolded_m" + suffix not in f:
                raise InputError(f"{path}: no histogram 'unfolded_m{suffix}'")
            rundir.RunDir(path.parent).check_histograms(f)  # schema check (one clear error)
            for name in ("unfolded_m", "comb_m", "signal_m"):
                if name + suffix in f:
                    out[name] = f[name + suffix].to_hist()
    except GammastarError:
        raise
    except Exception as err:  # noqa: BLE001 - reported with the file name
        raise InputError(f"{path}: cannot read histograms ({err})") from None
    return out


PHASE_SPACE_TEXT = {
    "full": "full phase space",
    "detector_acceptance": "inside the detector acceptance",
    "fiducial": "full phase space: fiducial region measured, the rest extrapolated",
}


def read_acceptance_loss(
    run_dir: Path, channel: str | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(edges, lost fraction per mass bin)`` from ``select.json`` → ``unfold.acceptance``
    (``lost_fraction_map_per_mass_bin``; NaN where unknown), or ``None``; ``channel``: that
    flavour's (``flavours.<channel>``) of a both-channels run."""
    sel = run_dir / rundir.SELECT
    try:
        doc = json.loads(sel.read_text())
    except (OSError, ValueError):
        return None
    if channel is not None:  # one flavour of a both-channels run
        doc = (doc.get("flavours") or {}).get(channel) or {}
    acc = doc.get("unfold", {}).get("acceptance") or {}
    per_bin = acc.get("lost_fraction_map_per_mass_bin")
    if not per_bin:
        return None
    values = np.array([np.nan if v is None else v for v in per_bin["values"]], dtype=float)
    return np.asarray(per_bin["edges"], dtype=float), values


def read_phase_space(run_dir: Path) -> str:
    """Which phase space the unfolded spectrum stands for (``full``, ``detector_acceptance``;
    ``unknown`` when the run directory records neither): ``select.json`` ``meta.phase_space``,
    else the ``phase_space`` string of ``histograms.root``."""
    import uproot

    sel = run_dir / rundir.SELECT
    if sel.exists():
        try:
            ps = json.loads(sel.read_text()).get("meta", {}).get("phase_space")
        except (OSError, ValueError):
            ps = None
        if ps:
            return str(ps)
    try:
        with uproot.open(run_dir / rundir.HISTOGRAMS) as f:
            if "phase_space" in f:
                return str(f["phase_space"])
    except Exception as err:  # noqa: BLE001 - unreadable files are reported by _read_histograms
        log.debug("phase_space not readable from histograms.root: %s", err)
    return "unknown"


@dataclass
class YieldInputs:
    """What the yields stage reads from the run directory (:func:`read_yield_inputs`)."""

    hists: dict[str, Any]
    """``unfolded_m`` and, when present, ``comb_m``, ``signal_m``."""
    phase_space: str
    n_pot: float
    n_pot_source: str
    pairs: Any
    """The pairs table (``m``, ``weight``, ``charge``; ``pT``, ``y`` in the fiducial phase
    space), or ``None`` when no source uses it."""
    consistent: bool | None
    """Whether the pairs' weights sum to ``unfolded_m`` (``None``: no pairs)."""
    inputs: list[str | os.PathLike[str]]
    polarisation: dict[str, Any] | None = None
    """``select.json``'s ``polarisation`` block (λ_θ, λ_φ, λ_θφ per mass bin), or ``None``."""
    flavour: str | None = None
    """One flavour of a both-channels run (``input.lepton: [mu, e]``): these are its
    histograms (``unfolded_m_ee``, ...) and pairs (``pairs.parquet`` ``flavour``)."""


def read_yield_inputs(cfg: AnalysisConfig, flavour: str | None = None) -> YieldInputs:
    """The run directory's inputs of the yields stage, checked: ``select.json`` (schema),
    ``histograms.root``, N_POT and the pairs table where a source (``yields.*_source``) or the
    fiducial phase space needs it; ``flavour``: that flavour's of a both-channels run
    (``cfg`` is then :func:`gammastar.config.flavour_config`'s)."""
    run_dir = cfg.output_dir
    rd = rundir.RunDir(run_dir)
    polarisation = None
    suffix, block = "", None
    if flavour is not None:

        suffix = "_" + flavour_channel(flavour)
    if rd.path(rundir.SELECT).exists():  # schema check: refuse an invalid/unknown-version one
        # the decay angular distribution the selection measured (gammastar.corrections.polarisation)
        sel = rd.read_json(rundir.SELECT)
        if flavour is not None:
            block = (sel.get("flavours") or {}).get(suffix[1:])
            if block is None:
                raise InputError(
                    f"{rd.path(rundir.SELECT)}: no flavours.{suffix[1:]} block: the selection "
                    f"did not select {flavour!r} (input.lepton); rerun select"
                )
            sel = block
        polarisation = sel.get("polarisation")
    hpath = rd.path(rundir.HISTOGRAMS)
    hists = _read_histograms(hpath, suffix)
    phase_space = block["phase_space"] if block is not None else read_phase_space(run_dir)
    n_pot, n_pot_source = resolve_n_pot(cfg, run_dir, flavour)
    inputs: list[str | os.PathLike[str]] = [hpath]
    ppath = rd.pairs_location()  # pairs.parquet, or the dataset at select.json pairs_url
    has_pairs = rd.has_pairs()
    pairs = None
    wanted = {cfg.yields.mcp_source, cfg.yields.aprime_source}
    if "pairs" in wanted and not has_pairs:
        raise InputError(f"{ppath}: yields.*_source is 'pairs' but the file does not exist")
    fiducial_ps = phase_space == PHASE_SPACE_FIDUCIAL
    if fiducial_ps and not has_pairs:
        raise InputError(
            f"{ppath}: the fiducial-region yields (unfold.lepton_acceptance) need the pairs "
            "table to fit the extrapolation; rerun select"
        )
    # a full-phase-space channel's pairs also fit the model below a seam (yields.below_seam)
    below = cfg.yields.extrapolation_below_seam is not None and phase_space == "full"
    if (wanted & {"auto", "pairs"} or fiducial_ps or below) and has_pairs:
        cols = ["m", "weight", "charge"] + (["pT", "y"] if fiducial_ps or below else [])
        cols += ["qT", "E", "acc"] if below else []
        pairs = _read_pairs(rd, cols, flavour)  # those columns checked against the contract
        inputs.append(ppath)
    consistent = None
    if pairs is not None:
        consistent = pairs_match_histogram(pairs["m"], pairs["weight"], hists["unfolded_m"])
        if not consistent and fiducial_ps:
            # the fiducial-region yields come from the pairs whatever the sources say: a
            # resolution unfolding of unfolded_m (unfold.bayesian_iterations) does not reach them
            log.warning(
                "yields: %s weights do not sum to unfolded_m (resolution unfolding?); the "
                "fiducial-region yields (unfold.lepton_acceptance) are the pairs', at the data's "
                "mass resolution: unfold.bayesian_iterations does not change them",
                ppath,
            )
        elif not consistent:
            log.warning(
                "yields: %s weights do not sum to unfolded_m (resolution unfolding?); "
                "'auto' sources use the histogram",
                ppath,
            )
    return YieldInputs(
        hists, phase_space, n_pot, n_pot_source, pairs, consistent, inputs, polarisation, flavour
    )


def _read_pairs(rd: rundir.RunDir, cols: list[str], flavour: str | None) -> Any:
    """``cols`` of ``pairs.parquet``; ``flavour``: only that flavour's rows (``flavour``
    column of a both-channels run, :data:`gammastar.selection.stage.FLAVOUR_CODES`)."""
    if flavour is None:
        return rd.read_pairs(cols)

    pairs = rd.read_pairs([*cols, "flavour"])
    keep = pairs["flavour"].to_numpy() == FLAVOUR_CODES[flavour]
    return pairs.loc[keep, cols].reset_index(drop=True)
