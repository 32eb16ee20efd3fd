"""Golden outputs of the extrapolation: the ``yields.json`` ``extrapolation`` record and the
parts of the N_sig error on a small deterministic case, pinned to the numbers the package's
code gave before its extrapolation modules were restructured (the parameter layout as a type,
the N_sig error split into a package, one reweighting). A restructuring must reproduce them;
a deliberate change of outputs regenerates them, and says why in its change:

    PYTHONPATH=src .venv/bin/python tests/test_extrapolation_golden.py --regenerate

(writes ``tests/data/extrapolation_golden.json``).

The case: pairs of the NA60-like toy model (T = 0.2 GeV, ȳ = 3.37, σ_y = 1.2, docs/explanation/
physics.md §3.2) at two masses, seen through an acceptance A(y) = 0.9 exp(−(y − 3.6)²/(2 · 0.7²)),
F = {A ≥ 0.05}, weighted 1/A; three fits covering the parameter layouts (ȳ fixed with an
external σ_y and its stated error; ȳ and the m_T powers fitted; ȳ by the ``auto`` rule) with
their model forms; then, on a draw of the fitted model, the N_sig error parts (linear and log,
a forward detector whose forms are drawn directly), the full-phase-space error, a λ_θ part
and the arm's model normalised in F.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

GOLDEN = Path(__file__).parent / "data" / "extrapolation_golden.json"
MASSES, EDGES = (0.5, 0.7), [0.4, 0.6, 0.8]
TRUE = (0.2, 3.37, 1.2)
A_WIDTH, A_MIN = 0.7, 0.05
N_SOURCES, N_DRAW, REFERENCE = 6_000, 4_000, 50_000

# The tolerance. The numbers go through a fit that stops where Newton's decrement is below
# NEWTON_DECREMENT = 1e-20 (parameters within ~3e-9 relative of the minimum, likelihood.py), an
# L-BFGS-B fallback whose ftol = 1e-14 leaves them within ~√1e-14 = 1e-7, central differences
# of step 1e-4 and sums of ≤ 1e5 terms (reorder_tol(1e5, 1, EPS64) ≈ 2e-11 relative). What a
# different summation order or BLAS kernel changes is thus bounded by the fit's stopping point,
# ≲ 1e-7 relative on a parameter; outputs are smooth functions of the parameters with condition
# numbers ≲ 10² on this case (a rapidity tail's ln N moves by ~(y − ȳ)²/σ_y² ≈ 10 per unit
# relative change of σ_y): 1e-5 relative. An absolute floor of 1e-12 for values that are zero
# up to rounding (a part that vanishes at this mass).
RTOL, ATOL = 1e-5, 1e-12


class _Table:
    """The toy's per-pair acceptance lookup (``of_kinematics``), as a λ move's region holds it."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def of_kinematics(self, m: Any, qt: Any, e: Any) -> np.ndarray:
        mt = np.sqrt(np.asarray(qt) ** 2 + np.asarray(m) ** 2)
        y = np.arccosh(np.maximum(np.asarray(e) / mt, 1.0))
        return 0.9 * np.exp(-0.5 * ((y - 3.6) / A_WIDTH) ** 2) / self.scale


class _ToyRegion:
    """The fiducial region in the duck type of
    :class:`~gammastar.corrections.pair_acceptance.FiducialRegion`: ``contains``, ``as_dict``
    and the acceptance table (``acceptance.of_kinematics``), F = {A ≥ ``a_min``}."""

    def __init__(self, a_min: float = A_MIN, scale: float = 1.0) -> None:
        self.min_acceptance, self.acceptance = a_min, _Table(scale)

    def contains(self, m: Any, qt: Any, e: Any) -> np.ndarray:
        return np.asarray(_Table().of_kinematics(m, qt, e) >= self.min_acceptance)

    def as_dict(self) -> dict[str, Any]:
        return {"toy": "A(y) = 0.9 exp(-(y - 3.6)^2 / (2 0.7^2)) >= 0.05"}


def _pairs(region: _ToyRegion) -> tuple[np.ndarray, ...]:
    """The accepted pairs inside F of the model at TRUE at each mass, weighted 1/A."""
    from gammastar.physics.sampling import ParametricSampler

    rng = np.random.default_rng(20)
    out: list[list[np.ndarray]] = [[], [], [], []]
    for mass in MASSES:
        d = ParametricSampler(*TRUE).sample(mass, N_SOURCES, seed=int(rng.integers(2**31)))
        a = region.acceptance.of_kinematics(mass, d["qT"], d["E"])
        keep = (a >= A_MIN) & (rng.random(N_SOURCES) < a)
        qt, e = d["qT"][keep], d["E"][keep]
        out[0].append(np.full(qt.size, mass))
        out[1].append(qt)
        out[2].append(np.arccosh(e / np.sqrt(qt**2 + mass**2)))
        out[3].append(1.0 / a[keep])
    return tuple(np.concatenate(v) for v in out)


def _all_seeing(kin: dict[str, Any], mass: float, hit: np.ndarray) -> Any:
    """A KinematicSample whose detector sees the samples ``hit`` with probability 1."""
    from gammastar.reach.acceptance import KinematicSample

    n = len(kin["qT"])
    return KinematicSample(mass, np.ones(n), np.asarray(hit, float)[:, None],
                           np.array([0.0, np.inf]), 1.0)  # fmt: skip


def _decaying(kin: dict[str, Any], mass: float, hit: np.ndarray) -> Any:
    """A KinematicSample of a detector 10–20 m behind the target that sees the samples
    ``hit`` (γβ from the draw's energy: the lifetimes matter)."""
    from gammastar.reach.acceptance import KinematicSample

    e = np.asarray(kin["E"], dtype=np.float64)
    gb = np.sqrt(np.maximum(e**2 - mass**2, 0.0)) / mass
    return KinematicSample(mass, gb, np.asarray(hit, float)[:, None],
                           np.array([10.0, 20.0]), 1.0)  # fmt: skip


def _rapidity(kin: dict[str, Any], mass: float) -> np.ndarray:
    qt, e = np.asarray(kin["qT"]), np.asarray(kin["E"])
    return np.arccosh(np.maximum(e / np.sqrt(qt**2 + mass**2), 1.0))


def _arrays(d: dict[str, Any]) -> dict[str, list[float]]:
    return {k: np.asarray(v, dtype=np.float64).tolist() for k, v in sorted(d.items())}


def compute() -> dict[str, Any]:
    """Every pinned number, computed by the package's code now."""
    import gammastar.yields.extrapolation.reference as ref_mod
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.yields.extrapolation.fitting import FitSettings, fit_extrapolation
    from gammastar.yields.extrapolation.nsig import nsig_lambda_theta, nsig_relative_error
    from gammastar.yields.extrapolation.nsig.arm import arm_in_fiducial, nsig_full_space_error
    from gammastar.yields.extrapolation.nsig.parts import nsig_error_parts
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    old = ref_mod.REFERENCE_SAMPLES
    ref_mod.REFERENCE_SAMPLES = REFERENCE  # a small reference sample: speed (the same each run)
    try:
        region = _ToyRegion()
        pairs = _pairs(region)
        settings = {
            "fixed_mean_external_width": FitSettings(
                y_mean=TRUE[1], y_mean_error=0.2, y_sigma=(1.2, 0.1), y_sigma_source="toy",
                beam_energy=400.0, seed=7),
            "free_mean_fitted_power": FitSettings(pt_power="fitted", beam_energy=400.0, seed=7),
            "auto_mean": FitSettings(
                y_mean=TRUE[1], y_mean_auto=True, y_mean_error=0.5, y_sigma=(1.2, 0.1),
                y_sigma_source="toy", compare=False, seed=7),
        }  # fmt: skip
        out: dict[str, Any] = {}
        for name, st in settings.items():
            ex = fit_extrapolation(*pairs, EDGES, region, settings=st)
            res: dict[str, Any] = {"record": ex.as_dict()}
            mass = 0.58  # between the two bins: both groups' parameters interpolated
            kin = ExtrapolatedSampler(ParametricSampler(*TRUE), ex, region).sample(
                mass, N_DRAW, seed=4
            )
            y = _rapidity(kin, mass)
            _, _, mu, s = (float(v) for v in ex.at(mass))
            forward = _decaying(kin, mass, y > mu + 2.5 * s)
            ctau = [0.1, 1.0, 10.0]

            def redraw(sampler: Any, n: int, seed: int, mass: float = mass, mu: float = mu,
                       s: float = s) -> Any:  # fmt: skip
                d = sampler(mass, 5 * n, seed)  # more than the nominal draw: resolved
                return _decaying(d, mass, _rapidity(d, mass) > mu + 2.5 * s)

            for log in (False, True):
                parts = nsig_error_parts(ex, region, mass, kin, forward, ctau, log=log,
                                         redraw=redraw, seed=3)  # fmt: skip
                res[f"parts_{'log' if log else 'linear'}"] = _arrays(parts)
            res["parts_all_seeing"] = _arrays(
                nsig_error_parts(
                    ex, region, mass, kin, _all_seeing(kin, mass, np.ones(y.size)), ctau
                )
            )
            res["relative"] = np.asarray(
                nsig_relative_error(ex, region, mass, kin, forward, ctau, redraw=redraw, seed=3)
            ).tolist()
            res["full_space"] = _arrays(
                nsig_full_space_error(ex, mass, kin, forward, ctau, redraw=redraw, seed=3)
            )
            t_nom = ex.temperature.tolist()
            fit = {
                "fiducial_fraction": (0.97 * ex.fiducial_fraction).tolist(),
                "temperature": [1.02 * t for t in t_nom],
                "y_mean": float(ex.y_mean[0]),
                "y_sigma": 1.05 * float(ex.y_sigma[0]),
            }
            moves = [{"sign": 1, "yield_shift": 0.03, "fit": fit,
                      "region": _ToyRegion(a_min=0.06, scale=1.03)},
                     {"sign": -1, "yield_shift": -0.02, "fit": fit,
                      "region": _ToyRegion(a_min=0.04, scale=0.98)}]  # fmt: skip
            res["lambda_theta"] = np.asarray(
                nsig_lambda_theta(ex, region, mass, kin, forward, ctau, moves)
            ).tolist()
            res["lambda_theta_yield_only"] = np.asarray(
                nsig_lambda_theta(ex, region, mass, kin, forward, ctau, moves, yield_only=True)
            ).tolist()
            res["lambda_theta_part"] = np.asarray(
                nsig_error_parts(ex, region, mass, kin, forward, ctau, lambda_theta=moves)[
                    "lambda_theta"
                ]
            ).tolist()
            res["arm_in_fiducial"] = arm_in_fiducial(ex, _ToyRegion(a_min=0.1)).as_dict()
            out[name] = res
        return json.loads(json.dumps(out, allow_nan=True))
    finally:
        ref_mod.REFERENCE_SAMPLES = old


def _compare(got: Any, want: Any, path: str, bad: list[str]) -> None:
    """Every leaf of ``want`` in ``got``: floats within RTOL/ATOL (NaN where NaN), the rest
    equal; the keys the same."""
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            bad.append(f"{path}: keys {sorted(got) if isinstance(got, dict) else got!r} "
                       f"!= {sorted(want)}")  # fmt: skip
            return
        for k in want:
            _compare(got[k], want[k], f"{path}.{k}", bad)
    elif isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            bad.append(f"{path}: {got!r} != {want!r}")
            return
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _compare(g, w, f"{path}[{i}]", bad)
    elif isinstance(want, float) or (isinstance(want, int) and isinstance(got, float)):
        g, w = float(got), float(want)
        if math.isnan(w) or math.isnan(g):
            if not (math.isnan(w) and math.isnan(g)):
                bad.append(f"{path}: {g!r} != {w!r}")
        elif not abs(g - w) <= ATOL + RTOL * abs(w):
            bad.append(f"{path}: {g!r} != {w!r}")
    elif got != want:
        bad.append(f"{path}: {got!r} != {want!r}")


def test_extrapolation_outputs_match_the_golden_numbers() -> None:
    """The ``yields.json`` ``extrapolation`` records and the N_sig error parts of the case
    (module docstring) equal the golden numbers within RTOL (the fit's stopping point carried
    through smooth outputs, above)."""
    want = json.loads(GOLDEN.read_text())
    bad: list[str] = []
    _compare(compute(), want, "golden", bad)
    assert not bad, f"{len(bad)} values differ from the golden ones: " + "; ".join(bad[:10])


def test_the_golden_comparison_can_fail() -> None:
    """The comparison itself: a value moved by 10 RTOL, a lost key, a NaN for a number and a
    changed string are each reported."""
    want = {"a": [1.0, float("nan")], "b": {"c": "x", "d": 2.0}}
    for got in ({"a": [1.0 + 10 * RTOL, float("nan")], "b": {"c": "x", "d": 2.0}},
                {"a": [1.0, float("nan")], "b": {"c": "x"}},
                {"a": [1.0, 0.5], "b": {"c": "x", "d": 2.0}},
                {"a": [1.0, float("nan")], "b": {"c": "y", "d": 2.0}}):  # fmt: skip
        bad: list[str] = []
        _compare(got, want, "t", bad)
        assert len(bad) == 1, (got, bad)
    ok: list[str] = []
    _compare({"a": [1.0 + 0.1 * RTOL, float("nan")], "b": {"c": "x", "d": 2.0}}, want, "t", ok)
    assert not ok


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit(f"usage: {sys.argv[0]} --regenerate  (rewrites {GOLDEN.name})")
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(compute(), indent=1, sort_keys=True, allow_nan=True) + "\n")
    print(f"wrote {GOLDEN}")
