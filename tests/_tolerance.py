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
