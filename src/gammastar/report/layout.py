"""What the report holds and where: its sections in order, which figure goes to which section,
the cut-flow labels and the artifacts whose metadata the provenance lists.
"""

from __future__ import annotations

from gammastar.core import rundir

__all__ = ["CUTFLOW_LABELS", "FIGURE_RULES", "KEY_PACKAGES", "META_ARTIFACTS", "PNG_SIGNATURE", "REPORT_NAME", "SECTIONS", "TOP_FIGURE"]

REPORT_NAME = rundir.REPORT

KEY_PACKAGES = ("numpy", "uproot", "awkward", "vector", "hist", "torch", "zuko", "pyhf", "dask")
"""Packages whose exact installed versions the report records."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

TOP_FIGURE = f"{rundir.FIGURES_DIR}/reach.png"
"""The figure shown under the summary, at the top of the page (the reach stage's exclusion)."""

# (section id, title); the order of the page.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("mock", "Mock data"),
    ("selection", "Selection"),
    ("spectra", "Spectra"),
    ("yields", "Yields"),
    ("flow", "Flow"),
    ("validation", "Flow validation"),
    ("acceptance", "Acceptance"),
    ("reach", "Reach"),
    ("darksector", "Dark sectors: millicharged and iDM reach"),
    ("other", "Other figures"),
)

# Figure placement: first rule whose stem matches (``stem == p`` or ``stem.startswith(p + "_")``).
FIGURE_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("validation", ("flow_kl", "flow_kinematics", "validation", "validate", "kl")),
    ("mock", ("mock",)),
    ("selection", ("select", "selection", "cutflow")),
    ("spectra", ("spectra", "spectrum", "histograms")),
    ("yields", ("yields",)),
    ("flow", ("flow",)),
    ("acceptance", ("acceptance",)),
    ("darksector", ("reach_mcp", "reach_idm")),
    ("reach", ("reach",)),
)

CUTFLOW_LABELS = {
    "events": "events read",
    "leptons": "leptons",
    "leptons_nonfinite": "leptons dropped: non-finite momenta",
    "events_nonfinite": "events with a non-finite lepton",
    "leptons_charge": "leptons with |q| = 1",
    "leptons_energy": "leptons with E ≥ E_min",
    "leptons_theta": "leptons inside the θ window",
    "events_2leptons": "events with ≥ 2 leptons",
    "pairs": "lepton pairs",
    "pairs_mass": "pairs in the mass window",
    "pairs_pt": "pairs after the pair-pT cut",
    "pairs_rapidity": "pairs after the rapidity cut",
    "pairs_charge_class": "pairs in the kept charge classes",
    "pairs_eta_mumu_removed": "η → μμ pairs removed (truth)",
    "pairs_outside_map": "pairs outside the efficiency map",
    "os": "selected OS pairs",
    "pp": "selected ++ pairs",
    "mm": "selected −− pairs",
}

# artifacts whose ``meta`` (seed, hashes) the provenance table lists
META_ARTIFACTS = (
    rundir.SELECT,
    rundir.YIELDS,
    rundir.FLOW_META,
    rundir.FLOW_HISTORY,
    rundir.VALIDATION,
    rundir.REACH,
    rundir.WORKSPACES_INDEX,
)
