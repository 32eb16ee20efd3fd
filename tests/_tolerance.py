"""Tolerances for comparing floating-point results that went through different batch shapes,
reduction orders, threads or CPUs: never bit for bit.

Two evaluations of the same formula that differ only in the order of their roundings (another
summation order, a fused multiply–add or not, another SIMD kernel: what a different batch shape,
thread count or CPU changes) differ by at most ``n · u · Σ|terms|`` each from the exact value,
with ``u = eps/2`` the unit roundoff and ``n`` the length of the longest chain of roundings
(Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1 and §4.2: γₙ = nu/(1−nu)
for a sum or a dot product of length n); so from each other by at most ``n · eps · scale``.
"""

from __future__ import annotations

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-7
EPS64 = float(np.finfo(np.float64).eps)  # 2.22e-16

# Longest chain of float32 roundings through one evaluation of the package's flow (3 steps,
# MADE 16 × 16, 6 bins; tests/_flows.py): per step the hyper-network (3 layers, each a dot
# product of ≤ 16 + 1 terms and an activation: ≈ 3 × 18 = 54), the knots (softmax and cumulative
# sums over 6 bins: ≈ 2 × 6 + 6 = 18), the rational-quadratic spline and its log-derivative
# (≈ 25), the LU linear step (2 × 2 dot products: ≈ 4): ≈ 100 per step, ≈ 300 for 3 steps.
FLOW_OPS = 300


def reorder_tol(n_ops: int, scale: float, eps: float = EPS32) -> float:
    """Largest difference between two evaluations of a result of magnitude ``scale`` (Σ|terms|)
    computed through ``n_ops`` roundings in different orders: ``n_ops · eps · scale``."""
    return n_ops * eps * scale


# A yes/no decision computed twice (two implementations, or one on another batch) can differ
# only where a rounding tips it: where the compared quantity lies within its rounding error of
# the cut. The decisions' inputs go through at most ~10³ float64 roundings (u = 1.1e-16), a
# relative ~1e-13; moving one input by DECISION_REL = 1e-9 relative moves a well-conditioned
# quantity 10⁴ times further, so a point that a rounding could tip flips under that move.
DECISION_REL = 1e-9


def tipping_points(decide, inputs, rel: float = DECISION_REL) -> np.ndarray:
    """The points whose decision ``decide(*inputs)`` changes when one row of one input (a 1-D
    input as a whole, each row of a 2-D one: px, py, … separately) moves by ±``rel`` relative."""
    base = np.asarray(decide(*inputs), dtype=bool)
    near = np.zeros_like(base)
    for k, a in enumerate(inputs):
        a = np.asarray(a, dtype=float)
        for row in [...] if a.ndim == 1 else range(a.shape[0]):
            for step in (-rel, rel):
                moved = a.copy()
                moved[row] *= 1.0 + step
                args = [*inputs[:k], moved, *inputs[k + 1 :]]
                near |= np.asarray(decide(*args), dtype=bool) != base
    return near


def assert_same_decisions(got, want, decide, inputs, rel: float = DECISION_REL) -> None:
    """``got`` equals ``want`` except at points where ``decide`` (the computation behind ``got``,
    on ``inputs``) is tipped by a move of ``rel`` relative (:func:`tipping_points`): there two
    computations of the same decision may round to different sides of the cut."""
    got, want = np.asarray(got, dtype=bool), np.asarray(want, dtype=bool)
    assert got.shape == want.shape, (got.shape, want.shape)
    differ = got != want
    if not differ.any():
        return
    far = differ & ~tipping_points(decide, inputs, rel)
    assert not far.any(), (
        f"{int(far.sum())} of {got.size} decisions differ away from any cut "
        f"(first at {np.flatnonzero(far)[:5].tolist()})"
    )


def count_range(decide, inputs, rel: float = DECISION_REL) -> tuple[int, int]:
    """The counts of yes-decisions another computation of ``decide(*inputs)`` may give: from
    the sure ones (yes and not tipped by a move of ``rel``, :func:`tipping_points`) to those
    plus every tipped one. A count compared across two implementations or CPUs lies in it."""
    base = np.asarray(decide(*inputs), dtype=bool)
    near = tipping_points(decide, inputs, rel)
    return int(np.sum(base & ~near)), int(np.sum(base | near))
