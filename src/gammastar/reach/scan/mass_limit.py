"""One mass point's statistics in the (m, ε) scan: the likelihood and limit
(:func:`_mass_limit`, a second pass with the N_sig-level errors taken at the first pass's
boundaries, :func:`_second_pass_rows`), the ε boundaries of every band (:func:`_boundaries`)
and the impact row and table of ``reach.json`` (:func:`_impact_row`, :func:`_impact_table`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.reach.impact import impact
from gammastar.reach.scan.mass_signal import _MassJob, _MassSignal, _MassWork
from gammastar.reach.scan.settings import ScanSettings
from gammastar.reach.signal import eps_boundaries, mass_model
from gammastar.reach.stats import upper_limit
from gammastar.reach.stats.interface import BANDS, LimitResult
from gammastar.reach.stats.model import Model


def _kinematic_row(
    eps: NDArray, kin_rel: NDArray, lo: float, hi: float, nsig_grid: NDArray, m: float
) -> dict[str, Any]:
    """The ``kinematic_model`` size for a mass: r at the median expected ε_high of the first
    pass (the exponentially sensitive edge), else at ε_low, else where N_sig peaks."""
    at = {"eps_low": _interp_log(eps, kin_rel, lo), "eps_high": _interp_log(eps, kin_rel, hi)}
    r_used = next(
        (v for v in (at["eps_high"], at["eps_low"]) if v is not None),
        float(kin_rel[int(np.argmax(nsig_grid))]),
    )
    return {"mass": m, "rel": r_used, **at}


def _extrapolation_row(
    eps: NDArray, ex_rel: NDArray, lo: float, hi: float, nsig_grid: NDArray, m: float
) -> dict[str, Any]:
    """The ``extrapolation`` size for a mass: the larger of the fit's N_sig error at the first
    pass's median expected ε_low and ε_high (the extrapolated share is largest at ε_low, the
    long lifetimes; the sensitivity to the energy spectrum at ε_high), else where N_sig
    peaks. An edge where N_sig is not resolved (``unresolved``) takes :func:`edge_size`'s
    fallback, at least the other edge's size; ``fallback`` names those edges."""
    raw = {"eps_low": _interp_log(eps, ex_rel, lo), "eps_high": _interp_log(eps, ex_rel, hi)}
    # NaN: N_sig not resolved there (nsig_error_parts' forms_unresolved)
    unresolved = any(v is not None and not np.isfinite(v) for v in raw.values())
    floor = max((v for v in raw.values() if v is not None and np.isfinite(v)), default=0.0)
    at: dict[str, float | None] = {}
    fallback = []
    for edge, x in (("eps_low", lo), ("eps_high", hi)):
        at[edge], took = edge_size(eps, ex_rel, x, floor)
        if took:
            fallback.append(edge)
    vals = [v for v in at.values() if v is not None]
    finite = np.isfinite(ex_rel)
    peak = int(np.argmax(np.where(finite, nsig_grid, -np.inf))) if np.any(finite) else None
    r_used = max(vals) if vals else (0.0 if peak is None else float(ex_rel[peak]))
    return {"mass": m, "rel": r_used, **at, "unresolved": unresolved, "fallback": fallback}


def edge_size(
    eps: NDArray, rel: NDArray, at: float, floor: float = 0.0
) -> tuple[float | None, bool]:
    """A per-ε N_sig-level size ``rel`` (on the ε grid ``eps``, NaN where N_sig is not
    resolved: :func:`gammastar.yields.extrapolation.nsig.nsig_error_parts`'
    ``forms_unresolved``) at the edge ε = ``at`` (linear in log ε), and whether it took the
    fallback: where it is NaN, the largest resolved size over the mass's ε grid, never below
    ``floor`` (the other edge's). Why: the sizes grow towards short lifetimes (a far-forward
    detector sees the model's tail towards the beam energy), and an edge that the forms'
    draws cannot resolve lies where the model is known least, so the largest size known at
    the mass is a lower bound there, the other edge's smaller one an understatement.
    ``(None, False)`` for a NaN ``at`` (no edge).

    Example:
        >>> e = np.array([1e-6, 1e-5, 1e-4])
        >>> edge_size(e, np.array([0.1, 3.0, np.nan]), 2e-5, floor=0.1)
        (3.0, True)
        >>> edge_size(e, np.array([0.1, 3.0, np.nan]), 1e-6)
        (0.1, False)
    """
    v = _interp_log(eps, rel, at)
    if v is None or np.isfinite(v):
        return v, False
    known = np.asarray(rel, dtype=np.float64)
    known = known[np.isfinite(known)]
    return max(float(known.max()) if known.size else floor, floor), True


Size = float | tuple[float, float]
"""A named nuisance's size: r (symmetric), or (r₊, r₋) of a two-sided one (hi = 1 + r₊,
lo = 1/(1 + r₋))."""


def _mass_model_for(
    sig: _MassSignal,
    i: int,
    masses: NDArray,
    st: ScanSettings,
    mc_stat: float,
    nuisances: dict[str, Size],
) -> Model:
    """The per-mass likelihood (:func:`mass_model`) of mass point ``i`` from the settings."""
    up = {k: v[0] if isinstance(v, tuple) else v for k, v in nuisances.items()}
    down = {k: v[1] for k, v in nuisances.items() if isinstance(v, tuple)}
    return mass_model(
        sig.mass,
        st.model_settings(sig.channels),
        observed=None
        if not st.observed
        else {ch: (v if np.ndim(v) == 0 else np.asarray(v)[i]) for ch, v in st.observed.items()},
        mc_stat=mc_stat,
        mass_range=(float(masses[0]), float(masses[-1])),
        acceptance=sig.shares,
        signal_nuisances=up or None,
        signal_down=down or None,
    )


def _boundaries(
    lim: LimitResult, sig: _MassSignal, eps: NDArray, st: ScanSettings
) -> dict[str, tuple[float, float]]:
    """ε_low, ε_high of every band where N_sig(ε) = the band's signal count
    (:func:`eps_boundaries`); bands sharing a count share the boundaries."""
    targets = {b: lim.expected[b] for b in BANDS}
    if st.observed:
        targets["obs"] = lim.observed if lim.observed is not None else float("nan")
    targets.update({f"events_{v:g}": v for v in st.event_lines})
    done: dict[float, tuple[float, float]] = {}
    for s_up in targets.values():
        if s_up not in done:
            done[s_up] = eps_boundaries(sig.nsig, eps, s_up, values=sig.nsig_grid)
    return {k: done[s_up] for k, s_up in targets.items()}


@dataclass(frozen=True)
class _MassInputs:
    """One mass point's statistics inputs besides its signal: its index on the mass grid, the
    named nuisances' sizes there, the yield's statistical error, the limit hint, and the
    per-ε relative N_sig errors that the second pass takes at the first pass's boundaries."""

    index: int
    nuisances: dict[str, float]
    mc_stat: float
    hint: float | None
    """The previous mass point's −2σ expected limit (a start for the limit's search)."""
    kin_rel: NDArray | None = None
    """The ensemble's acceptance spread (``kinematic_model``), or ``None``."""
    ex_rel: NDArray | None = None
    """The extrapolation fit's N_sig error (``extrapolation``), or ``None``."""
    ex_sides: NDArray | None = None
    """Its two sides (r₊, r₋) per ε, shape (2, ε), which the likelihood then takes, or ``None``."""
    lam_rel: NDArray | None = None
    """The measured λ_θ's N_sig error (``acceptance_lambda_theta``), or ``None``."""


def _point(job: _MassJob, work: _MassWork, hint: float | None) -> _MassInputs:
    """The statistics inputs of ``job``'s mass with its signal work and the limit ``hint``."""
    return _MassInputs(
        index=job.index,
        nuisances=job.nuisances,
        mc_stat=job.mc_stat,
        hint=hint,
        kin_rel=work.kin_rel,
        ex_rel=work.ex_rel,
        lam_rel=work.lam_rel,
        ex_sides=work.ex_sides,
    )


@dataclass
class _MassLimit:
    """One mass point's statistics: the likelihood, the limit and the ε boundaries per band
    (of the second pass with an ensemble), the ``kinematic_model`` row, the methods used."""

    model: Model
    limit: LimitResult
    boundaries: dict[str, tuple[float, float]]
    kinematic: dict[str, Any] | None
    methods: set[str]
    seconds: dict[str, float]
    extrapolation: dict[str, Any] | None = None
    lambda_theta: dict[str, Any] | None = None
    high: tuple[Model, LimitResult] | None = None
    """The ε_high edge's likelihood and limit where its per-ε nuisances' sizes differ from the
    ε_low edge's (:func:`_sizes_at`); ``None``: one limit for both edges."""


def _second_pass_rows(
    point: _MassInputs,
    sig: _MassSignal,
    eps: NDArray,
    first: tuple[float, float],
    nuis: dict[str, Size],
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any] | None]:
    """The ``kinematic_model``, ``extrapolation`` and ``acceptance_lambda_theta`` rows at the
    first pass's median expected boundaries ``first``; their sizes replace those in ``nuis``
    (``extrapolation``'s two sides, ``up`` and ``down`` rows of its row, where ``ex_sides``)."""
    lo, hi = first
    kin_row = ex_row = lam_row = None
    if point.kin_rel is not None:
        kin_row = _kinematic_row(eps, point.kin_rel, lo, hi, sig.nsig_grid, sig.mass)
        nuis["kinematic_model"] = kin_row["rel"]
    if point.ex_rel is not None and "extrapolation" in nuis:
        ex_row = _extrapolation_row(eps, point.ex_rel, lo, hi, sig.nsig_grid, sig.mass)
        ex_row["rel_yield"] = nuis["extrapolation"]
        nuis["extrapolation"] = ex_row["rel"]
        if point.ex_sides is not None:
            for side, rel in zip(("up", "down"), point.ex_sides, strict=True):
                row = _extrapolation_row(eps, rel, lo, hi, sig.nsig_grid, sig.mass)
                ex_row[side] = {k: row[k] for k in ("rel", "eps_low", "eps_high")}
            nuis["extrapolation"] = (ex_row["up"]["rel"], ex_row["down"]["rel"])
    if point.lam_rel is not None and "acceptance_lambda_theta" in nuis:
        lam_row = _extrapolation_row(eps, point.lam_rel, lo, hi, sig.nsig_grid, sig.mass)
        lam_row["rel_yield"] = nuis["acceptance_lambda_theta"]
        nuis["acceptance_lambda_theta"] = lam_row["rel"]
    return kin_row, ex_row, lam_row


def _sizes_at(point: _MassInputs, eps: NDArray, at: float,
              base: dict[str, Size]) -> dict[str, Size]:  # fmt: skip
    """``base`` with each per-ε nuisance of ``point`` (``kinematic_model``, ``extrapolation``,
    ``acceptance_lambda_theta``) at ε = ``at`` (:func:`edge_size`: where N_sig is not resolved
    there, the largest resolved size at the mass, never below ``base``'s), each side of a
    two-sided one (``ex_sides``) alike. Why per edge: the two
    boundaries are two hypothesis tests at two ε, and a far-forward detector's N_sig is known
    far less well at its short-lifetime edge (the model's tail towards the beam energy) than
    at its long-lifetime one."""
    out = dict(base)
    ex = point.ex_sides if point.ex_sides is not None else _one_side(point.ex_rel)
    for name, sides in (("kinematic_model", _one_side(point.kin_rel)), ("extrapolation", ex),
                        ("acceptance_lambda_theta", _one_side(point.lam_rel))):  # fmt: skip
        if sides is None or name not in base:
            continue
        b = base[name]
        floors = b[: len(sides)] if isinstance(b, tuple) else (b,) * len(sides)
        got = [edge_size(eps, r, at, f)[0] for r, f in zip(sides, floors, strict=True)]
        ok = [v for v in got if v is not None]
        if len(ok) == len(got):  # one size each of r₊, r₋, or the symmetric r
            out[name] = (ok[0], ok[1]) if len(ok) == 2 else ok[0]
    return out


def _one_side(rel: NDArray | None) -> tuple[NDArray, ...] | None:
    """A symmetric per-ε size as the one side :func:`_sizes_at` takes (``None``: none)."""
    return None if rel is None else (rel,)


def _same_sizes(a: dict[str, Size], b: dict[str, Size]) -> bool:
    """Whether the sizes ``a`` are ``b``'s to 1e-6 relative (either side of a two-sided one)."""
    return all(np.allclose(a[k], v, rtol=1e-6, atol=0.0) for k, v in b.items())


def _high_edge(solve: Callable[[dict[str, Size]], tuple], point: _MassInputs, sig: _MassSignal,
               eps: NDArray, sizes: dict[str, Size]) -> tuple:  # fmt: skip
    """The ε_high limit with the per-ε sizes at the boundary it gives, conservatively. With
    the sizes growing towards short lifetimes (a far-forward detector's model tail), the
    boundary for the sizes at ε, T(ε), falls as ε grows, and the self-consistent edge is
    T's fixed point ε*. The first pass's edge ε₀ (no such nuisance) lies above it, so
    ε₁ = T(ε₀) ≤ ε₃ = T(T(ε₁)) ≤ ε*: solved at ε₀'s sizes (``sizes``), then twice more
    (ε at N_sig's peak for a limit above it), keeping ε₃, the closer of the two that do
    not overstate the reach; one solve where the sizes at ε₁ are those at ε₀."""
    got = solve(sizes)

    def at_edge(sol: tuple) -> dict[str, Size]:
        hi = sol[2]["0"][1]
        e = hi if np.isfinite(hi) else float(eps[int(np.argmax(sig.nsig_grid))])
        return _sizes_at(point, eps, e, sizes)

    second = at_edge(got)
    if _same_sizes(second, sizes):
        return got
    return solve(at_edge(solve(second)))


def _mass_limit(
    sig: _MassSignal, point: _MassInputs, masses: NDArray, eps: NDArray, st: ScanSettings
) -> _MassLimit:
    """The limit (:func:`gammastar.reach.stats.upper_limit`) and ε boundaries of one mass point;
    with an ensemble spread ``kin_rel`` or the extrapolation fit's N_sig error ``ex_rel``
    (per ε) a second pass with ``kinematic_model`` (:func:`_kinematic_row`) and
    ``extrapolation`` (:func:`_extrapolation_row`, two-sided where ``ex_sides``) taken at the
    first pass's median expected boundaries, likewise ``acceptance_lambda_theta`` at N's level from ``lam_rel``: each edge
    with the sizes at it (:func:`_sizes_at`; a second limit for ε_high where they
    differ)."""
    nuis: dict[str, Size] = dict(point.nuisances)
    methods: set[str] = set()
    rows: tuple[dict[str, Any] | None, ...] = (None, None, None)
    secs = {"limits": 0.0, "boundaries": 0.0}

    def solve(sizes: dict[str, Size]) -> tuple[Model, LimitResult, dict[str, tuple[float, float]]]:
        t1 = time.perf_counter()
        model = _mass_model_for(sig, point.index, masses, st, point.mc_stat, sizes)
        lim = upper_limit(
            model, cl=st.cl, method=st.method, ntoys=st.ntoys, seed=sig.seed, hint=point.hint
        )
        methods.add(lim.method)
        t2 = time.perf_counter()
        bnd = _boundaries(lim, sig, eps, st)
        secs["limits"] += t2 - t1
        secs["boundaries"] += time.perf_counter() - t2
        return model, lim, bnd

    model, lim, bnd = solve(nuis)
    high = None
    if (
        point.kin_rel is not None
        or (point.ex_rel is not None and "extrapolation" in nuis)
        or (point.lam_rel is not None and "acceptance_lambda_theta" in nuis)
    ):
        rows = _second_pass_rows(point, sig, eps, bnd["0"], nuis)
        first_low, first_high = bnd["0"]  # the first pass's, where the rows were taken
        at_low = _sizes_at(point, eps, first_low, nuis)
        at_high = _sizes_at(point, eps, first_high, nuis)
        model, lim, bnd = solve(at_low)
        if at_high != at_low:
            m_hi, l_hi, b_hi = _high_edge(solve, point, sig, eps, at_high)
            # a band whose ε_high limit N_sig never reaches takes both edges from it: between
            # the edges the sizes are neither edge's, and no boundary is the conservative one
            bnd = {k: (lo if np.isfinite(b_hi[k][1]) else b_hi[k][0], b_hi[k][1])
                   for k, (lo, _) in bnd.items()}  # fmt: skip
            high = (m_hi, l_hi)
    return _MassLimit(model, lim, bnd, rows[0], methods, secs, rows[1], rows[2], high)



def _impact_row(
    model: Model, lim: LimitResult, sig: _MassSignal, eps: NDArray, lo: float, hi: float, cl: float
) -> dict[str, Any]:
    """One mass's row of the impact table: each nuisance fixed at ±1σ
    (:func:`gammastar.reach.impact.impact`)."""

    return {
        "mass": sig.mass,
        "s_up": lim.expected["0"],
        "eps_low": lo,
        "eps_high": hi,
        "shifts": impact(
            model,
            lambda s: eps_boundaries(sig.nsig, eps, s, values=sig.nsig_grid),
            cl=cl,
            method=lim.method,
            seed=sig.seed,
            s_up=lim.expected["0"],
        ),
    }


def _interp_log(eps: NDArray, values: NDArray, at: float) -> float | None:
    """``values`` (on the ε grid) at ε = ``at``, linear in log ε; ``None`` for a NaN ``at``."""
    if not np.isfinite(at):
        return None
    return float(np.interp(math.log(at), np.log(eps), values))


def _impact_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``reach.json`` ``impact``: per nuisance and ±1σ, s_up and ε_low/ε_high at each mass."""

    def num(v: float | None) -> float | None:
        return None if v is None or not np.isfinite(v) else float(v)

    names = list(dict.fromkeys(n for r in rows for n in r["shifts"]))
    table: dict[str, Any] = {
        "mass": [r["mass"] for r in rows],
        "nominal": {k: [num(r[k]) for r in rows] for k in ("s_up", "eps_low", "eps_high")},
        "nuisances": {},
        "note": "median expected limit with one nuisance fixed at +1/-1 sigma and the others "
        "integrated (gammastar.reach.impact.impact); s_up in events of the nominal N_sig",
    }
    for n in names:
        table["nuisances"][n] = {
            side: {
                k: [num(r["shifts"].get(n, {}).get(side, {}).get(k)) for r in rows]
                for k in ("s_up", "eps_low", "eps_high")
            }
            for side in ("+1", "-1")
        }
    return table
