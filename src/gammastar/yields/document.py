"""The ``yields.json`` document of one flavour, assembled in one place.

:func:`yields_document` (public contract, docs/reference/outputs.md; schemas/…/yields.json):
the yields, the fiducial region's keys, ``polarisation``, ``uncertainties``
(:func:`gammastar.yields.uncertainties.yield_uncertainties`), the comparison curves, the lepton
universality against ``yields.compare_with`` and ``meta``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from gammastar.config import AnalysisConfig
from gammastar.config.yields import YieldsConfig
from gammastar.core import rundir
from gammastar.core.artifacts import make_meta
from gammastar.errors import InputError
from gammastar.physics.channels import LEPTON_CHANNELS
from gammastar.yields.formulas import AprimeYield, McpYield
from gammastar.yields.inputs import YieldInputs, _read_pairs
from gammastar.yields.npot import mock_normalisation
from gammastar.yields.theory import standard_recipe, theory_curves
from gammastar.yields.uncertainties import yield_uncertainties
from gammastar.yields.universality import compare_aprime


def _universality(aprime: dict, other: Path, lepton: str, ycfg: YieldsConfig) -> dict[str, Any]:
    """``lepton_universality`` and ``aprime_combined`` of ``yields.json`` against the other
    flavour's ``yields.json`` at ``other`` (:func:`gammastar.yields.universality.compare_aprime`)."""

    try:
        theirs = rundir.read_artifact(other, "yields.json", what="yields.compare_with")
        their_lepton = theirs["meta"].get("lepton", "mu" if theirs["meta"]["lepton_mass"] > 0.01
                                          else "e")  # fmt: skip
        block = theirs["aprime"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(
            f"{other}: yields.compare_with: not a readable yields.json ({err})"
        ) from None
    if their_lepton == lepton:
        raise InputError(
            f"{other}: yields.compare_with holds {lepton!r} yields too; give the other flavour's"
        )

    name = {c.flavour: c.name for c in LEPTON_CHANNELS.values()}
    rng = ycfg.universality_mass_range
    out = compare_aprime(
        {**aprime, "bin_edges": np.asarray(aprime["bin_edges"]).tolist()}, block,
        labels=(name[lepton], name[their_lepton]), mass_range=rng,
    )  # fmt: skip
    combined = out.pop("combined")
    combined.update(mass=out["mass"], bin_edges=out["bin_edges"], compared_with=str(other))
    return {"lepton_universality": out, "aprime_combined": combined}


def yields_document(
    cfg: AnalysisConfig,
    inp: YieldInputs,
    ap: AprimeYield,
    ap_source: str,
    mcp: McpYield,
    fid: dict[str, Any] | None,
    lost_fraction: list[float] | None,
    theory: bool,
) -> dict[str, Any]:
    """The ``yields.json`` document (public contract, docs/reference/outputs.md; schemas/…/yields.json):
    the JSON assembly, in one place."""

    doc: dict[str, Any] = {
        "aprime": {
            "mass": ap.mass,
            "per_pot_per_eps2": ap.per_pot_per_eps2,
            "stat_err": ap.stat_err,
            "bkg_sub_err": ap.bkg_sub_err,
            "bin_edges": ap.edges,
            "flags": ap.flags,
            "source": ap_source,
            "acceptance_lost_fraction": lost_fraction,
        },
        "mcp": {
            "mass": mcp.mass,
            "per_pot_per_q2": mcp.per_pot_per_q2,
            "stat_err": mcp.stat_err,
            "flags": mcp.flags,
            "source": mcp.source,
        },
    }
    inputs = list(inp.inputs)
    mc = cfg.yields.resolution_migration
    if fid is not None and mc is not None:  # the detector simulation behind the correction
        inputs += [cfg.resolve(p) for p in mc.simulation]
    if fid is not None:
        f, f_err = fid["aprime"]["fiducial_fraction"], fid["aprime"]["fiducial_fraction_err"]
        # the full-phase-space yield's uncertainty from the extrapolation (the fit's, 1σ)
        fid["aprime"]["extrapolation_err"] = np.abs(ap.per_pot_per_eps2) * f_err / f
        doc["aprime"].update(fid["aprime"])
        doc["mcp"].update(fid["mcp"])
        doc["extrapolation"] = fid["extrapolation"]
    doc["polarisation"] = inp.polarisation  # measured by the selection (gammastar.corrections.polarisation)
    if cfg.uncertainties.enabled:  # named nuisances (gammastar.yields.uncertainties)
        doc["uncertainties"] = _uncertainties(cfg, doc, inp, fiducial=fid is not None)
    if theory:
        doc["theory"] = theory_curves(cfg, ap.mass, np.asarray(cfg.yields.mcp_masses, float))
        doc["standard_recipe"] = standard_recipe(cfg, doc["aprime"])
    if cfg.yields.compare_with is not None:  # lepton universality
        other = cfg.resolve(cfg.yields.compare_with)
        doc.update(_universality(doc["aprime"], other, cfg.input.lepton, cfg.yields))
        inputs.append(other)
    doc["meta"] = _yields_meta(cfg, inp, ap, inputs)
    return doc


def _yields_meta(
    cfg: AnalysisConfig,
    inp: YieldInputs,
    ap: AprimeYield,
    inputs: list[str | os.PathLike[str]],
    pairs_match: bool | None = None,
) -> dict[str, Any]:
    """``yields.json`` ``meta`` (``pairs_match``: overrides ``inp.consistent``, whether the
    pairs' weights sum to ``unfolded_m``; in the fiducial phase space the yields are the pairs'
    whatever it says, and it is False only after a resolution unfolding of ``unfolded_m``)."""

    return make_meta(
        config_sha256=cfg.section_sha256(
            "input", "selection", "background", "unfold", "beam", "yields", "uncertainties"
        ),
        seed=None,
        inputs=inputs,
        stage="yields",
        config_sha256_full=cfg.sha256,
        n_pot=inp.n_pot,
        n_pot_source=inp.n_pot_source,
        mock_normalisation=mock_normalisation(inp.n_pot_source),
        target_interaction_lengths=cfg.beam.interaction_lengths,
        phase_space=inp.phase_space,
        pairs_match_unfolded_m=inp.consistent if pairs_match is None else pairs_match,
        lepton_mass=cfg.input.lepton_mass,
        lepton=cfg.input.lepton,
        mass_bin_width=float(np.median(np.diff(ap.edges))) if len(ap.edges) > 1 else None,
        units={
            "mass": "GeV",
            "aprime.per_pot_per_eps2": "A′ per POT per ε² (Eq. 6)",
            "mcp.per_pot_per_q2": "χχ̄ pairs per POT per Q² (Eq. 8)",
        },
        stat_err="sqrt(sum w^2) incl. like-sign subtraction; bkg_sub_err is that part alone",
        flags_doc="docs/explanation/method.md#10-flags",
    )


def _uncertainties(
    cfg: AnalysisConfig, doc: dict[str, Any], inp: YieldInputs, *, fiducial: bool
) -> dict[str, Any]:
    """``yields.json`` ``uncertainties``: :func:`gammastar.yields.uncertainties.yield_uncertainties`
    on the document so far (with ``polarisation``), the histograms and the pairs."""

    rd = rundir.RunDir(cfg.output_dir)
    pairs = None
    if rd.has_pairs():
        kin = fiducial or cfg.unfold.acceptance_map is not None  # λ_θ, the map's statistics
        cols = ["m", "weight", "charge"] + (["pT", "pz"] if kin else [])
        if fiducial and isinstance(cfg.unfold.decay_lambda_theta, str):
            cols += ["acc", "eff", "y"]  # a measured λ_θ moves the region (and the fit)
        pairs = _read_pairs(rd, cols, inp.flavour)
    return yield_uncertainties(cfg, _jsonable(doc), hists=inp.hists, pairs=pairs)


def _jsonable(doc: dict[str, Any]) -> dict[str, Any]:
    """The ``aprime`` arrays as lists (what :func:`gammastar.yields.uncertainties.yield_uncertainties`
    reads, the same as in the written file)."""
    ap = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in doc["aprime"].items()}
    return {**doc, "aprime": ap}
