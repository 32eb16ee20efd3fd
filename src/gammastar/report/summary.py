"""The report's summary: the expected excluded range, the A′ yield at a few masses, the
validation verdicts, every warning of the page and what the run lacks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gammastar.config import AnalysisConfig
from gammastar.core import rundir
from gammastar.core.verdicts import kl_verdicts
from gammastar.reach import edges
from gammastar.report.markup import (
    Raw,
    _flags_text,
    _is_number,
    dict_at,
    esc,
    fmt,
    table,
)
from gammastar.report.reading import (
    Section,
    _as_list,
    _get,
    _num,
    _pick,
    _read_json,
)
from gammastar.yields.error_parts import PART_LABELS, ErrorParts, error_parts

__all__ = ["SUMMARY_INPUTS", "UNIVERSALITY_ALPHA", "Summary", "summary_masses", "yield_bin"]


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
    """Beside the reach figure: the exclusion and the verdicts."""
    after: list[str] = field(default_factory=list)
    """Under both, the page's width: the table at 3 masses (its flags and labels need more than
    the column beside the figure) and the warnings."""
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
    exp = dict_at(reach, "expected")
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
    mass, _, _, idx = _excluded(reach)
    what = f"{100 * cl:.0f} % CLs" if cl is not None else "CLs"
    if not idx:
        return f"Expected exclusion ({what}, median): none of the {len(mass)} scanned masses."
    gaps = idx != list(range(idx[0], idx[-1] + 1))
    text = (
        f"Expected exclusion ({what}, median): m_A′ from {fmt(mass[idx[0]], '.4g')} to "
        f"{fmt(mass[idx[-1]], '.4g')} GeV ({len(idx)} of {len(mass)} scanned masses"
        + (", with gaps" if gaps else "")
        + "), ε from {} to {}.".format(*(edges.eps_range(reach["expected"], ".3e") or ("?", "?")))
    )
    obs = reach.get("observed") if isinstance(reach.get("observed"), dict) else None
    if obs:
        olo = _as_list(obs.get("eps_low"))
        n_obs = sum(1 for i in range(len(mass)) if i < len(olo) and _is_number(olo[i]))
        text += f" Observed: excluded at {n_obs} of {len(mass)} masses."
    return text


def _cell(values: list[Any], i: int | None, spec: str, missing: str = "n/a") -> str:
    """``values[i]`` formatted, ``missing`` where there is no number."""
    if i is None or i >= len(values) or not _is_number(values[i]):
        return missing
    return fmt(values[i], spec)


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


REACH_PARTS = (("n_pot", ("n_pot_rel_uncertainty",)),
               ("signal_efficiency", ("statistics", "efficiency_uncertainty")))  # fmt: skip
"""The reach's normalisation uncertainties of the signal shown beside the yield's parts:
(part, its key in ``reach.json`` ``meta``)."""


def yield_error_parts(
    yields: dict[str, Any] | None, reach: dict[str, Any] | None
) -> ErrorParts | None:
    """The A′ yield's named error parts (:func:`gammastar.yields.error_parts.error_parts`) and,
    with a reach, its N_POT and signal-efficiency uncertainties (``reach.json`` ``meta``):
    every normalisation uncertainty of the signal the likelihood holds."""
    if not isinstance(_get(yields, "aprime"), dict):
        return None
    assert yields is not None
    parts = error_parts(yields)
    for name, key in REACH_PARTS:
        rel = _num(_get(reach, "meta", *key))
        if rel is not None and rel > 0:
            parts = parts.with_part(name, rel)
    return parts


def _percent(rel: float | None) -> str:
    """A relative size in per cent, 2 digits; "—" for a part that is exactly 0 there (it
    does not apply: one channel alone, no extrapolation)."""
    if rel is None:
        return "n/a"
    return "—" if rel == 0 else f"{100 * rel:.2g} %"


def _yield_cells(ap: dict[str, Any], m: float, parts: ErrorParts, shown: list[str]) -> list[str]:
    """The A′ yield's bin holding ``m``: its range, the yield per POT per ε², its total error
    (absolute and relative), each part of ``shown`` (relative), its flags."""
    b = yield_bin(ap, m)
    if b is None:
        return ["outside the yields", "n/a", "n/a", *(["n/a"] * len(shown)), "—"]
    edges = _as_list(ap.get("bin_edges"))
    flags = _as_list(ap.get("flags"))
    where = f"{fmt(edges[b], '.4g')}–{fmt(edges[b + 1], '.4g')}" if b + 1 < len(edges) else "n/a"
    value = _cell(_as_list(ap.get("per_pot_per_eps2")), b, ".4e")
    total = parts.absolute()[b] if b < len(parts.y) else None
    rel = parts.total_rel[b] if b < len(parts.y) else None
    total_cell = "n/a" if total is None else f"± {fmt(total, '.2e')} ({_percent(rel)})"
    cells = [_percent(parts.rel[k][b] if b < len(parts.y) else None) for k in shown]
    return [where, value, total_cell, *cells, _flags_text(flags[b]) if b < len(flags) else "—"]


def _masses_table(reach: dict[str, Any] | None, yields: dict[str, Any] | None) -> Raw | None:
    """The ε band and the A′ yield per POT per ε² at :func:`summary_masses` with its total
    error and named parts (a flags row where one of the 3 bins has a flag): a column per
    mass, a row per quantity (3 columns fit a page's column however many parts there are)."""
    masses = summary_masses(reach, yields)
    if not masses:
        return None
    ap = _get(yields, "aprime")
    ap = ap if isinstance(ap, dict) else None
    parts = yield_error_parts(yields, reach)
    shown = parts.nonzero() if parts is not None else []
    headers = ["m_A′ (GeV)"]
    if reach is not None:
        headers += ["expected ε low", "expected ε high"]
        if isinstance(reach.get("observed"), dict) and reach["observed"]:
            headers += ["observed ε low", "observed ε high"]
    if ap is not None:
        headers += ["yield bin (GeV)", "A′ per POT per ε²", "total error"]
        headers += [PART_LABELS.get(k, k) for k in shown] + ["flags"]
    rows = [
        [fmt(m, ".4g")]
        + (_reach_cells(reach, m) if reach is not None else [])
        + (_yield_cells(ap, m, parts, shown) if ap is not None and parts is not None else [])
        for m in masses
    ]
    if ap is not None and all(r[-1] == "—" for r in rows):  # no flag: no row
        headers, rows = headers[:-1], [r[:-1] for r in rows]
    columns = [[h, *(r[j] for r in rows)] for j, h in enumerate(headers)]
    return table(columns[0], columns[1:], "num masses")


def _parts_note(yields: dict[str, Any] | None, reach: dict[str, Any] | None) -> str:
    """What the total error holds, and the parts left out as 0 at every mass."""
    parts = yield_error_parts(yields, reach)
    if parts is None:
        return ""
    zero = [PART_LABELS.get(k, k) for k in parts.rel if k not in parts.nonzero()]
    text = (
        " Total error: the named parts in quadrature, each a relative ±1σ "
        "(yields.json uncertainties and meta.mock_normalisation"
        + ("; N_POT and signal efficiency: reach.json meta" if reach is not None else "")
        + "), the normalisation uncertainties of the signal in the reach's likelihood."
    )
    text += " —: the part is 0 at that mass (it does not apply there)."
    if zero:
        text += f" Parts 0 at every mass, left out: {', '.join(zero)}."
    return text


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
            v = dict_at(p, key)
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


def _summary(config: AnalysisConfig, run: Path, sections: dict[str, Section]) -> Summary:
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
        out.after.append(f"<h3>{head} at 3 masses</h3>{tab}")
        if reach is not None and yields is not None:
            out.after.append(
                '<p class="note">Masses: the lowest, middle and highest scanned mass of the '
                "expected excluded range (reach.json expected); the A′ yield per POT per ε² of "
                "the yields' mass bin that holds each (yields.json aprime, Eq. 6)."
                f"{esc(_parts_note(yields, reach))}</p>"
            )
        elif yields is not None:
            out.after.append(f'<p class="note">{esc(_parts_note(yields, reach).strip())}</p>')
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
