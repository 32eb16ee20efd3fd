"""``unfold.decay_lambda_theta: measured`` (and the fiducial polarisation) with the pairs left
on the workers, on Dask and on the process pool (``futures``) alike.

Each chunk's pairs stay where it was processed: in its Dask worker's memory
(:class:`~gammastar.selection.executors.dask_cluster.DaskExecutor` ``hold``), or in a file of
the process pool's (:class:`~gammastar.selection.executors.held.FileStates`); the driver runs
the same steps as on the whole table (:func:`gammastar.selection.weights.apply.
_measured_acceptance`) through :class:`HeldSteps` (one code path for both), each a task per chunk that
returns sums: the isotropic weights (the moments at every pair, 1/ε, k_b, 1/⟨a⟩), the η → μμ
``rate`` scale from the summed Σ weight per mass bin, the polarisation bins from a 1 MeV
histogram of the OS masses (and the few masses at the bins' quantiles), the likelihood fit
per bin as Newton passes whose score, Hessian and meat add over chunks
(:func:`gammastar.corrections.polarisation.fit.newton_steps`), and the final weights with
the acceptance of the fitted λ_θ(m), written as the chunk's part of ``pairs.parquet/``. Per
pair the numbers are those of the whole table's path (the same functions on the same values);
the sums over pairs differ by their order only (``tests/test_onworkers.py``).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from gammastar.core.parquet import part_bytes
from gammastar.corrections.background import pair_factors
from gammastar.corrections.polarisation import (
    MIN_PAIRS,
    PARAMS,
    Polarisation,
    _rows,
    lambda_for_acceptance,
)
from gammastar.corrections.polarisation.angles import angular_functions
from gammastar.corrections.polarisation.edges import (
    edges_from_quantiles,
    peak_safe_edges,
    quantile_levels,
)
from gammastar.corrections.polarisation.fit import (
    _counted_pairs,
    _fit_lambdas_damped,
    _NewtonPass,
    equal_weight_scale_of_sums,
    newton_steps,
)
from gammastar.corrections.unfold.efficiency import inverse_weights
from gammastar.selection.executors.held import SHARED
from gammastar.selection.pairhists import HistAxes, unfolded_histograms
from gammastar.selection.polarisation import BinRule, log_lambda
from gammastar.selection.weights.pairs import _DTYPES, _AtPairs, pair_weights
from gammastar.selection.writer import chunk_part_name, write_part

State = dict[str, Any]
"""One chunk's pairs and what the steps computed for them (on its worker)."""


# --------------------------------------------------------------------------- on the workers
@dataclass(frozen=True)
class Weighing:
    """What a chunk needs to weigh its pairs as the whole table's path does
    (:func:`gammastar.selection.weights.apply._weigh_table`; picklable)."""

    am: Any
    """The per-pair acceptance at λ_θ = 0 (its moment tables)."""
    mass_edges: np.ndarray
    """The mass axis (k_b's bins, the rate's bins)."""
    ss_factor: np.ndarray
    """k_b per mass bin (the like-sign estimate's ``factor``)."""
    min_acceptance: float
    outside_map: str
    conversion: Any


def prepare(spec: Weighing, held: Mapping[str, Any]) -> tuple[State, dict[str, Any]]:
    """A chunk's pairs (the processor's output, kept on the worker) as the table's columns,
    the acceptance's moments at every pair (float32, as the table's path), 1/ε, the SS
    factors and the isotropic weights (A = ⟨a⟩); the sums: ε = 0 count, Σ weight per mass
    bin."""
    ((key, chunk),) = held["out"]["pairs"].chunks.items()
    cols = {c: np.asarray(chunk["pT" if c == "qT" else c], dtype=t) for c, t in _DTYPES.items()}
    m, pt, pz = cols["m"], cols["pT"], cols["pz"]
    moments = spec.am.pair_moments(m, np.hypot(pt, pz), np.arctan2(pt, pz), dtype=np.float32)
    a0 = _AtPairs(np.clip(moments.values[0], 0.0, 1.0, out=np.empty(len(m))), spec.am.source)
    # weight 0 where ε cannot be used; whether that is allowed is checked on the total
    inv, rep = inverse_weights(cols["eff"], n_outside=0, on_missing="drop")
    ss = pair_factors(m, cols["charge"], spec.mass_edges, spec.ss_factor)
    acc, weight, _, _ = _weigh(spec, cols, inv, ss, a0)
    state = {"key": key, "cols": cols, "moments": moments, "inv": inv, "ss": ss,
             "acc": acc, "weight": weight}  # fmt: skip
    return state, {"n_zero": rep.n_zero, "n": len(m), "mass_w": _mass_w(spec, cols, weight)}


def _weigh(spec: Weighing, cols: Mapping[str, np.ndarray], inv: np.ndarray, ss: np.ndarray,
           acceptance: Any) -> tuple[np.ndarray, np.ndarray, dict[str, int], dict[str, float]]:  # fmt: skip
    return pair_weights(
        {c: cols[c] for c in ("m", "pT", "pz", "charge")}, inv, ss, acceptance=acceptance,
        min_acceptance=spec.min_acceptance, outside_map=spec.outside_map,
        conversion=spec.conversion,
    )  # fmt: skip


def _mass_w(spec: Weighing, cols: Mapping[str, np.ndarray], weight: np.ndarray) -> np.ndarray:
    """Σ weight per mass bin (the η → μμ ``rate`` scale's input)."""
    return np.histogram(cols["m"], bins=spec.mass_edges, weights=weight)[0]


def scaled(state: State, scale: np.ndarray | None, mass_edges: np.ndarray) -> State:
    """The state with its weights times the mass bin's ``scale`` (the ``rate`` removal:
    :func:`gammastar.selection.weights.apply._remove_eta_mumu_rate`'s per-pair step), and
    ``removed`` the weight it took out."""
    if scale is None:
        return {**state, "removed": 0.0}
    m, old = state["cols"]["m"], state["weight"]
    idx = np.clip(np.searchsorted(mass_edges, m, side="right") - 1, 0, len(scale) - 1)
    new = old * scale[idx]
    return {**state, "weight": new, "removed": float(np.sum(old - new))}


def os_mass_counts(
    grid: np.ndarray, scale: np.ndarray | None, mass_edges: np.ndarray, state: State
) -> tuple[State, dict[str, Any]]:
    """After the ``rate`` scale: the OS pairs with weight (the polarisation bins' masses)
    counted per bin of ``grid`` (index 0 below it, i + 1 in [grid_i, grid_i+1), the last
    above its last edge; NaN in none) and their number (NaN included, as the table's path
    counts them)."""
    state = scaled(state, scale, mass_edges)
    m_os = _os_masses(state)
    n_all = int(m_os.size)
    m_os = m_os[np.isfinite(m_os)]
    counts = np.bincount(np.searchsorted(grid, m_os, side="right"), minlength=grid.size + 1)
    return state, {"counts": counts, "n_os": n_all}


def _os_masses(state: State) -> np.ndarray:
    cols = state["cols"]
    return cols["m"][(cols["charge"] == 0) & (state["weight"] != 0)]


def os_masses_between(ranges: Sequence[tuple[float, float]], state: State) -> list[np.ndarray]:
    """The OS masses with weight in each [a, b) of ``ranges`` (the quantiles' neighbours)."""
    m = _os_masses(state)
    return [m[(m >= a) & (m < b)] for a, b in ranges]


def fit_bins(edges: np.ndarray, am: Any, state: State) -> tuple[State, dict[str, Any]]:
    """The polarisation fit's pairs of each bin of ``edges``, as
    :func:`gammastar.corrections.polarisation.measure` selects them (fit weight
    weight · acc, pairs with finite angles and weight, ⟨a⟩ > 0, as float64 rows), kept for
    the Newton passes (the acceptance's moments: the state's at every pair, else looked up in
    ``am`` per bin); the sums: OS count, Σw and Σw² before the ⟨a⟩ cut, and of the counted
    pairs (the fit's starting error scale)."""
    cols, nb = state["cols"], edges.size - 1
    c = np.asarray(cols["cos_theta_hel"], dtype=np.float64)
    ph = np.asarray(cols["phi_hel"], dtype=np.float64)
    w_all = state["weight"] * state["acc"]
    idx = np.full(w_all.shape, -1, dtype=np.int16 if nb < 2**15 - 1 else np.int64)
    for e in edges:
        idx += cols["m"] >= e
    unused = (w_all == 0) | ~np.isfinite(w_all) | ~np.isfinite(c) | ~np.isfinite(ph)
    idx[unused] = -1
    bins, sums = [], []
    for b in range(nb):
        k = np.flatnonzero(idx == b)
        w = w_all.take(k)
        one = {"nk": int(k.size), "n_os": int(np.count_nonzero(cols["charge"].take(k) == 0)),
               "sw": float(w.sum()), "sw2": float(np.sum(w**2))}  # fmt: skip
        if "moments" in state:  # interpolated at every pair (a measured λ_θ's, float32)
            mom = _rows(state["moments"].values, k)
        else:  # looked up per bin in float64, as measure() without moments
            pt_k, pz_k = cols["pT"].take(k), cols["pz"].take(k)
            mom = am.moments_at(cols["m"].take(k), np.hypot(pt_k, pz_k),
                                         np.arctan2(pt_k, pz_k))  # fmt: skip
        ok = mom[0] > 0
        if not ok.all():
            k, mom, w = k[ok], mom[:, ok], w[ok]
        u = angular_functions(c.take(k), ph.take(k))
        fit = _counted_pairs(u, mom[0], mom[1:], w, len(PARAMS))
        wc = fit[3]
        one.update(n=int(wc.size), cw=float(wc.sum()), cw2=float(np.dot(wc, wc)))
        # the fit's first pass (newton_steps asks for λ = 0 without the meat first): here,
        # saving a round of tasks
        one["first"] = _NewtonPass(*fit)(np.zeros(len(PARAMS)), meat=False)
        bins.append(fit)
        sums.append(one)
    return {**state, "bins": bins}, {"bins": sums}


def newton_pass(requests: Mapping[int, tuple[np.ndarray, bool]], state: State) -> dict[int, Any]:
    """The chunk's share of each requested bin's Newton pass at its λ (score, Hessian, meat:
    sums over the chunk's pairs; ``None`` where a pair leaves the allowed region)."""
    return {
        b: _NewtonPass(*state["bins"][b])(lam, meat=meat) for b, (lam, meat) in requests.items()
    }


def bin_pairs(b: int, state: State) -> tuple[np.ndarray, ...]:
    """The bin's fit rows of the chunk (the damped fallback's, on the driver)."""
    return tuple(state["bins"][b])


def final_weights(
    spec: Weighing, nodes: np.ndarray, source: str, state: State
) -> tuple[State, dict[str, Any]]:
    """The weights with the acceptance of the measured λ_θ(m) at the mass nodes (A from the
    moments, as the table's path), the report counts and sums, Σ weight per mass bin."""
    a = _AtPairs(spec.am.acceptance_at(state["moments"], nodes), source)
    acc, weight, counts, sums = _weigh(spec, state["cols"], state["inv"], state["ss"], a)
    out = {k: v for k, v in state.items() if k not in ("bins", "moments")}
    out.update(acc=acc, weight=weight)
    small = {"counts": counts, "sums": sums, "mass_w": _mass_w(spec, state["cols"], weight)}
    return out, small


def prepare_counted(
    spec: Weighing, grid: np.ndarray, held: Mapping[str, Any]
) -> tuple[State, dict[str, Any]]:
    """:func:`prepare` and, without a ``rate`` scale, :func:`os_mass_counts` in one task."""
    state, small = prepare(spec, held)
    state, counts = os_mass_counts(grid, None, spec.mass_edges, state)
    return state, {**small, **counts}


def final_written(
    spec: Weighing, nodes: np.ndarray, source: str, writer: PartWriter, state: State
) -> dict[str, Any]:
    """:func:`final_weights` and, without a ``rate`` scale, :func:`write_pairs` in one task."""
    state, small = final_weights(spec, nodes, source, state)
    return {**small, **write_pairs(writer, None, state)}


@dataclass(frozen=True)
class PartWriter:
    """Where a chunk's final pairs go (the staging dataset, as the processor writes them)."""

    dataset: str
    part_numbers: Mapping[str, int]
    axes: HistAxes
    mass_edges: np.ndarray


def write_pairs(writer: PartWriter, scale: np.ndarray | None, state: State) -> dict[str, Any]:
    """The chunk's final columns (``pairs.parquet``'s) after the ``rate`` scale, written as
    its part (the bytes returned where this worker does not see the dataset), with its
    unfolded histograms and the weight the scale took out."""
    state = scaled(state, scale, writer.mass_edges)
    final = dict(state["cols"])
    n = len(final["m"])
    final.update(acc=state["acc"], weight_raw=np.ones(n), weight=state["weight"])
    out: dict[str, Any] = {"rows": n, "removed": state["removed"],
                           "unfolded": unfolded_histograms(writer.axes, final)}  # fmt: skip
    if n:
        name = chunk_part_name(writer.part_numbers, state["key"])
        data = part_bytes(final)
        out["name"] = name
        if os.path.isdir(writer.dataset):
            write_part(writer.dataset, name, data)
        else:
            out["parquet"] = data
    return out


# --------------------------------------------------------------------------- on the driver
class HeldSteps:
    """The held chunks' states in key order, stepped through the executor's
    ``map_held`` (each step a task per chunk; the new states stay on the workers)."""

    def __init__(self, exe: Any, states: list[Any] | None = None) -> None:
        self.exe = exe
        self.states = [exe.held[k] for k in sorted(exe.held)] if states is None else states

    def step(self, fn: Callable[[Any], tuple[State, Any]], common: Any = None) -> list[Any]:
        """``fn`` on every state, the new states kept (``common``: the object that ``fn``'s
        :data:`~gammastar.selection.executors.held.SHARED` arguments stand for, sent to the
        workers once for all the steps that name it)."""
        self.states, smalls = self.exe.map_held(fn, self.states, keep=True, **_common(common))
        return list(smalls)

    def ask(self, fn: Callable[[Any], Any], common: Any = None) -> list[Any]:
        """``fn``'s results on every state (``common`` as in :meth:`step`)."""
        return list(self.exe.map_held(fn, self.states, keep=False, **_common(common))[1])

    def release(self) -> None:
        states, self.states = self.states, []
        self.exe.release_held(states)
        forget = getattr(self.exe, "forget_shared", None)
        if forget is not None:
            forget()


def _common(common: Any) -> dict[str, Any]:
    """``map_held``'s keyword of the shared object (none without one)."""
    return {} if common is None else {"common": common}


@dataclass
class OnWorkers:
    """What the measured λ_θ's selection on the workers returns to the driver."""

    polarisation: dict[str, Any]
    am: Any
    counts: dict[str, int]
    sums: dict[str, float]
    n_zero: int
    n_pairs: int
    unfolded: dict[str, Any] | None
    eta: dict[str, Any]
    parts: list[str]
    parquet: dict[str, bytes]
    times: dict[str, float]


def measured_on_workers(
    exe: Any,
    spec: Weighing,
    writer: PartWriter,
    *,
    rate: Callable[[np.ndarray], tuple[np.ndarray, dict[str, Any]]] | None,
    bins: BinRule,
    correct: Callable[[dict[str, Any]], dict[str, Any]],
    check: Callable[[int, int], None],
) -> OnWorkers:
    """The measured λ_θ's selection over the held chunks (module docstring).

    Arguments:
        exe: the executor holding the chunks (Dask's, or the process pool's).
        spec, writer: the weighing and where the parts go.
        rate: the ``rate`` scale of Σ weight per mass bin, with its report (``None``: no
            η → μμ ``rate`` removal).
        bins: the polarisation bins' rule.
        correct: the polarisation block corrected as configured (or returned as it is).
        check: raises on the pairs that 1/ε cannot use ``(pairs, at ε = 0)``.
    """
    steps, times = HeldSteps(exe), {}
    try:
        t = time.perf_counter()
        grid = _grid(bins.lo, bins.hi)
        # the weighing (the acceptance's tables) sent to the workers once, for every step
        if rate is None:  # the OS masses' histogram in the same round
            prep = steps.step(partial(prepare_counted, SHARED, grid), spec)
            hists = prep
        else:
            prep = steps.step(partial(prepare, SHARED), spec)
        exe.release_held()  # the chunks' outputs: their columns are in the new states
        n_pairs = sum(s["n"] for s in prep)
        n_zero = sum(s["n_zero"] for s in prep)
        check(n_pairs, n_zero)
        if rate is not None:  # the scale first, then the masses that keep a weight
            scale, _ = rate(_sum(s["mass_w"] for s in prep))
            hists = steps.step(partial(os_mass_counts, grid, scale, spec.mass_edges))
        counts = _sum(h["counts"] for h in hists)
        edges = _bin_edges(bins, steps, grid, counts, sum(h["n_os"] for h in hists))
        block = _fit(steps, edges)
        times["polarisation"] = time.perf_counter() - t
        block = correct(block)
        pol_edges, lam = lambda_for_acceptance(block, "select (lambda_theta fit)")
        nodes = spec.am.lambda_nodes(pol_edges, lam)
        am = spec.am.with_lambda(nodes)
        times["fit_lambda"] = time.perf_counter() - t
        eta: dict[str, Any] = {}
        if rate is None:  # weighed and written in one round
            fin = written = steps.ask(
                partial(final_written, SHARED, nodes, am.source, writer), spec
            )
        else:
            fin = steps.step(partial(final_weights, SHARED, nodes, am.source), spec)
            final_scale, eta = rate(_sum(f["mass_w"] for f in fin))
            written = steps.ask(partial(write_pairs, writer, final_scale))
    finally:
        steps.release()
    if rate is not None:
        eta["n_eta_mumu_removed"] = float(sum(w["removed"] for w in written))
    unfolded = None
    for w in written:  # in key order, as the sink folds them
        if unfolded is None:
            unfolded = {k: h.copy() for k, h in w["unfolded"].items()}
        else:
            for k, h in w["unfolded"].items():
                unfolded[k] += h
    return OnWorkers(
        polarisation=block, am=am,
        counts=_add_dicts(f["counts"] for f in fin), sums=_add_dicts(f["sums"] for f in fin),
        n_zero=n_zero, n_pairs=n_pairs, unfolded=unfolded, eta=eta,
        parts=[w["name"] for w in written if "name" in w],
        parquet={w["name"]: w["parquet"] for w in written if "parquet" in w}, times=times,
    )  # fmt: skip


PART_COLUMNS = ("m", "pT", "pz", "charge", "cos_theta_hel", "phi_hel", "weight", "acc")
"""The columns of ``pairs.parquet`` the polarisation measurement reads."""


def part_state(path: str) -> State:
    """A part of the pair dataset's columns for the polarisation measurement (on the worker
    that reads it)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=list(PART_COLUMNS))
    cols = {c: table.column(c).to_numpy() for c in PART_COLUMNS}
    return {"cols": cols, "weight": cols["weight"], "acc": cols["acc"]}


def polarisation_of_parts(
    exe: Any, paths: Sequence[str], am: Any, rule: BinRule, *, used: bool
) -> dict[str, Any]:
    """The fiducial selection's ``polarisation`` block (:func:`gammastar.corrections.
    polarisation.measure` of the weighted pairs) from the parts of the pair dataset, each
    read by a worker: the bins and the fit from the workers' sums, as for a measured λ_θ."""
    steps = HeldSteps(exe, exe.map_new(part_state, list(paths)))
    try:
        grid = _grid(rule.lo, rule.hi)
        no_bins = np.array([rule.lo, rule.hi])
        hists = steps.step(partial(os_mass_counts, grid, None, no_bins))
        counts = _sum(h["counts"] for h in hists)
        edges = _bin_edges(rule, steps, grid, counts, sum(h["n_os"] for h in hists))
        return _fit(steps, edges, used, am)
    finally:
        steps.release()


def _bin_edges(rule: BinRule, steps: HeldSteps, grid: np.ndarray, counts: np.ndarray,
               n_os: int) -> np.ndarray:  # fmt: skip
    """:class:`~gammastar.selection.polarisation.BinRule`'s edges from the OS masses'
    histogram on ``grid`` (and the masses at the quantiles, asked of the workers)."""
    return rule.edges(
        n_os,
        lambda n_bins: _quantiles(steps, grid, counts, n_bins),
        lambda edges, window: peak_safe(edges, grid, counts, window),
    )


def _sum(arrays: Any) -> np.ndarray:
    """Σ of arrays in the given (chunk key) order."""
    out = None
    for a in arrays:
        out = np.array(a, copy=True) if out is None else out + a
    assert out is not None
    return out


def _add_dicts(dicts: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def _grid(lo: float, hi: float) -> np.ndarray:
    """The OS masses' histogram edges: ``lo``, every 1 MeV in between (where the bins'
    inner edges are rounded to), ``hi`` and the next float above it (so that the last bin
    holds the masses above ``hi`` only): every edge that the polarisation bins test."""
    k = np.arange(math.ceil(lo * 1000), math.floor(hi * 1000) + 1)
    inner = k / 1000.0  # the doubles round(x, 3) gives
    inner = inner[(inner > lo) & (inner < hi)]
    return np.concatenate([[lo], inner, [hi, np.nextafter(hi, np.inf)]])


def _quantiles(steps: HeldSteps, grid: np.ndarray, counts: np.ndarray, n_bins: int) -> np.ndarray:
    """:func:`~gammastar.corrections.polarisation.edges.polarisation_edges` of the OS masses,
    from their histogram on ``grid`` and the masses of the grid bins that hold the order
    statistics each quantile interpolates (``np.quantile``'s linear rule)."""
    lo, hi = float(grid[0]), float(grid[-2])
    inside = counts[1:-2]  # [lo, hi): grid bins 0 .. len(grid) - 3
    n = int(inside.sum())
    if n == 0 or n_bins == 1:
        return np.array([lo, hi])
    levels = quantile_levels(n_bins)
    h = (n - 1) * levels  # np.quantile's virtual indices
    below = np.concatenate([[0], np.cumsum(inside)])
    need = sorted({int(j) for x in h for j in (math.floor(x), min(math.floor(x) + 1, n - 1))})
    where = {j: int(np.searchsorted(below, j, side="right") - 1) for j in need}
    bins = sorted(set(where.values()))
    got = steps.ask(partial(os_masses_between, [(grid[b], grid[b + 1]) for b in bins]))
    values = {b: np.sort(np.concatenate([g[i] for g in got])) for i, b in enumerate(bins)}
    x = {j: values[where[j]][j - below[where[j]]] for j in need}
    q = []
    for v in h:
        j = math.floor(v)
        gamma = v - j
        # the same interpolation np.quantile makes between its order statistics j, j + 1
        q.append(np.quantile(np.array([x[j], x[min(j + 1, n - 1)]]), gamma))
    return edges_from_quantiles(q, lo, hi)


def _fit(steps: HeldSteps, edges: np.ndarray, used: bool = True, am: Any = None) -> dict[str, Any]:
    """:func:`gammastar.corrections.polarisation.measure` over the held chunks: each bin's
    Newton fit fed with the summed passes (all bins' passes of a round in one task per
    chunk), the damped fallback on the bin's rows gathered here (``am``: the acceptance
    whose moments states without them look up)."""
    # the acceptance (its tables, for states without moments) sent to the workers once
    got = (steps.step(partial(fit_bins, edges, am)) if am is None
           else steps.step(partial(fit_bins, edges, SHARED), am))  # fmt: skip
    nb = edges.size - 1
    per = [[g["bins"][b] for g in got] for b in range(nb)]
    n_pairs = np.array([sum(p["n_os"] for p in per[b]) for b in range(nb)], dtype=np.int64)
    n_eff = np.zeros(nb)
    out = {k: np.full(nb, np.nan) for k in PARAMS}
    err = {k: np.full(nb, np.nan) for k in PARAMS}
    fits: dict[int, Any] = {}
    for b in range(nb):
        nk, sw, sw2 = (sum(p[k] for p in per[b]) for k in ("nk", "sw", "sw2"))
        n_eff[b] = float(sw**2 / sw2) if nk else 0.0
        if n_pairs[b] < MIN_PAIRS:
            continue
        n, cw, cw2 = (sum(p[k] for p in per[b]) for k in ("n", "cw", "cw2"))
        fits[b] = newton_steps(equal_weight_scale_of_sums(n, cw, cw2), n_params=len(PARAMS))
    pending: dict[int, Any] = {}
    results: dict[int, Any] = {}
    for b, gen in fits.items():
        r = _advance(gen, None, first=True)
        if not isinstance(r, _Done):  # λ = 0 without the meat: fit_bins' pass
            r = _advance(gen, _sum_passes([p["first"] for p in per[b]]))
        if isinstance(r, _Done):
            results[b] = r.value
        else:
            pending[b] = r
    while pending:  # one round: every pending bin's pass, one task per chunk
        parts = steps.ask(partial(newton_pass, pending))
        nxt: dict[int, Any] = {}
        for b in pending:
            r = _advance(fits[b], _sum_passes([p[b] for p in parts]))
            if isinstance(r, _Done):
                results[b] = r.value
            else:
                nxt[b] = r
        pending = nxt
    for b, res in results.items():
        if res is _FAILED:
            continue
        if res is None:  # the damped fit, on the bin's rows gathered here
            rows = steps.ask(partial(bin_pairs, b))
            u, a0, v, w = (np.concatenate([r[i] for r in rows], axis=-1) for i in range(4))
            try:
                res = _fit_lambdas_damped(u, a0, v, w, n_params=len(PARAMS))
            except ValueError:
                continue
        lam, cov = res
        for i, name in enumerate(PARAMS):
            out[name][b] = lam[i]
            err[name][b] = float(np.sqrt(cov[i, i]))
    pol = Polarisation(
        edges, out["lambda_theta"], err["lambda_theta"], out["lambda_phi"], err["lambda_phi"],
        out["lambda_theta_phi"], err["lambda_theta_phi"], n_pairs, n_eff, used,
    )  # fmt: skip
    log_lambda(pol)
    return pol.as_dict()


_FAILED = object()
"""A bin whose fit raised ValueError (no measurement: NaN)."""


@dataclass
class _Done:
    value: Any


def _advance(gen: Any, parts: Any, *, first: bool = False) -> Any:
    """The generator's next request ``(lam, meat)``, or :class:`_Done` with its result
    (``_FAILED`` where it raised ValueError, as :func:`measure` skips such a bin)."""
    try:
        return next(gen) if first else gen.send(parts)
    except StopIteration as stop:
        return _Done(stop.value)
    except ValueError:
        return _Done(_FAILED)


def _sum_passes(parts: list[Any]) -> Any:
    """The chunks' passes of one bin added (``None`` if any chunk's is: a pair outside the
    allowed region)."""
    if any(p is None for p in parts):
        return None
    score, hess = _sum(p[0] for p in parts), _sum(p[1] for p in parts)
    meat = None if parts[0][2] is None else _sum(p[2] for p in parts)
    return score, hess, meat


def peak_safe(edges: np.ndarray, grid: np.ndarray, counts: np.ndarray, window: float) -> np.ndarray:
    """:func:`~gammastar.corrections.polarisation.edges.peak_safe_edges` of the OS masses
    from their histogram on ``grid`` (each bin's count at its lower edge; below ``lo``: −∞),
    the same edges as from the masses (every edge it tests is one of ``grid``'s)."""
    reps = np.concatenate([[-np.inf], grid])
    return peak_safe_edges(edges, reps, window, counts=counts)
