"""The report's sections of the measurement: the mock, the selection, the spectra and the yields
(A′ and χχ̄ tables, polarisation, lepton universality).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gammastar.config import AnalysisConfig
from gammastar.core import rundir
from gammastar.errors import GammastarError
from gammastar.report.layout import CUTFLOW_LABELS
from gammastar.report.markup import (
    _flags_text,
    _is_number,
    details,
    dict_at,
    esc,
    fmt,
    fmt_err,
    kv_table,
    not_run,
    table,
)
from gammastar.report.reading import (
    Section,
    _as_list,
    _get,
    _num,
    _per_flavour,
    _pick,
    _section_json,
)


def _mock_section(cfg: AnalysisConfig, run: Path, s: Section) -> None:
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
    flavours = dict_at(doc, "flavours")
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
    meta = dict_at(doc, "meta")
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

    rows: list[tuple[str, ...]] = [
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
    numbers = [(_num(x), i) for i, x in enumerate(_as_list(sc.get("simulation_share")))]
    share = [(x, i) for x, i in numbers if x is not None]
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
    meta = dict_at(doc, "meta")
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
    _standard_recipe_block(doc, s)
    _universality_block(doc, s)
    _mcp_table(doc, s)


def _standard_recipe_block(doc: dict[str, Any], s: Section) -> None:
    """The data-driven A′ yield / the standard generator-level recipe (``yields.json``
    ``standard_recipe``, docs/explanation/standard-recipe.md) at about 10 masses."""
    sr, ap = doc.get("standard_recipe"), doc.get("aprime")
    if not isinstance(sr, dict) or not isinstance(ap, dict):
        return
    from gammastar.yields.standard_recipe import summary_rows

    src = dict_at(sr, "meson_yields_source")
    s.add("<h3>Data-driven A′ yield / standard generator-level recipe</h3>")
    mesons = sr.get("meson_yields_per_pot") or {}
    s.add(kv_table([("meson yields from", fmt(src.get("kind"))), ("how", fmt(src.get("detail"))),
                    ("mesons per POT", ", ".join(f"{k} {fmt(v, '.3g')}" for k, v in mesons.items()))]))  # fmt: skip
    rows = [(fmt(r["mass"], ".3f"), fmt(r["data"], ".3e"), fmt(r["standard"], ".3e"),
             fmt_err(r["ratio"], r["ratio_err"], ".3f"), fmt(r["ratio_foresee"], ".3f"),
             fmt(r["ratio_form_factors"], ".3f"), fmt(r["dominant"]))
            for r in summary_rows(sr, ap)]  # fmt: skip
    headers = ["m_A′ (GeV)", "data-driven", "recipe", "ratio", "ratio, FORESEE's channels",
               "ratio, with form factors", "largest channel"]  # fmt: skip
    s.add(table(headers, [rows[i] for i in _pick(len(rows), 10)], "num"))
    if len(rows) > 10:
        s.add(details(f"all {len(rows)} mass bins", table(headers, rows, "num")))
    s.add('<p class="note">Per POT per ε², the recipe averaged over each bin (no mass '
          "resolution): next to the ω and φ compare the peak integrals "
          "(docs/explanation/standard-recipe.md).</p>")  # fmt: skip


def _universality_block(doc: dict[str, Any], s: Section) -> None:
    """Lepton universality (``yields.compare_with``, docs/explanation/method.md): the A′-yield ratio of
    the two flavours per shared mass bin with its error, χ²/ndf and p-value, and the
    combined yield where ``aprime_combined`` holds it."""
    uni = doc.get("lepton_universality")
    if not isinstance(uni, dict):
        return
    mass = _as_list(uni.get("mass"))
    ratio, rerr = _as_list(uni.get("ratio")), _as_list(uni.get("ratio_err"))
    comb = dict_at(doc, "aprime_combined")
    ap = dict_at(doc, "aprime")
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
    headers = [
        "m (GeV)", f"ratio {label}", "combined A′ per POT per ε²", "stat.", "channel disagreement"
    ]  # fmt: skip
    s.add(table(headers, [rows[i] for i in _pick(len(rows), 8)], "num"))
    if len(rows) > 8:
        s.add(details(f"all {len(rows)} shared mass bins", table(headers, rows, "num")))
