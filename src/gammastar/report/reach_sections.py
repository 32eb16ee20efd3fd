"""The report's sections of the reach: the acceptance, the exclusion and its bands, the published
bounds compared with, the flow's closure in the detector, the impact of each uncertainty and
the dark-sector reaches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gammastar.config import AnalysisConfig
from gammastar.core import rundir
from gammastar.errors import GammastarError
from gammastar.reach import edges
from gammastar.report.markup import (
    _is_number,
    details,
    dict_at,
    esc,
    fmt,
    kv_table,
    not_run,
    table,
)
from gammastar.report.reading import (
    Section,
    _as_list,
    _get,
    _num,
    _pick,
    _read_json,
    _section_json,
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
    exp = dict_at(doc, "expected")
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

    low_edge, high_edge = (_as_list(exp.get(k)) for k in edges.EDGE_KEYS)

    def row(i: int) -> list[str]:
        r = [
            fmt(mass[i], ".4g"),
            _eps_cell(lo, low_edge, i, "low"),
            _eps_cell(hi, high_edge, i, "high"),
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
    bands = dict_at(doc, "bands")
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


def _eps_cell(values: list[Any], at_edge: list[Any], i: int, side: str) -> str:
    """One ε boundary of the per-mass table, "≤ … (scan edge)" where the scan stopped."""
    if i >= len(values) or not _is_number(values[i]):
        return "not excluded"
    return edges.eps_text(float(values[i]), i < len(at_edge) and at_edge[i] is True, side, ".3e")


def _reach_section(run: Path, s: Section) -> None:
    doc = _section_json(run, rundir.REACH, s)
    if doc is None:
        return
    meta = dict_at(doc, "meta")
    methods = [m for m in _as_list(_get(doc, "signal_limit", "method")) if m is not None]
    used = sorted({str(m) for m in methods})
    cl = _num(doc.get("cl"))
    exp = dict_at(doc, "expected")
    mass = _as_list(exp.get("mass"))
    lo = _as_list(exp.get("eps_low"))
    index = _read_json(run, rundir.WORKSPACES_INDEX, s)
    n_ws = len(_as_list(_get(index, "workspaces")))
    excluded = [i for i in range(len(mass)) if i < len(lo) and _is_number(lo[i])]
    span = edges.eps_range(exp, ".3e") if excluded else None
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
                    + (f"; ε from {span[0]} to {span[1]}" if span else ""),
                ),
            ]
        )
    )
    for text in edges.edge_warnings(exp):  # a boundary at eps_min/eps_max: where the scan stopped
        s.warn(text)
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


def _compare_with_table(config: AnalysisConfig, s: Section) -> None:
    """``reach.compare_with``: the published bounds the reach figure draws, with their sources."""
    entries = getattr(getattr(config, "reach", None), "compare_with", None) or []
    if not entries:
        return
    from gammastar.formats.bounds import read_entry

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
        v = dict_at(p, key)
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
