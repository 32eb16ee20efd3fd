"""The run report (``gammastar report``): one self-contained HTML page per run directory.

:func:`build_report` reads whatever artifacts a run directory holds (``mock.root``,
``select.json``, ``histograms.root``, ``yields.json``, ``flow/``, ``validation.json``,
``acceptance.npz``, ``reach.json``) and writes ``<run>/report.html``, in this order:

1. a summary: the expected excluded mass and ε range, the ε band and the A′ yield per POT per
   ε² at 3 masses (:func:`summary_masses`), the validation verdicts (the flow's KL, its closure
   in the detector, lepton universality, the yield's flags, what the limits rest on beyond the
   measurement), every warning of the page, and the artifacts the run lacks for it;
2. the reach figure (``figures/reach.png``);
3. one section per stage with the numbers behind it, and every other PNG under
   ``<run>/figures/`` and ``<run>/flow/`` placed in the matching section;
4. the run's provenance: config text and hash, package versions, stages, seeds, files.

A stage whose artifacts are missing is shown as "not run"; an unreadable artifact is shown as a
warning in its section and in the summary. Building the report never fails on a partial run.

The page has no external resources: inline CSS, one small inline script, and images
referenced by paths relative to the report. The script fills ``<pre id="gammastar-selfcheck">``
on ``window.load`` with ``{"images": N, "loaded": K, "errors": [...], "broken": [...]}``,
which the browser test (``tests/test_report.py``) reads from a headless Chromium.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
import math
import os
import platform
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

from gammastar._version import __version__
from gammastar.config import AnalysisConfig, load_config
from gammastar.core import rundir
from gammastar.core.artifacts import atomic_path
from gammastar.core.results import StageResult
from gammastar.errors import GammastarError

REPORT_NAME = rundir.REPORT

KEY_PACKAGES = ("numpy", "uproot", "awkward", "vector", "hist", "torch", "zuko", "pyhf", "coffea")
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


# ====================================================================== HTML pieces
class Raw(str):
    """Text that is already HTML (not escaped again by the functions below)."""


def esc(value: Any) -> Raw:
    """HTML-escape ``value`` (as text) unless it is :class:`Raw` already."""
    if isinstance(value, Raw):
        return value
    return Raw(html.escape(str(value), quote=True))


def fmt(value: Any, spec: str = ".4g") -> str:
    """A number for a table: ``n/a`` for None/NaN, integers with thin grouping."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v, spec) for v in value) if value else "none"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return format(value, spec)
    return str(value)


def fmt_err(value: Any, err: Any, spec: str = ".4g") -> str:
    """``value ± err`` (err omitted when unknown)."""
    text = fmt(value, spec)
    if _is_number(err):
        text += f" ± {fmt(float(err), '.2g')}"
    return text


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))


def table(headers: Sequence[Any], rows: Iterable[Sequence[Any]], cls: str = "") -> Raw:
    """An HTML table; cells escaped unless :class:`Raw`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    attr = f' class="{esc(cls)}"' if cls else ""
    return Raw(f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def kv_table(items: Iterable[tuple[Any, Any]]) -> Raw:
    """A two-column key/value table."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in items)
    return Raw(f'<table class="kv"><tbody>{rows}</tbody></table>')


def warning(text: str) -> Raw:
    """A visible warning box."""
    return Raw(f'<p class="warn">⚠ {esc(text)}</p>')


def not_run(what: str) -> Raw:
    """The "not run" note of a section whose artifacts are missing."""
    return Raw(f'<p class="notrun">not run: {esc(what)}</p>')


def details(summary: str, body: str, *, open_: bool = False) -> Raw:
    """A collapsible block."""
    attr = " open" if open_ else ""
    return Raw(f"<details{attr}><summary>{esc(summary)}</summary>{body}</details>")


# =========================================================================== reading
@dataclass
class Section:
    """Content of one report section."""

    ident: str
    title: str
    parts: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    ran: bool = False
    warning_texts: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> int:
        """How many warnings the section shows."""
        return len(self.warning_texts)

    def add(self, html_text: str) -> None:
        self.parts.append(html_text)

    def warn(self, text: str) -> None:
        self.warning_texts.append(text)
        self.parts.append(warning(text))


@dataclass(frozen=True)
class Figure:
    """A PNG in the run directory."""

    path: Path
    rel: str  # relative to the run directory, with '/' separators

    @property
    def caption(self) -> str:
        return _caption(self.rel)


def _read_json(run: Path, name: str, section: Section) -> dict[str, Any] | None:
    """JSON artifact ``name`` of the run directory, read and checked by
    :meth:`gammastar.core.rundir.RunDir.read_optional`; ``None`` when absent, and when it
    cannot be read: then its one-line reason (naming the file) is a warning in ``section``.
    A document of an unknown schema version or that breaks its schema is shown as far as it
    goes, with that error as a warning (a report shows, never fails)."""
    try:
        return rundir.RunDir(run).read_optional(name, invalid=lambda err: section.warn(str(err)))
    except GammastarError as err:
        section.warn(str(err))
        return None


def _get(d: Any, *keys: str, default: Any = None) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list | tuple) else []


def _num(v: Any) -> float | None:
    return float(v) if _is_number(v) else None


def _per_flavour(d: Any) -> str:
    """``{flavour: N_POT}`` (``meta.n_pot_by_flavour``, a prescaled trigger's N_POT / k) as
    ``mu 1.2e11, e 4.0e8``; ``n/a`` without it."""
    if not isinstance(d, dict) or not d:
        return "n/a"
    return ", ".join(f"{k} {fmt(_num(v), '.4e')}" for k, v in d.items())


# =========================================================================== figures
def _caption(rel: str) -> str:
    stem = Path(rel).stem
    known = {
        "mock_mass": "Mock dimuon mass spectra: OS by source channel, ++ and −− pairs",
        "mock_pt": "Mock pair-pT spectra",
        "yields_aprime": "A′ yield per POT per ε² (paper Fig. 2 analogue)",
        "yields_mcp": "χχ̄ yield per POT per Q² (paper Fig. 3 analogue)",
        "flow_loss": "Flow training and validation loss per epoch",
        "flow_kl": "k-NN KL divergence of the flow vs data, with data-vs-data bands (Fig. 4)",
        "flow_kinematics": "qT and E of the flow vs data in mass windows (Fig. 5 analogue)",
        "acceptance": "LLP detector acceptance",
        "reach": "Expected CLs reach in (m_A′, ε)",
        "reach_flow_closure": "The flow's A′ acceptance over its own pairs' inside the data's "
        "fiducial region, at the expected ε boundaries (reach.json flow_closure)",
        "reach_mcp": "Millicharged-particle detection reach: expected Q_low(m_χ) (reach_mcp.json)",
        "reach_idm": "iDM / i2DM reach: expected excluded y = ε²α_D(m₁/m_A′)⁴ per m₁ (reach_idm.json)",
    }
    if rel.startswith("flow/") and stem == "loss":
        return "Flow training and validation loss per epoch (flow/loss.png)"
    text = known.get(stem, stem.replace("_", " "))
    return f"{text} ({rel})"


def _section_of(fig: Figure) -> str:
    stem = Path(fig.rel).stem.lower()
    for ident, prefixes in FIGURE_RULES:
        if any(stem == p or stem.startswith(p + "_") for p in prefixes):
            return ident
    if fig.rel.startswith("flow/"):
        return "flow"
    return "other"


def find_figures(run: Path) -> list[Figure]:
    """Every ``*.png`` in ``<run>/figures/`` (recursively) and ``<run>/flow/`` (top level)."""
    found: list[Figure] = []
    figdir = run / rundir.FIGURES_DIR
    if figdir.is_dir():
        found += [Figure(p, p.relative_to(run).as_posix()) for p in sorted(figdir.rglob("*.png"))]
    flowdir = run / rundir.FLOW_DIR
    if flowdir.is_dir():
        found += [Figure(p, p.relative_to(run).as_posix()) for p in sorted(flowdir.glob("*.png"))]
    return [f for f in found if f.path.is_file()]


def _figure_html(fig: Figure) -> Raw:
    src = quote(fig.rel)  # relative URL, path separators kept
    note = ""
    try:
        with open(fig.path, "rb") as fh:
            if fh.read(8) != PNG_SIGNATURE:
                note = str(warning(f"{fig.rel} is not a valid PNG file"))
    except OSError as err:
        note = str(warning(f"{fig.rel}: cannot read ({err.strerror})"))
    return Raw(
        f'<figure><a href="{esc(src)}"><img src="{esc(src)}" alt="{esc(fig.caption)}" '
        f'loading="eager"></a><figcaption>{esc(fig.caption)}</figcaption>{note}</figure>'
    )


# =========================================================================== sections
def _section_json(run: Path, name: str, s: Section) -> dict[str, Any] | None:
    """The JSON artifact behind a section: "not run" when absent, a warning when unusable."""
    if not (run / name).exists():
        s.add(not_run(f"{name} not found"))
        return None
    s.ran = True
    return _read_json(run, name, s)


def _mock_section(cfg: Any, run: Path, s: Section) -> None:
    path = run / rundir.MOCK
    if not path.exists():
        if getattr(cfg, "mock", None) is None:
            s.add(not_run("this analysis reads experiment ntuples (no mock section in the config)"))
        else:
            s.add(not_run("mock.root not found"))
        return
    s.ran = True
    try:
        meta = rundir.RunDir(run).read_root_meta(rundir.MOCK)
    except GammastarError as err:  # a report shows, never fails
        s.warn(str(err))
        return
    s.add(
        kv_table(
            [
                ("file", rundir.MOCK),
                ("generator", fmt(meta.get("generator"))),
                ("equivalent protons on target N_POT", fmt(_num(meta.get("n_pot")), ".4e")),
                ("N_POT per flavour", _per_flavour(meta.get("n_pot_by_flavour"))),
                ("generated sources (requested)", fmt(meta.get("events"))),
                ("generated sources (total)", fmt(meta.get("n_generated_total"))),
                ("recorded events (≥ 2 muons)", fmt(meta.get("n_events_written"))),
                ("truth entries", fmt(meta.get("n_truth"))),
                ("target interaction lengths", fmt(meta.get("target_interaction_lengths"))),
                ("σ_inel (mb)", fmt(meta.get("sigma_inel_mb"))),
                ("beam energy (GeV)", fmt(meta.get("beam_energy"))),
                ("PDG edition", fmt(meta.get("pdg_edition"))),
                ("seed", fmt(meta.get("seed"))),
            ]
        )
    )
    per = meta.get("n_generated")
    if isinstance(per, dict) and per:
        total = sum(v for v in per.values() if _is_number(v)) or 0
        rows = [
            (k, fmt(v), f"{100.0 * v / total:.2f} %" if total and _is_number(v) else "n/a")
            for k, v in per.items()
        ]
        s.add("<h3>Generated sources per channel</h3>")
        s.add(table(["channel", "generated", "fraction"], rows, "num"))


def _selection_channels(doc: dict[str, Any], s: Section) -> None:
    """Both channels in one run: their pair counts (the tables after are the primary's)."""
    flavours = doc.get("flavours") if isinstance(doc.get("flavours"), dict) else {}
    if flavours:  # both channels in one run: the tables below are the primary flavour's
        rows = [
            (esc(ch), fmt(_get(b, "counts", "os")), fmt(_get(b, "counts", "pp")),
             fmt(_get(b, "counts", "mm")), fmt(_get(b, "phase_space")))
            for ch, b in flavours.items()
        ]  # fmt: skip
        s.add("<h3>Channels (both in one run)</h3>")
        s.add(table(["channel", "OS pairs", "++ pairs", "−− pairs", "phase space"], rows, "num"))
        s.add(
            f'<p class="note">The counts, cut flow and unfolding below are the '
            f"{esc(next(iter(flavours)))} channel's (the primary flavour); each channel's are "
            "in select.json flavours.</p>"
        )


def _pair_counts(doc: dict[str, Any], s: Section) -> None:
    """``select.json`` ``counts``: pairs per charge class, the combinatorial estimate, the
    signal and the unfolded yield."""
    counts = doc.get("counts")
    if isinstance(counts, dict):
        s.add("<h3>Pair counts</h3>")
        s.add(
            kv_table(
                [
                    ("events read", fmt(counts.get("events"))),
                    ("OS pairs", fmt(counts.get("os"))),
                    ("++ pairs", fmt(counts.get("pp"))),
                    ("−− pairs", fmt(counts.get("mm"))),
                    (
                        "combinatorial OS estimate (like-sign)",
                        fmt_err(counts.get("comb_estimate"), counts.get("comb_estimate_err")),
                    ),
                    (
                        "signal (OS − combinatorial)",
                        fmt_err(counts.get("signal"), counts.get("signal_err")),
                    ),
                    (
                        "unfolded (÷ ε, background subtracted)",
                        fmt_err(counts.get("unfolded"), counts.get("unfolded_err")),
                    ),
                ]
            )
        )
    else:
        s.warn("select.json has no 'counts'")


def _cutflow_table(doc: dict[str, Any], s: Section) -> None:
    """The cut flow, each count as a share of the first count of its kind."""
    cutflow = doc.get("cutflow")
    if isinstance(cutflow, dict) and cutflow:
        s.add("<h3>Cut flow</h3>")
        base_of = {"events": "events", "leptons": "leptons", "pairs": "pairs"}
        base_of.update(os="pairs", pp="pairs", mm="pairs")
        rows = []
        for key, val in cutflow.items():
            base = cutflow.get(base_of.get(key.split("_", 1)[0], ""))
            frac = (
                f"{100.0 * val / base:.3g} %"
                if _is_number(val) and _is_number(base) and base > 0
                else ""
            )
            rows.append((CUTFLOW_LABELS.get(key, key), key, fmt(val), frac))
        s.add(table(["step", "key", "count", "% of the first count"], rows, "num"))


def _unfold_table(doc: dict[str, Any], s: Section) -> None:
    """The efficiency unfolding's counts (map, pairs outside it, at ε = 0, iterations)."""
    unfold = doc.get("unfold")
    if isinstance(unfold, dict):
        s.add("<h3>Efficiency unfolding</h3>")
        items = [
            ("efficiency map", fmt(unfold.get("map"))),
            ("pairs", fmt(unfold.get("n_pairs"))),
            ("pairs outside the map", fmt(unfold.get("n_outside_map"))),
            ("pairs at ε = 0", fmt(unfold.get("n_zero_efficiency"))),
        ]
        bayes = unfold.get("bayesian")
        if isinstance(bayes, dict):
            items.append(("Bayesian unfolding iterations", fmt(bayes.get("iterations"))))
        s.add(kv_table(items))


def _selection_section(run: Path, s: Section) -> None:
    doc = _section_json(run, rundir.SELECT, s)
    if doc is None:
        return
    _selection_channels(doc, s)
    _pair_counts(doc, s)
    _cutflow_table(doc, s)
    _unfold_table(doc, s)
    eta = doc.get("eta_mumu")
    if isinstance(eta, dict):
        s.add(kv_table([(f"η → μμ removal: {k}", fmt(v)) for k, v in eta.items()]))
    bad = doc.get("bad_files")
    if isinstance(bad, dict) and bad:
        s.warn(f"{len(bad)} input file(s) skipped as unreadable")
        s.add(table(["file", "reason"], list(bad.items())))
    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    extra = [
        ("layout", fmt(meta.get("layout"))),
        ("executor", fmt(meta.get("executor"))),
        ("like-sign R factor", fmt(meta.get("r_factor"))),
        ("SS weight", fmt(meta.get("ss_weight"))),
        ("wall time (s)", fmt(_num(doc.get("elapsed_s")), ".3g")),
    ]
    s.add(kv_table(extra))
    if meta.get("weight_convention"):
        s.add(f'<p class="note">Weights: {esc(meta["weight_convention"])}</p>')


def _spectra_section(run: Path, s: Section) -> None:
    path = run / rundir.HISTOGRAMS
    if not path.exists():
        s.add(not_run("histograms.root not found"))
        return
    s.ran = True
    try:
        import uproot

        rows = []
        with uproot.open(path) as f:
            for name, cls in sorted(f.classnames(recursive=False).items()):
                if not cls.startswith("TH"):
                    continue
                h = f[name]
                edges = h.axis(0).edges()
                vals = h.values(flow=False)
                total = float(vals.sum())
                var = h.variances(flow=False)
                err = float(var.sum()) ** 0.5 if var is not None else None
                rows.append(
                    (
                        name.split(";")[0],
                        cls,
                        "×".join(str(n) for n in vals.shape),
                        f"{edges[0]:.4g} – {edges[-1]:.4g}",
                        fmt_err(total, err),
                    )
                )
    except Exception as err:  # noqa: BLE001 - a report shows, never fails
        s.warn(f"histograms.root: cannot read it ({type(err).__name__}: {err})")
        return
    s.add("<h3>Histograms in histograms.root</h3>")
    s.add(table(["name", "class", "bins", "first axis range", "sum of weights"], rows, "num"))


def _pick(n: int, k: int) -> list[int]:
    """About ``k`` indices spread evenly over ``range(n)`` (all when n ≤ k)."""
    if n <= k:
        return list(range(n))
    step = (n - 1) / (k - 1)
    return sorted({round(i * step) for i in range(k)})


def _flags_text(f: Any) -> str:
    return ", ".join(str(x) for x in f) if isinstance(f, list) and f else "—"


def _polarisation_table(pol: dict[str, Any], s: Section) -> None:
    """The measured decay angular distribution (``yields.json`` → ``polarisation``)."""
    edges = _as_list(pol.get("mass_edges"))
    cols = {k: _as_list(pol.get(k)) for k in (
        "lambda_theta", "lambda_theta_err", "lambda_phi", "lambda_phi_err",
        "lambda_theta_phi", "lambda_theta_phi_err", "n_pairs")}  # fmt: skip

    def pm(k: str, i: int) -> str:
        v, e = cols[k], cols[f"{k}_err"]
        if i >= len(v) or _num(v[i]) is None:
            return "n/a"
        return f"{fmt(v[i], '+.3f')} ± {fmt(e[i], '.3f') if i < len(e) else 'n/a'}"

    rows = [
        (f"{fmt(edges[i], '.3f')}–{fmt(edges[i + 1], '.3f')}",
         fmt(cols["n_pairs"][i]) if i < len(cols["n_pairs"]) else "n/a",
         pm("lambda_theta", i), pm("lambda_phi", i), pm("lambda_theta_phi", i))
        for i in range(len(edges) - 1)
    ]  # fmt: skip
    head = ["m (GeV)", "OS pairs", "λ_θ", "λ_φ", "λ_θφ"]
    sc = pol.get("selection_correction")
    if isinstance(sc, dict):  # unfold.polarisation_correction: the fit's own λ_θ beside it
        cols["fit"] = _as_list(sc.get("lambda_theta_measured"))
        cols["fit_err"] = _as_list(sc.get("lambda_theta_measured_err"))
        kept = set(_as_list(sc.get("uncorrected_bins")))  # as measured: marked
        rows = [(*r[:2], r[2] + (" (as fitted)" if i in kept else ""), pm("fit", i), *r[3:])
                for i, r in enumerate(rows)]  # fmt: skip
        head = ["m (GeV)", "OS pairs", "λ_θ (corrected)", "λ_θ as fitted", "λ_φ", "λ_θφ"]
    s.add(f"<h3>Decay angular distribution, {esc(fmt(pol.get('frame')))} frame</h3>")
    s.add(table(head, rows, "num"))
    if isinstance(sc, dict):
        s.add(
            '<p class="note">λ_θ corrected for the mass bins\' selection of decay angles with a '
            "detector simulation (unfold.polarisation_correction: its fit as the data's and at "
            "its truth, inverted through the response's slope; docs/explanation/method.md). Truth side: "
            + esc(fmt(sc.get("truth_side", "the reconstructed γ* at their truth")))
            + "."
            + _simulation_share_text(sc, edges)
            + "</p>"
        )
    s.add(
        '<p class="note">1 + λ_θ cos²θ* + λ_φ sin²θ* cos2φ* + λ_θφ sin2θ* cosφ*, measured from '
        "the like-sign-subtracted, efficiency-corrected pairs with the acceptance in the "
        "likelihood; used in the per-pair acceptance: "
        + esc(fmt(pol.get("used_in_acceptance")))
        + " (docs/explanation/method.md, λ_θ).</p>"
    )


def _simulation_share_text(sc: dict, edges: list) -> str:
    """The sentence "The simulation's own statistics make at most …" of a
    ``selection_correction`` block with ``simulation_share`` ("" without a share)."""
    share = [
        (_num(x), i)
        for i, x in enumerate(_as_list(sc.get("simulation_share")))
        if _num(x) is not None
    ]
    if not share:
        return ""
    x, i = max(share)
    where = (
        f"{fmt(edges[i], '.3f')}–{fmt(edges[i + 1], '.3f')} GeV" if i + 1 < len(edges) else "n/a"
    )
    return (
        f" The simulation's own statistics make at most {100 * x:.0f}% of a corrected λ_θ's "
        f"variance ({esc(where)}), a fluctuation every analysis of that simulation shares."
    )


def _sigma_y_text(ex: dict, sig: list, sig_err: Any) -> str:
    """The text " (σ_y = v ± e[, external: source])" of the extrapolation block ("" without)."""
    if not sig:
        return ""
    ext = ex.get("y_sigma_external")
    src = f", external: {esc(str(ext.get('source')))}" if isinstance(ext, dict) else ""
    return f" (σ_y = {fmt(sig[0], '.3f')} ± {fmt(sig_err, '.3f')}{src})"


def _aprime_table(doc: dict[str, Any], s: Section) -> None:
    """The A′ yield per POT per ε² per mass bin (Eq. 6), its errors, fiducial fraction and
    flags, and the flags counted."""
    ap = doc.get("aprime")
    if isinstance(ap, dict):
        mass = _as_list(ap.get("mass"))
        y = _as_list(ap.get("per_pot_per_eps2"))
        err = _as_list(ap.get("stat_err"))
        berr = _as_list(ap.get("bkg_sub_err"))
        flags = _as_list(ap.get("flags"))
        ffid = _as_list(ap.get("fiducial_fraction"))
        n = len(mass)
        if len(y) != n:
            s.warn(f"yields.json: aprime.mass has {n} entries, per_pot_per_eps2 {len(y)}")
            n = min(n, len(y))

        def row(i: int) -> tuple[str, ...]:
            return (
                fmt(mass[i], ".4f"),
                fmt(y[i], ".4e"),
                fmt(err[i], ".2e") if i < len(err) else "n/a",
                fmt(berr[i], ".2e") if i < len(berr) else "n/a",
                *((fmt(ffid[i], ".3f") if i < len(ffid) else "n/a",) if ffid else ()),
                _flags_text(flags[i]) if i < len(flags) else "—",
            )

        headers = ["m_A′ (GeV)", "A′ per POT per ε²", "stat. error", "of which bkg. sub."]
        headers += [*(["fiducial fraction"] if ffid else []), "flags"]
        s.add(f"<h3>A′ yield per POT per ε² (Eq. 6), {n} mass bins</h3>")
        s.add(table(headers, [row(i) for i in _pick(n, 8)], "num"))
        if n > 8:
            s.add(details(f"all {n} mass bins", table(headers, [row(i) for i in range(n)], "num")))
        counted: dict[str, int] = {}
        for f in flags:
            for x in f if isinstance(f, list) else []:
                counted[str(x)] = counted.get(str(x), 0) + 1
        if counted:
            s.add(
                '<p class="note">A′ flags (bins): '
                + esc(", ".join(f"{k}: {v}" for k, v in sorted(counted.items())))
                + " (see docs/explanation/method.md#10-flags)</p>"
            )
    else:
        s.warn("yields.json has no 'aprime'")


def _mcp_table(doc: dict[str, Any], s: Section) -> None:
    """The χχ̄ yield per POT per Q² per mass (Eq. 8)."""
    mcp = doc.get("mcp")
    if isinstance(mcp, dict):
        mass = _as_list(mcp.get("mass"))
        y = _as_list(mcp.get("per_pot_per_q2"))
        err = _as_list(mcp.get("stat_err"))
        flags = _as_list(mcp.get("flags"))
        rows = [
            (
                fmt(mass[i], ".4g"),
                fmt(y[i], ".4e") if i < len(y) else "n/a",
                fmt(err[i], ".2e") if i < len(err) else "n/a",
                _flags_text(flags[i]) if i < len(flags) else "—",
            )
            for i in range(len(mass))
        ]
        s.add("<h3>χχ̄ yield per POT per Q² (Eq. 8)</h3>")
        s.add(table(["m_χ (GeV)", "χχ̄ per POT per Q²", "stat. error", "flags"], rows, "num"))
    else:
        s.warn("yields.json has no 'mcp'")


def _yields_section(run: Path, s: Section) -> None:
    doc = _section_json(run, rundir.YIELDS, s)
    if doc is None:
        return
    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    s.add(
        kv_table(
            [
                ("N_POT", fmt(_num(meta.get("n_pot")), ".4e")),
                ("N_POT source", fmt(meta.get("n_pot_source"))),
                ("N_POT per channel", _per_flavour(meta.get("n_pot_by_flavour"))),
                ("A′ source", fmt(_get(doc, "aprime", "source"))),
                ("χχ̄ source", fmt(_get(doc, "mcp", "source"))),
                ("mass bin width (GeV)", fmt(meta.get("mass_bin_width"))),
                ("pairs match unfolded_m", fmt(meta.get("pairs_match_unfolded_m"))),
                ("phase space", fmt(meta.get("phase_space"))),
            ]
        )
    )
    ex = doc.get("extrapolation")
    if isinstance(ex, dict):
        sig, sig_err = _as_list(ex.get("y_sigma")), _num(ex.get("y_sigma_err"))
        s.add(
            '<p class="note">Measured inside the fiducial region (A ≥ '
            + esc(fmt(_get(ex, "fiducial", "min_acceptance")))
            + "); beyond it extrapolated with the fitted model "
            + esc(fmt(ex.get("model")))
            + _sigma_y_text(ex, sig, sig_err)
            + ": the fiducial fraction per mass bin is in the table (docs/explanation/method.md).</p>"
        )
    pol = doc.get("polarisation")
    if isinstance(pol, dict):
        _polarisation_table(pol, s)
    _aprime_table(doc, s)
    _universality_block(doc, s)
    _mcp_table(doc, s)


def _universality_block(doc: dict[str, Any], s: Section) -> None:
    """Lepton universality (``yields.compare_with``, docs/explanation/method.md): the A′-yield ratio of
    the two flavours per shared mass bin with its error, χ²/ndf and p-value, and the
    combined yield where ``aprime_combined`` holds it."""
    uni = doc.get("lepton_universality")
    if not isinstance(uni, dict):
        return
    mass = _as_list(uni.get("mass"))
    ratio, rerr = _as_list(uni.get("ratio")), _as_list(uni.get("ratio_err"))
    comb = doc.get("aprime_combined") if isinstance(doc.get("aprime_combined"), dict) else {}
    ap = doc.get("aprime") if isinstance(doc.get("aprime"), dict) else {}
    if not comb and "weights" in ap:  # both channels in one run: `aprime` is the combination
        at = {round(float(m), 9): i for i, m in enumerate(_as_list(ap.get("mass")))}
        pick = [at.get(round(float(m), 9)) for m in mass]
        comb = {
            k: [_as_list(ap.get(k))[i] if i is not None else None for i in pick]
            for k in ("per_pot_per_eps2", "stat_err", "syst_err")
        }
        comb["compared_with"] = "the other channel of this run (yields.json flavours)"
    cy, cerr = _as_list(comb.get("per_pot_per_eps2")), _as_list(comb.get("stat_err"))
    csys = _as_list(comb.get("syst_err"))
    rows = [
        (
            fmt(mass[i], ".4f"),
            fmt_err(ratio[i], rerr[i] if i < len(rerr) else None, ".3f")
            if i < len(ratio)
            else "n/a",
            fmt(cy[i], ".4e") if i < len(cy) else "n/a",
            fmt(cerr[i], ".2e") if i < len(cerr) else "n/a",
            fmt(csys[i], ".2e") if i < len(csys) else "n/a",
        )
        for i in range(len(mass))
    ]
    label = esc(fmt(uni.get("ratio_of")))
    s.add(f"<h3>Lepton universality: A′ yield ratio {label}</h3>")
    rng = _as_list(uni.get("mass_range"))
    s.add(
        kv_table(
            [
                ("compared with", fmt(comb.get("compared_with"))),
                ("χ² / ndf", f"{fmt(_num(uni.get('chi2')), '.2f')} / {fmt(uni.get('ndf'))}"),
                ("p-value", fmt(_num(uni.get("p_value")), ".3g")),
                ("χ² mass range (GeV)", " – ".join(fmt(v, ".3g") for v in rng) if rng else "all"),
            ]
        )
    )
    headers = ["m (GeV)", f"ratio {label}", "combined A′ per POT per ε²", "stat.", "syst."]
    s.add(table(headers, [rows[i] for i in _pick(len(rows), 8)], "num"))
    if len(rows) > 8:
        s.add(details(f"all {len(rows)} shared mass bins", table(headers, rows, "num")))


def _flow_section(run: Path, s: Section) -> None:
    meta_path = run / rundir.FLOW_META
    hist_path = run / rundir.FLOW_HISTORY
    if not meta_path.exists() and not hist_path.exists():
        s.add(not_run("flow/meta.json not found"))
        return
    s.ran = True
    if meta_path.exists():
        doc = _read_json(run, rundir.FLOW_META, s)
        if doc is not None:
            meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
            mr = _as_list(doc.get("mass_range"))
            s.add(
                kv_table(
                    [
                        ("model", "flow/model.pt (state_dict) + flow/meta.json"),
                        ("format", f"{fmt(doc.get('format'))} v{fmt(doc.get('format_version'))}"),
                        (
                            "mass range (GeV)",
                            f"{fmt(mr[0])} – {fmt(mr[1])}" if len(mr) == 2 else "n/a",
                        ),
                        ("training rows", fmt(meta.get("n_train_rows"))),
                        ("training data", fmt(meta.get("training_data"))),
                        ("epochs run", fmt(meta.get("epochs_run"))),
                        ("best epoch", fmt(meta.get("best_epoch"))),
                        ("stopped early", fmt(meta.get("stopped_early"))),
                        ("best validation loss", fmt(_num(meta.get("best_val_loss")), ".5g")),
                        ("training wall time (s)", fmt(_num(meta.get("train_wall_s")), ".3g")),
                        ("ensemble size", fmt(meta.get("ensemble_size"))),
                        ("seed", fmt(meta.get("seed"))),
                        ("model sha256", fmt(doc.get("model_sha256"))),
                    ]
                )
            )
            arch = doc.get("architecture")
            if isinstance(arch, dict):
                s.add(details("architecture", kv_table((k, fmt(v)) for k, v in arch.items())))
    else:
        s.warn("flow/meta.json not found (history only: training interrupted?)")
    if hist_path.exists():
        hist = _read_json(run, rundir.FLOW_HISTORY, s)
        if hist is not None:
            train = [v for v in _as_list(hist.get("train")) if _is_number(v)]
            val = [v for v in _as_list(hist.get("val")) if _is_number(v)]
            s.add(
                kv_table(
                    [
                        ("epochs in history", fmt(len(_as_list(hist.get("val"))))),
                        ("final training loss", fmt(train[-1] if train else None, ".5g")),
                        ("final validation loss", fmt(val[-1] if val else None, ".5g")),
                        ("lowest validation loss", fmt(min(val) if val else None, ".5g")),
                    ]
                )
            )


def _band(bands: list[Any], i: int) -> tuple[float | None, float | None]:
    b = _as_list(bands[i]) if i < len(bands) else []
    return (_num(b[0]) if len(b) > 0 else None), (_num(b[1]) if len(b) > 1 else None)


def kl_verdicts(doc: dict[str, Any]) -> list[str | None]:
    """Per mass window of ``validation.json``: ``"68"`` (the model-vs-data KL inside the
    data-vs-data 68 % band's upper edge), ``"95"`` (inside the 95 % band's), ``"fail"`` (above
    it) or ``None`` (not judged: too few data for a band). The flow passes a window when its
    KL is no larger than the data's own at 95 % (paper Fig. 4)."""
    kl = _as_list(doc.get("kl_model"))
    b68 = _as_list(doc.get("kl_data_68"))
    b95 = _as_list(doc.get("kl_data_95"))
    out: list[str | None] = []
    for i in range(len(_as_list(doc.get("mass")))):
        k = _num(kl[i]) if i < len(kl) else None
        hi68, hi95 = _band(b68, i)[1], _band(b95, i)[1]
        if k is None or hi95 is None:
            out.append(None)
        elif k <= hi95:
            out.append("68" if hi68 is not None and k <= hi68 else "95")
        else:
            out.append("fail")
    return out


def _validation_section(run: Path, s: Section) -> None:
    doc = _section_json(run, rundir.VALIDATION, s)
    if doc is None:
        return
    mass = _as_list(doc.get("mass"))
    kl = _as_list(doc.get("kl_model"))
    std = _as_list(doc.get("kl_model_std"))
    b68 = _as_list(doc.get("kl_data_68"))
    b95 = _as_list(doc.get("kl_data_95"))
    ndata = _as_list(doc.get("n_data"))
    rows = []
    verdicts = kl_verdicts(doc)
    n_judged = sum(v is not None for v in verdicts)
    n_pass = sum(v in ("68", "95") for v in verdicts)
    for i, m in enumerate(mass):
        k = _num(kl[i]) if i < len(kl) else None
        lo68, hi68 = _band(b68, i)
        lo95, hi95 = _band(b95, i)
        verdict = {
            None: Raw('<span class="na">n/a (too few data)</span>'),
            "68": Raw('<span class="pass">pass (inside 68 %)</span>'),
            "95": Raw('<span class="pass">pass (inside 95 %)</span>'),
            "fail": Raw('<span class="fail">fail (above 95 %)</span>'),
        }[verdicts[i]]
        rows.append(
            (
                fmt(m, ".4g"),
                fmt(ndata[i]) if i < len(ndata) else "n/a",
                fmt_err(k, std[i] if i < len(std) else None),
                f"[{fmt(lo68)}, {fmt(hi68)}]",
                f"[{fmt(lo95)}, {fmt(hi95)}]",
                verdict,
            )
        )
    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    s.add(
        f'<p class="summary">{n_pass} of {n_judged} mass windows pass: the model-vs-data KL '
        "lies below the upper edge of the 95 % data-vs-data band.</p>"
    )
    s.add(
        table(
            [
                "mass (GeV)",
                "data points",
                "KL model vs data",
                "data 68 % band",
                "data 95 % band",
                "verdict",
            ],
            rows,
            "num",
        )
    )
    s.add(
        kv_table(
            [
                ("k (nearest neighbours)", fmt(meta.get("k"))),
                ("window full width (GeV)", fmt(meta.get("window"))),
                ("repeats", fmt(meta.get("repeats"))),
                ("space", fmt(meta.get("space"))),
                ("masses outside the flow range", fmt(meta.get("skipped_masses"))),
                ("seed", fmt(meta.get("seed"))),
            ]
        )
    )


def _acceptance_section(run: Path, s: Section) -> None:
    path = run / rundir.ACCEPTANCE
    if not path.exists():
        s.add(not_run("acceptance.npz not found"))
        return
    s.ran = True
    try:
        import numpy as np

        with np.load(path, allow_pickle=False) as z:
            mass = np.asarray(z["mass"], dtype=float)
            eps = np.asarray(z["eps"], dtype=float)
            acc = np.asarray(z["acceptance"], dtype=float)
    except Exception as err:  # noqa: BLE001 - a report shows, never fails
        s.warn(f"acceptance.npz: cannot read it ({type(err).__name__}: {err})")
        return
    if acc.shape != (mass.size, eps.size):
        s.warn(f"acceptance.npz: acceptance shape {acc.shape} ≠ (mass, eps) grid")
        return
    s.add(
        kv_table(
            [
                ("grid", f"{mass.size} masses × {eps.size} ε values"),
                ("mass range (GeV)", f"{fmt(float(mass.min()))} – {fmt(float(mass.max()))}"),
                ("ε range", f"{fmt(float(eps.min()))} – {fmt(float(eps.max()))}"),
                ("largest acceptance", fmt(float(np.nanmax(acc)) if acc.size else None)),
            ]
        )
    )
    if mass.size:
        rows = []
        for i in _pick(mass.size, 8):
            j = int(np.nanargmax(acc[i])) if np.any(np.isfinite(acc[i])) else None
            rows.append(
                (
                    fmt(float(mass[i]), ".4g"),
                    fmt(float(acc[i, j]) if j is not None else None),
                    fmt(float(eps[j]) if j is not None else None, ".3e"),
                )
            )
        s.add(table(["m_A′ (GeV)", "max acceptance", "at ε"], rows, "num"))


def _reach_eps_table(doc: dict[str, Any], s: Section) -> None:
    """The excluded ε range per mass (expected median; observed; the extrapolated share)."""
    exp = doc.get("expected") if isinstance(doc.get("expected"), dict) else {}
    mass = _as_list(exp.get("mass"))
    lo = _as_list(exp.get("eps_low"))
    hi = _as_list(exp.get("eps_high"))
    obs = doc.get("observed") if isinstance(doc.get("observed"), dict) else None
    ext = doc.get("extrapolation") if isinstance(doc.get("extrapolation"), dict) else None
    share = _as_list(ext.get("max_fraction_in_excluded_region")) if ext else []
    headers = ["m_A′ (GeV)", "expected ε low", "expected ε high"]
    if share:
        headers.append("extrapolated share")
    if obs:
        headers += ["observed ε low", "observed ε high"]

    def row(i: int) -> list[str]:
        r = [
            fmt(mass[i], ".4g"),
            fmt(lo[i], ".3e") if i < len(lo) and lo[i] is not None else "not excluded",
            fmt(hi[i], ".3e") if i < len(hi) and hi[i] is not None else "not excluded",
        ]
        if share:
            r.append(fmt(share[i], ".2f") if i < len(share) and share[i] is not None else "—")
        if obs:
            olo, ohi = _as_list(obs.get("eps_low")), _as_list(obs.get("eps_high"))
            r += [
                fmt(olo[i], ".3e") if i < len(olo) and olo[i] is not None else "not excluded",
                fmt(ohi[i], ".3e") if i < len(ohi) and ohi[i] is not None else "not excluded",
            ]
        return r

    s.add("<h3>Excluded ε range per mass (expected median)</h3>")
    s.add(table(headers, [row(i) for i in _pick(len(mass), 10)], "num"))
    if len(mass) > 10:
        s.add(
            details(f"all {len(mass)} masses", table(headers, [row(i) for i in range(len(mass))]))
        )


def _reach_bands(doc: dict[str, Any], s: Section) -> None:
    """The excluded ε range at the ±1σ, ±2σ expected limits per mass."""
    mass = _as_list(_get(doc, "expected", "mass"))
    bands = doc.get("bands") if isinstance(doc.get("bands"), dict) else {}
    names = [b for b in ("-2", "-1", "+1", "+2") if isinstance(bands.get(b), dict)]
    if names and mass:

        def band_range(b: str, i: int) -> str:
            blo = _as_list(bands[b].get("eps_low"))
            bhi = _as_list(bands[b].get("eps_high"))
            if i < len(blo) and i < len(bhi) and _is_number(blo[i]) and _is_number(bhi[i]):
                return f"{fmt(blo[i], '.2e')} – {fmt(bhi[i], '.2e')}"
            return "not excluded"

        rows = [[fmt(mass[i], ".4g")] + [band_range(b, i) for b in names] for i in range(len(mass))]
        s.add(
            details(
                "expected-limit bands (excluded ε range at the ±1σ, ±2σ expected limits)",
                table(["m_A′ (GeV)"] + [f"{b}σ" for b in names], rows, "num"),
            )
        )


def _reach_section(run: Path, s: Section) -> None:
    doc = _section_json(run, rundir.REACH, s)
    if doc is None:
        return
    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    methods = [m for m in _as_list(_get(doc, "signal_limit", "method")) if m is not None]
    used = sorted({str(m) for m in methods})
    cl = _num(doc.get("cl"))
    exp = doc.get("expected") if isinstance(doc.get("expected"), dict) else {}
    mass = _as_list(exp.get("mass"))
    lo = _as_list(exp.get("eps_low"))
    hi = _as_list(exp.get("eps_high"))
    index = _read_json(run, rundir.WORKSPACES_INDEX, s)
    n_ws = len(_as_list(_get(index, "workspaces")))
    excluded = [i for i in range(len(mass)) if i < len(lo) and _is_number(lo[i])]
    s.add(
        kv_table(
            [
                ("confidence level", f"{100 * cl:.0f} % CLs" if cl is not None else "n/a"),
                ("method", fmt(meta.get("method"))),
                ("methods used per mass", ", ".join(used) if used else "n/a"),
                ("channels", fmt(", ".join(str(c) for c in _as_list(meta.get("channels"))))),
                ("N_POT", fmt(_num(meta.get("n_pot")), ".4e")),
                ("yield scale", fmt(meta.get("yield_scale"))),
                ("A′ kinematics", fmt(meta.get("sampler"))),
                ("pyhf workspaces", f"{n_ws} (workspaces/index.json)"),
                (
                    "expected exclusion",
                    f"at {len(excluded)} of {len(mass)} masses"
                    + (
                        f"; ε from {fmt(min(float(lo[i]) for i in excluded), '.3e')}"
                        f" to {fmt(max(float(hi[i]) for i in excluded if _is_number(hi[i])), '.3e')}"
                        if excluded and any(_is_number(hi[i]) for i in excluded)
                        else ""
                    ),
                ),
            ]
        )
    )
    geom = meta.get("geometry")
    if isinstance(geom, dict):
        s.add(details("detector geometry", kv_table((k, fmt(v)) for k, v in geom.items())))
    ext = doc.get("extrapolation") if isinstance(doc.get("extrapolation"), dict) else None
    if ext:
        s.add(
            "<p class=\"note\">Signal outside the data's fiducial region (the yields' fitted model, "
            f"reach.extrapolation: {esc(fmt(ext.get('mode')))}): its largest share of N_sig "
            "in each mass's excluded region is in the table (docs/explanation/reach.md §2).</p>"
        )
    _reach_eps_table(doc, s)
    _reach_bands(doc, s)
    _impact_table(doc, s)
    _closure_table(doc, s)


def _compare_with_table(config: Any, s: Section) -> None:
    """``reach.compare_with``: the published bounds the reach figure draws, with their sources."""
    entries = getattr(getattr(config, "reach", None), "compare_with", None) or []
    if not entries:
        return
    from gammastar.reach.bounds import read_entry

    rows = []
    for entry in entries:
        try:
            b = read_entry(entry, config)
        except GammastarError as err:
            s.warn(str(err))
            continue
        top = b.eps if b.eps_high is None else b.eps_high
        rows.append(
            (
                b.label,
                b.reference or "not given in the file",
                f"{fmt(float(b.mass.min()), '.4g')} – {fmt(float(b.mass.max()), '.4g')}",
                f"{fmt(float(b.eps.min()), '.2e')} – {fmt(float(top.max()), '.2e')}",
                f"{b.shape}, {len(b.mass)} points, m from {b.mass_from}, ε from {b.eps_from}",
                b.source.name,
            )
        )
    s.add("<h3>Published bounds on the reach figure (reach.compare_with)</h3>")
    s.add(table(["bound", "reference", "m_A′ (GeV)", "ε", "drawn as", "file"], rows))
    s.add(
        '<p class="note">Drawn in grey on figures/reach.png by the reach stage (rerun it after '
        "changing the list or the files).</p>"
    )


def _closure_table(doc: dict[str, Any], s: Section) -> None:
    """reach.json ``flow_closure``: the flow's A′ acceptance over its own pairs' at
    the validation masses, at the expected ε_low and ε_high."""
    fc = doc.get("flow_closure") if isinstance(doc.get("flow_closure"), dict) else None
    if not fc:
        return
    if "skipped" in fc:
        s.add(
            f'<p class="note">Flow closure in the detector: not computed ({esc(fmt(fc["skipped"]))}).</p>'
        )
        return

    def cell(p: dict[str, Any], key: str) -> str:
        v = p.get(key) if isinstance(p.get(key), dict) else {}
        r, e = v.get("ratio"), v.get("ratio_err")
        if _is_number(r) and _is_number(e):
            return f"{fmt(r, '.3f')} ± {fmt(e, '.3f')}"
        return "—"

    pts = [p for p in _as_list(fc.get("points")) if isinstance(p, dict)]
    rows = [[fmt(p.get("mass"), ".3g"), fmt(p.get("n_pairs")), cell(p, "eps_low"),
             cell(p, "eps_high"), cell(p, "eps_peak")] for p in pts]  # fmt: skip
    chi2, ndf = fc.get("chi2"), fc.get("ndf")
    s.add(
        "<h3>The flow against its own pairs where the detector looks</h3>"
        '<p class="note">𝓔 of the flow / 𝓔 of the weighted pairs it learnt, within '
        f"±{esc(fmt(fc.get('window')))} GeV, inside the data's fiducial region where the flow "
        "is (the full phase space below a both-channels seam), at the median "
        "expected ε boundaries (where the signal peaks at a mass not excluded); the error is "
        "the pairs' statistics "
        f"(χ² = {esc(fmt(chi2, '.1f') if _is_number(chi2) else 'n/a')} for {esc(fmt(ndf))} "
        "points; gammastar.reach.flow_closure, docs/explanation/reach.md).</p>"
    )
    heads = ["m_A′ (GeV)", "pairs", "at ε_low", "at ε_high", "at the signal's peak (not excluded)"]
    s.add(table(heads, rows, "num"))


def _impact_table(doc: dict[str, Any], s: Section) -> None:
    """reach.json ``impact``: s_up with each nuisance fixed at ±1σ, per mass."""
    imp = doc.get("impact") if isinstance(doc.get("impact"), dict) else None
    if not imp or not isinstance(imp.get("nuisances"), dict):
        return
    masses = _as_list(imp.get("mass"))
    nominal = _as_list(_get(imp, "nominal", "s_up"))

    def cell(v: dict[str, Any], i: int) -> str:
        up = _as_list(_get(v, "+1", "s_up"))
        dn = _as_list(_get(v, "-1", "s_up"))
        if i < len(up) and i < len(dn) and _is_number(up[i]) and _is_number(dn[i]):
            return f"{fmt(up[i], '.3f')} / {fmt(dn[i], '.3f')}"
        return "—"

    rows = [["nominal"] + [fmt(v, ".3f") for v in nominal]]
    rows += [
        [name] + [cell(v, i) for i in range(len(masses))]
        for name, v in imp["nuisances"].items()
        if isinstance(v, dict)
    ]
    s.add(
        "<h3>Impact of each nuisance (median expected s_up at +1σ / −1σ)</h3>"
        '<p class="note">Each nuisance fixed at ±1σ, the others integrated '
        "(gammastar.reach.impact.impact; docs/explanation/reach.md, named nuisance parameters).</p>"
    )
    s.add(table(["nuisance"] + [f"m = {fmt(m, '.3f')} GeV" for m in masses], rows, "num"))


# =========================================================================== summary
SUMMARY_INPUTS: tuple[tuple[str, str, str], ...] = (
    (rundir.YIELDS, "gammastar yields", "the A′ yield per POT"),
    (rundir.VALIDATION, "gammastar validate", "the flow's KL verdict"),
    (rundir.REACH, "gammastar reach", "the excluded range, the ε band and the flow's closure"),
    (f"{rundir.FIGURES_DIR}/reach.png", "gammastar reach", "the reach figure"),
)
"""(artifact, the command that writes it, what the summary takes from it)."""

UNIVERSALITY_ALPHA = 0.05
"""p-value of the ee/μμ χ² below which the summary calls the channels in tension."""


@dataclass
class Summary:
    """What the summary shows: its HTML parts and the warnings it derives from the documents
    (a failed check), besides those the sections raise."""

    parts: list[str] = field(default_factory=list)
    """Beside the reach figure: the exclusion, the table at 3 masses, the verdicts."""
    after: list[str] = field(default_factory=list)
    """Under it: the warnings."""
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (where, text)
    verdicts: list[tuple[str, Raw]] = field(default_factory=list)  # (check, verdict)

    def verdict(self, check: str, kind: str, text: str) -> None:
        """A row of the verdict table (``check`` names its document); ``kind`` is ``pass``,
        ``fail`` (also a warning), ``na`` or ``note``."""
        cls = {"pass": "pass", "fail": "fail", "na": "na"}.get(kind, "")
        cell = Raw(f'<span class="{cls}">{esc(text)}</span>') if cls else esc(text)
        self.verdicts.append((check, cell))
        if kind == "fail":
            self.warnings.append((check, text))


def _quiet_json(run: Path, name: str) -> dict[str, Any] | None:
    """``name`` read as the sections read it; its problems are the sections' warnings."""
    if not (run / name).exists():
        return None
    return _read_json(run, name, Section("summary", "Summary"))


def _excluded(reach: dict[str, Any]) -> tuple[list[Any], list[Any], list[Any], list[int]]:
    """``(mass, eps_low, eps_high, indices excluded)`` of ``reach.json`` ``expected``."""
    exp = reach.get("expected") if isinstance(reach.get("expected"), dict) else {}
    mass, lo, hi = (_as_list(exp.get(k)) for k in ("mass", "eps_low", "eps_high"))
    idx = [
        i
        for i in range(len(mass))
        if i < len(lo) and i < len(hi) and _is_number(lo[i]) and _is_number(hi[i])
    ]
    return mass, lo, hi, idx


def summary_masses(reach: dict[str, Any] | None, yields: dict[str, Any] | None) -> list[float]:
    """The summary's 3 masses: the lowest, middle and highest scanned mass of the expected
    excluded range (``reach.json``); without an exclusion, 3 masses spread over the scan, and
    without a reach, over the A′ yield's mass bins."""
    if reach is not None:
        mass, _, _, idx = _excluded(reach)
        if idx:
            return [float(mass[idx[j]]) for j in _pick(len(idx), 3)]
        masses = [float(m) for m in mass if _is_number(m)]
        if masses:
            return [masses[j] for j in _pick(len(masses), 3)]
    ym = [float(m) for m in _as_list(_get(yields, "aprime", "mass")) if _is_number(m)]
    return [ym[j] for j in _pick(len(ym), 3)]


def yield_bin(aprime: dict[str, Any], mass: float) -> int | None:
    """Index of the A′ yield's mass bin that holds ``mass`` (``bin_edges``, lower edge
    included; the nearest bin centre within half a bin without edges); ``None`` outside."""
    centres = _as_list(aprime.get("mass"))
    edges = [float(e) for e in _as_list(aprime.get("bin_edges")) if _is_number(e)]
    if len(edges) == len(centres) + 1:
        for i in range(len(centres)):
            last = i == len(centres) - 1
            if edges[i] <= mass < edges[i + 1] or (last and mass == edges[i + 1]):
                return i
        return None
    num = [(abs(float(c) - mass), i) for i, c in enumerate(centres) if _is_number(c)]
    if not num:
        return None
    d, i = min(num)
    step = (
        abs(float(centres[1]) - float(centres[0]))
        if len(centres) > 1 and all(_is_number(c) for c in centres[:2])
        else math.inf
    )
    return i if d <= 0.5 * step else None


def _exclusion_text(reach: dict[str, Any]) -> str:
    """One sentence: the expected (and observed) excluded mass and ε range."""
    cl = _num(reach.get("cl"))
    mass, lo, hi, idx = _excluded(reach)
    what = f"{100 * cl:.0f} % CLs" if cl is not None else "CLs"
    if not idx:
        return f"Expected exclusion ({what}, median): none of the {len(mass)} scanned masses."
    gaps = idx != list(range(idx[0], idx[-1] + 1))
    text = (
        f"Expected exclusion ({what}, median): m_A′ from {fmt(mass[idx[0]], '.4g')} to "
        f"{fmt(mass[idx[-1]], '.4g')} GeV ({len(idx)} of {len(mass)} scanned masses"
        + (", with gaps" if gaps else "")
        + f"), ε from {fmt(min(float(lo[i]) for i in idx), '.3e')} to "
        f"{fmt(max(float(hi[i]) for i in idx), '.3e')}."
    )
    obs = reach.get("observed") if isinstance(reach.get("observed"), dict) else None
    if obs:
        olo = _as_list(obs.get("eps_low"))
        n_obs = sum(1 for i in range(len(mass)) if i < len(olo) and _is_number(olo[i]))
        text += f" Observed: excluded at {n_obs} of {len(mass)} masses."
    return text


def _cell(values: list[Any], i: int | None, spec: str, missing: str = "n/a") -> str:
    """``values[i]`` formatted, ``missing`` where there is no number."""
    ok = i is not None and i < len(values) and _is_number(values[i])
    return fmt(values[i], spec) if ok else missing


def _reach_cells(reach: dict[str, Any], m: float) -> list[str]:
    """The expected (and observed) ε_low, ε_high of ``reach.json`` at its scanned mass ``m``."""
    mass, lo, hi, _ = _excluded(reach)
    i = next((k for k, v in enumerate(mass) if _is_number(v) and math.isclose(v, m)), None)
    cells = [_cell(lo, i, ".3e", "not excluded"), _cell(hi, i, ".3e", "not excluded")]
    obs = reach.get("observed")
    if isinstance(obs, dict) and obs:
        olo, ohi = _as_list(obs.get("eps_low")), _as_list(obs.get("eps_high"))
        cells += [_cell(olo, i, ".3e", "not excluded"), _cell(ohi, i, ".3e", "not excluded")]
    return cells


def _yield_cells(ap: dict[str, Any], m: float, syst: bool) -> list[str]:
    """The A′ yield's bin holding ``m``: its range, the yield per POT per ε² ± its statistical
    (± systematic) error, its flags."""
    b = yield_bin(ap, m)
    if b is None:
        return ["outside the yields", "n/a", "—"]
    edges = _as_list(ap.get("bin_edges"))
    flags = _as_list(ap.get("flags"))
    where = f"{fmt(edges[b], '.4g')}–{fmt(edges[b + 1], '.4g')}" if b + 1 < len(edges) else "n/a"
    value = _cell(_as_list(ap.get("per_pot_per_eps2")), b, ".4e")
    value += f" ± {_cell(_as_list(ap.get('stat_err')), b, '.2e')}"
    if syst:
        value += f" ± {_cell(_as_list(ap.get('syst_err')), b, '.2e')}"
    return [where, value, _flags_text(flags[b]) if b < len(flags) else "—"]


def _masses_table(reach: dict[str, Any] | None, yields: dict[str, Any] | None) -> Raw | None:
    """The ε band and the A′ yield per POT per ε² at :func:`summary_masses` (a flags column
    where one of the 3 bins has a flag)."""
    masses = summary_masses(reach, yields)
    if not masses:
        return None
    ap = _get(yields, "aprime")
    ap = ap if isinstance(ap, dict) else None
    syst = ap is not None and bool(_as_list(ap.get("syst_err")))
    headers = ["m_A′ (GeV)"]
    if reach is not None:
        headers += ["expected ε low", "expected ε high"]
        if isinstance(reach.get("observed"), dict) and reach["observed"]:
            headers += ["observed ε low", "observed ε high"]
    if ap is not None:
        errors = "± stat. ± syst." if syst else "± stat."
        headers += ["yield bin (GeV)", f"A′ per POT per ε² {errors}", "flags"]
    rows = [
        [fmt(m, ".4g")]
        + (_reach_cells(reach, m) if reach is not None else [])
        + (_yield_cells(ap, m, syst) if ap is not None else [])
        for m in masses
    ]
    if ap is not None and all(r[-1] == "—" for r in rows):  # no flag: no column
        headers, rows = headers[:-1], [r[:-1] for r in rows]
    return table(headers, rows, "num")


def _kl_verdict(doc: dict[str, Any] | None, out: Summary) -> None:
    check = "Flow vs data (k-NN KL, validation.json)"
    if doc is None:
        out.verdict(check, "na", "not run")
        return
    mass = _as_list(doc.get("mass"))
    verdicts = kl_verdicts(doc)
    judged = [i for i, v in enumerate(verdicts) if v is not None]
    failed = [i for i in judged if verdicts[i] == "fail"]
    if not judged:
        out.verdict(check, "na", "no window with enough data for a band")
        return
    text = f"{len(judged) - len(failed)} of {len(judged)} mass windows pass"
    if failed:
        where = ", ".join(f"{fmt(mass[i], '.3g')}" for i in failed)
        text += f"; above the data's 95 % band at m = {where} GeV"
    out.verdict(check, "fail" if failed else "pass", text)
    holdout = _get(doc, "meta", "holdout", "matches_training")
    if holdout is False:
        why = (
            "the held-out pairs are not the ones the flow was trained without "
            "(validation.json meta.holdout.matches_training)"
        )
        out.warnings.append((check, why))


def _closure_verdict(reach: dict[str, Any] | None, out: Summary) -> None:
    check = "Flow closure in the detector (reach.json flow_closure)"
    fc = _get(reach, "flow_closure")
    if not isinstance(fc, dict):
        out.verdict(check, "na", "not run" if reach is None else "not computed")
        return
    if "skipped" in fc:
        out.verdict(check, "na", f"not computed: {fmt(fc['skipped'])}")
        return
    from gammastar.reach.flow_closure import PULL_WARN, WARN_CARRIERS

    carriers = _num(fc.get("chi2_carriers_min")) or WARN_CARRIERS
    big = []
    for p in (q for q in _as_list(fc.get("points")) if isinstance(q, dict)):
        for key in ("eps_low", "eps_high", "eps_peak"):
            v = p.get(key) if isinstance(p.get(key), dict) else {}
            pull = _num(v.get("pull_with_model", v.get("pull")))
            trusted = (_num(v.get("carriers")) or 0.0) >= carriers
            if pull is not None and trusted and abs(pull) > PULL_WARN:
                big.append(f"{fmt(p.get('mass'), '.3g')} GeV ({key}: {pull:+.1f}σ)")
    text = (
        f"χ² = {fmt(_num(fc.get('chi2')), '.1f')} for {fmt(fc.get('ndf'))} points, largest "
        f"|pull| {fmt(_num(fc.get('max_abs_pull')), '.2f')}"
    )
    if big:
        text += f"; beyond {PULL_WARN:g}σ at m = " + ", ".join(big)
    else:
        text += f" (none beyond {PULL_WARN:g}σ)"
    out.verdict(check, "fail" if big else "pass", text)


def _universality_verdict(yields: dict[str, Any] | None, out: Summary) -> None:
    uni = _get(yields, "lepton_universality")
    if not isinstance(uni, dict):
        return  # one channel: nothing to compare
    check = f"Lepton universality ({fmt(uni.get('ratio_of'))}, yields.json)"
    p = _num(uni.get("p_value"))
    text = (
        f"χ²/ndf = {fmt(_num(uni.get('chi2')), '.1f')}/{fmt(uni.get('ndf'))}, p = {fmt(p, '.3g')}"
    )
    if p is None:
        out.verdict(check, "na", text)
    elif p < UNIVERSALITY_ALPHA:
        out.verdict(check, "fail", f"{text}: the channels disagree (p < {UNIVERSALITY_ALPHA:g})")
    else:
        out.verdict(check, "pass", f"{text}: consistent (p ≥ {UNIVERSALITY_ALPHA:g})")


def _yield_flags_verdict(yields: dict[str, Any] | None, out: Summary) -> None:
    ap = _get(yields, "aprime")
    if not isinstance(ap, dict):
        return
    from gammastar.yields.universality import SERIOUS_FLAGS

    flags = [set(f) if isinstance(f, list) else set() for f in _as_list(ap.get("flags"))]
    bad = sum(1 for f in flags if f & SERIOUS_FLAGS)
    check = "A′ yield mass bins (yields.json aprime.flags)"
    text = f"{bad} of {len(flags)} bins " + "/".join(sorted(SERIOUS_FLAGS))
    out.verdict(check, "fail" if bad else "pass", text)


def _coverage_notes(
    reach: dict[str, Any] | None, yields: dict[str, Any] | None, out: Summary
) -> None:
    """What the run's limits rest on beyond the measurement: the extrapolated share of the
    signal and the uncertainties left out of the likelihood."""
    ext = _get(reach, "extrapolation")
    share = [v for v in _as_list(_get(ext, "max_fraction_in_excluded_region")) if _is_number(v)]
    if share:
        out.verdict(
            "Signal outside the fiducial region (reach.json extrapolation)",
            "note",
            f"up to {100 * max(share):.0f} % of N_sig inside a mass's excluded region comes from "
            f"the fitted model ({fmt(_get(ext, 'model'))}), not from measured pairs",
        )
    left = _get(yields, "uncertainties", "not_included")
    if isinstance(left, dict) and left:
        out.verdict(
            "Uncertainties not in the likelihood (yields.json uncertainties.not_included)",
            "note",
            ", ".join(str(k) for k in left),
        )


def _summary(config: Any, run: Path, sections: dict[str, Section]) -> Summary:
    """The report's first section: the expected exclusion, the ε band and the A′ yield at
    3 masses, the validation verdicts and every warning (the sections' and the verdicts'),
    and what the run lacks for them."""
    out = Summary()
    reach = _quiet_json(run, rundir.REACH)
    yields = _quiet_json(run, rundir.YIELDS)
    validation = _quiet_json(run, rundir.VALIDATION)
    lines = []
    if reach is not None:
        lines.append(_exclusion_text(reach))
    n_pot = _num(_get(yields, "meta", "n_pot"))
    if n_pot is not None:
        lines.append(
            f"A′ yield measured with N_POT = {fmt(n_pot, '.3e')} protons on target "
            f"(yields.json; A′ source: {fmt(_get(yields, 'aprime', 'source'))})."
        )
    missing = [(name, cmd, what) for name, cmd, what in SUMMARY_INPUTS if not (run / name).exists()]
    if lines:
        out.parts.append(f'<p class="summary">{"<br>".join(str(esc(t)) for t in lines)}</p>')
    if missing:
        items = "".join(
            f"<li><code>{esc(name)}</code> (<code>{esc(cmd)}</code>): {esc(what)}</li>"
            for name, cmd, what in missing
        )
        out.parts.append(
            f'<div class="missing"><p>Not in this run, so not summarised:</p><ul>{items}</ul></div>'
        )
    tab = _masses_table(reach, yields)
    if tab is not None:
        head = "The expected ε band and the A′ yield" if reach is not None else "The A′ yield"
        out.parts.append(f"<h3>{head} at 3 masses</h3>{tab}")
        if reach is not None and yields is not None:
            out.parts.append(
                '<p class="note">Masses: the lowest, middle and highest scanned mass of the '
                "expected excluded range (reach.json expected); the A′ yield per POT per ε² of "
                "the yields' mass bin that holds each (yields.json aprime, Eq. 6).</p>"
            )
    _kl_verdict(validation, out)
    _closure_verdict(reach, out)
    _universality_verdict(yields, out)
    _yield_flags_verdict(yields, out)
    _coverage_notes(reach, yields, out)
    out.parts.append("<h3>Validation</h3>")
    out.parts.append(table(["check", "verdict"], out.verdicts, "verdicts"))
    for s in sections.values():
        out.warnings += [(s.title, t) for t in s.warning_texts]
    out.after.append(f"<h3>Warnings ({len(out.warnings)})</h3>")
    if out.warnings:
        items = "".join(f"<li><b>{esc(w)}</b>: {esc(t)}</li>" for w, t in out.warnings)
        out.after.append(f'<ul class="warnings">{items}</ul>')
    else:
        out.after.append('<p class="note">None recorded in the run\'s documents.</p>')
    return out


# =========================================================================== provenance
def package_versions(names: Sequence[str] = KEY_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (``not installed`` when absent)."""
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def _config_text(cfg: Any) -> tuple[str, str]:
    """The config's YAML text and where it came from."""
    src = getattr(cfg, "source", None)
    if src and Path(src).is_file():
        try:
            return Path(src).read_text(encoding="utf-8"), str(src)
        except (OSError, UnicodeDecodeError):
            pass
    import yaml

    data = cfg.model_dump(mode="json", by_alias=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "(in memory; dumped)"


def _provenance(cfg: Any, run: Path) -> tuple[Raw, Raw]:
    """(run information, seeds/artifact metadata) blocks."""
    text, where = _config_text(cfg)
    text_sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    full = getattr(cfg, "sha256", None)
    info = kv_table(
        [
            ("analysis", getattr(cfg, "name", "?")),
            ("run directory", str(run)),
            ("report written", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")),
            ("gammastar", __version__),
            ("python", f"{platform.python_version()} ({platform.platform()})"),
            ("config file", where),
            ("config file sha256", text_sha),
            ("config canonical sha256 (config_sha256_full)", full or "n/a"),
        ]
    )
    versions = table(["package", "version"], list(package_versions().items()))
    config_html = details(
        f"config YAML ({len(text.splitlines())} lines, sha256 {text_sha[:12]}…)",
        f'<pre class="config">{esc(text)}</pre>',
        open_=True,
    )

    rows = []
    for name, m in _artifact_metas(run):
        if isinstance(m, dict):
            full_hash = m.get("config_sha256_full")
            same = "n/a" if not full_hash or not full else ("yes" if full_hash == full else "NO")
            rows.append(
                (
                    name,
                    "none (deterministic)" if m.get("seed") is None else fmt(m.get("seed")),
                    fmt(m.get("gammastar_version")),
                    fmt(m.get("schema_version")),
                    str(m.get("config_sha256") or "n/a")[:12],
                    same,
                )
            )
        else:
            rows.append((name, str(m), "", "", "", ""))
    seeds = table(
        ["artifact", "seed", "gammastar", "schema", "config sha256 (section)", "same full config"],
        rows,
    )
    top = Raw(
        str(info)
        + "<h3>Package versions</h3>"
        + str(versions)
        + "<h3>Configuration</h3>"
        + str(config_html)
    )
    return top, seeds if rows else Raw("<p>No artifact metadata found.</p>")


def _artifact_metas(run: Path) -> list[tuple[str, Any]]:
    """``(artifact, its meta)`` of the mock and :data:`META_ARTIFACTS` present; the meta is
    the one-line reason instead where the artifact cannot be read (a schema error is its
    section's warning: the meta is shown as far as it goes)."""
    rd = rundir.RunDir(run)
    metas: list[tuple[str, Any]] = []
    if rd.path(rundir.MOCK).exists():
        try:
            metas.append((rundir.MOCK, rd.read_root_meta(rundir.MOCK)))
        except GammastarError as err:
            metas.append((rundir.MOCK, str(err)))
    for name in META_ARTIFACTS:
        try:
            d = rd.read_optional(name, invalid=lambda err: None)
        except GammastarError as err:
            metas.append((name, str(err)))
            continue
        if d is not None:
            metas.append((name, d.get("meta")))
    return metas


def _stage_table(run: Path) -> Raw | None:
    state = run / rundir.STATE_DIR
    if not state.is_dir():
        return None
    rd = rundir.RunDir(run)
    order = {name: i for i, name in enumerate(rundir.STAGE_ORDER)}
    rows = []
    for p in sorted(state.glob("*.json"), key=lambda q: (order.get(q.stem, len(order)), q.stem)):
        problems: list[GammastarError] = []  # a schema error: the record as far as it goes
        try:
            d = rd.read_optional(rundir.state_name(p.stem), invalid=problems.append)
        except GammastarError as err:
            rows.append((p.stem, "unreadable", "", str(err)))
            continue
        if d is None:  # removed while the report was written
            continue
        fin = d.get("finished")
        when = (
            _dt.datetime.fromtimestamp(float(fin), _dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            if _is_number(fin)
            else "n/a"
        )
        rows.append(
            (
                str(d.get("stage", p.stem)),
                when,
                fmt(_num(d.get("seconds")), ".3g"),
                str(problems[0]) if problems else d.get("note") or "",
            )
        )
    return table(["stage", "last finished", "seconds", "note"], rows) if rows else None


def _artifact_list(run: Path) -> Raw:
    rows = []
    for p in sorted(run.iterdir()):
        if p.name.startswith(".") or p.name == REPORT_NAME:
            continue
        if p.is_dir():
            n = sum(1 for q in p.rglob("*") if q.is_file())
            rows.append((Raw(f'<a href="{esc(quote(p.name))}/">{esc(p.name)}/</a>'), f"{n} files"))
        else:
            size = p.stat().st_size
            rows.append((Raw(f'<a href="{esc(quote(p.name))}">{esc(p.name)}</a>'), _size(size)))
    return table(["file", "size"], rows)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


# =========================================================================== page
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1b1b;
background:#fafafa;line-height:1.45}
main{max-width:1240px;margin:0 auto;padding:1em 2em 3em}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ccd;padding-bottom:.2em;margin-top:2em}
section{margin-bottom:1.5em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em;background:#fff}
th,td{border:1px solid #d5d8de;padding:.25em .6em;text-align:left;vertical-align:top}
thead th{background:#eef0f4}table.kv th{background:#f4f5f8;font-weight:600;max-width:22em}
table.num td{font-variant-numeric:tabular-nums}
pre{background:#f1f2f5;padding:.6em;overflow-x:auto;font-size:.85em}
pre.config{max-height:40em}
figure{margin:1em 0;display:inline-block;max-width:100%;vertical-align:top}
figure img{max-width:100%;height:auto;border:1px solid #ddd;background:#fff}
figcaption{font-size:.88em;color:#444}
.notrun{color:#777;font-style:italic}.warn{background:#fff4d6;border-left:4px solid #e0a800;
padding:.4em .7em}.note{font-size:.9em;color:#444}.summary{font-weight:600}
.pass{color:#11772a;font-weight:600}.fail{color:#b3261e;font-weight:600}.na{color:#777}
nav ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.4em}
nav li a{display:inline-block;padding:.15em .6em;border-radius:1em;background:#e6e9f0;
text-decoration:none;color:#1b1b1b;font-size:.9em}
nav li a.notrun{background:#f1f1f1;color:#888}nav li a.warn{background:#fff0c2;border:0}
details{margin:.5em 0}summary{cursor:pointer;color:#234}
footer{color:#666;font-size:.85em;border-top:1px solid #ddd;margin-top:3em;padding-top:1em}
#gammastar-selfcheck{font-size:.8em;white-space:pre-wrap}
#summary p.summary{font-size:1.05em}.missing{background:#f4f5f8;border-left:4px solid #99a;
padding:.2em .8em;margin:.6em 0}.missing ul,ul.warnings{margin:.3em 0}
ul.warnings li{background:#fff4d6;border-left:4px solid #e0a800;padding:.2em .6em;margin:.2em 0;
list-style:none}ul.warnings{padding-left:0}
.summary-grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,540px);gap:1.2em;
align-items:start}.summary-grid .figures.top figure{margin-top:.4em}
@media (max-width:1100px){.summary-grid{grid-template-columns:minmax(0,1fr)}}
#summary table{font-size:.86em}#summary table.num td{white-space:nowrap}#summary h3{margin:.7em 0 .3em}
"""

# Runs in <head>: records script errors from the start; on load counts the images that
# decoded (complete && naturalWidth > 0) and writes the result for the browser test.
SELFCHECK_JS = """
(function () {
  var errors = [], loaded = false;
  function write() {
    if (!loaded) { return; }
    var imgs = Array.prototype.slice.call(document.images);
    var ok = function (im) { return im.complete && im.naturalWidth > 0; };
    var out = {
      images: imgs.length,
      loaded: imgs.filter(ok).length,
      errors: errors,
      broken: imgs.filter(function (im) { return !ok(im); })
        .map(function (im) { return im.getAttribute("src"); })
    };
    var el = document.getElementById("gammastar-selfcheck");
    if (el) { el.textContent = JSON.stringify(out); }
  }
  window.onerror = function (msg, src, line, col) {
    errors.push(String(msg) + (src ? " (" + src + ":" + line + ":" + col + ")" : ""));
    write();
    return false;
  };
  document.addEventListener("securitypolicyviolation", function (e) {
    errors.push("blocked by the Content-Security-Policy: " + e.blockedURI);
    write();
  });
  window.addEventListener("load", function () { loaded = true; write(); });
})();
"""

# No network: everything inline, images only from the report's own directory.
CSP = (
    "default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'"
)


def _dark_section(run: Path, s: Section) -> None:
    """reach_mcp.json and reach_idm.json (``gammastar reach-mcp``, ``reach-idm``), if present;
    the section is left out of the page when neither exists."""
    for name, what in ((rundir.REACH_MCP, "millicharged"), (rundir.REACH_IDM, "iDM")):
        path = run / name
        if not path.exists():
            continue
        s.ran = True
        doc = _read_json(run, name, s)
        if doc is None:
            continue
        cl = _num(doc.get("cl"))
        rows: list[tuple[str, Any]] = [
            ("file", name),
            ("confidence level", f"{100 * cl:.0f} % CLs" if cl is not None else "n/a"),
        ]
        if what == "millicharged":
            mass = _as_list(doc.get("mass"))
            q = [v for v in _as_list(_get(doc, "q_low", "0")) if _is_number(v)]
            rows += [
                ("m_χ points", fmt(len(mass))),
                ("masses with a reach (median)", fmt(len(q))),
                ("smallest expected Q_low/e", fmt(min(q), ".3e") if q else "none"),
            ]
        else:
            m1 = _as_list(doc.get("m1"))
            lo = [v for v in _as_list(_get(doc, "y_low", "0")) if _is_number(v)]
            if doc.get("model") == "i2dm":
                what = "i2DM"
                rows.append(("mixing θ (rad)", fmt(doc.get("theta"))))
            rows += [
                ("model", fmt(doc.get("model"))),
                ("α_D, Δ, m_A′/m₁",
                 f"{fmt(doc.get('alpha_d'))}, {fmt(doc.get('delta'))}, {fmt(doc.get('mass_ratio'))}"),
                ("background (events)", fmt(doc.get("background"))),
                ("m₁ points", fmt(len(m1))),
                ("masses with a reach (median)", fmt(len(lo))),
                ("smallest expected y_low", fmt(min(lo), ".3e") if lo else "none"),
            ]  # fmt: skip
        s.add(f"<h3>{esc(what)} reach</h3>")
        s.add(kv_table(rows))


SECTION_BUILDERS: dict[str, Callable[..., None]] = {
    "selection": _selection_section,
    "spectra": _spectra_section,
    "yields": _yields_section,
    "flow": _flow_section,
    "validation": _validation_section,
    "acceptance": _acceptance_section,
    "reach": _reach_section,
    "darksector": _dark_section,
}


def render(config: Any, run: Path) -> str:
    """The report page for run directory ``run`` as an HTML string."""
    sections = {ident: Section(ident, title) for ident, title in SECTIONS}
    for ident, s in sections.items():
        try:
            if ident == "mock":
                _mock_section(config, run, s)
            elif ident in SECTION_BUILDERS:
                SECTION_BUILDERS[ident](run, s)
            if ident == "reach":
                _compare_with_table(config, s)
        except Exception as err:  # noqa: BLE001 - a report shows, never fails
            s.warn(f"could not build this section ({type(err).__name__}: {err})")
    top_figure = None
    for fig in find_figures(run):
        if fig.rel == TOP_FIGURE:
            top_figure = fig
        else:
            sections[_section_of(fig)].figures.append(fig)
    if top_figure is not None and sections["reach"].ran:
        sections["reach"].add(
            f'<p class="note">The exclusion figure ({esc(TOP_FIGURE)}) is at the top of the '
            'page, under the <a href="#summary">Summary</a>.</p>'
        )
    try:
        summary = _summary(config, run, sections)
        beside, under = "".join(summary.parts), "".join(summary.after)
    except Exception as err:  # noqa: BLE001 - a report shows, never fails
        beside = warning(f"could not build the summary ({type(err).__name__}: {err})")
        under = ""
    figure = (
        _figure_html(top_figure)
        if top_figure is not None
        else not_run(f"{TOP_FIGURE} not found (written by gammastar reach)")
    )
    # the numbers, then the figure: side by side on a wide screen, one under the other else
    summary_html = (
        f'<div class="summary-grid"><div>{beside}</div>'
        f'<div class="figures top">{figure}</div></div>{under}'
    )

    try:
        top, seeds = _provenance(config, run)
    except Exception as err:  # noqa: BLE001
        top, seeds = warning(f"run information failed ({type(err).__name__}: {err})"), Raw("")
    stages = _stage_table(run)

    nav, body = ['<li><a href="#summary">Summary</a></li>'], []
    for ident, s in sections.items():
        if ident in ("other", "darksector") and not s.figures and not s.ran:
            continue
        if ident != "other" and not s.ran and s.figures:
            s.ran = True  # figures without the numbers: still show them
        cls = "warn" if s.warnings else ("" if s.ran or ident == "other" else "notrun")
        label = s.title + ("" if s.ran or ident == "other" else " (not run)")
        nav.append(f'<li><a class="{cls}" href="#{ident}">{esc(label)}</a></li>')
        figs = "".join(_figure_html(f) for f in s.figures)
        body.append(
            f'<section id="{ident}"><h2>{esc(s.title)}</h2>{"".join(s.parts)}'
            + (f'<div class="figures">{figs}</div>' if figs else "")
            + "</section>"
        )

    title = f"gammastar run report: {getattr(config, 'name', 'analysis')}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style>"
        f"<script>{SELFCHECK_JS}</script></head><body><main>"
        f"<h1>{esc(title)}</h1>"
        f'<nav><ul>{"".join(nav)}<li><a href="#run">Run information</a></li></ul></nav>'
        f'<section id="summary"><h2>Summary</h2>{summary_html}</section>'
        + "".join(body)
        + f'<section id="run"><h2>Run information</h2>{top}'
        + (f"<h3>Pipeline stages</h3>{stages}" if stages is not None else "")
        + f"<h3>Seeds and artifact metadata</h3>{seeds}"
        f"<h3>Files in the run directory</h3>{_artifact_list(run)}</section>"
        + f"<footer>Written by gammastar {esc(__version__)}. Browser self-check: "
        '<pre id="gammastar-selfcheck">pending (needs JavaScript)</pre></footer>'
        "</main></body></html>\n"
    )


@dataclass(frozen=True)
class ReportResult(StageResult):
    """What :func:`build_report` wrote: ``report.html`` (``path``)."""


def build_report(
    config: Any,
    *,
    output: str | os.PathLike[str] | None = None,
    force: bool = True,
) -> ReportResult:
    """Write ``<run>/report.html`` for the run directory of ``config``.

    Arguments:
        config: an :class:`~gammastar.config.AnalysisConfig` or the path of an analysis YAML.
        output: run directory (default: the config's ``output``).
        force: overwrite an existing report (the default: a report is a view of the run).

    Returns:
        A :class:`ReportResult` naming ``report.html``.

    Raises:
        GammastarError: the run directory does not exist; OutputExistsError: the report
            exists and ``force`` is false.
    """

    cfg = config if isinstance(config, AnalysisConfig) else load_config(config)
    if output is not None:
        cfg = cfg.model_copy(update={"output": str(Path(output).resolve())})
    run = cfg.output_dir
    if not run.is_dir():
        raise GammastarError(f"{run}: run directory not found; run `gammastar run` first")
    page = render(cfg, run)
    path = run / REPORT_NAME
    with atomic_path(path, force=force) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return ReportResult(path)
