"""k-nearest-neighbour estimate of the Kullback–Leibler divergence between two samples.

The estimator of Wang, Kulkarni & Verdú (docs/explanation/physics.md §6), used by the paper (Sec. III C,
App. A) to validate the normalizing flow against data with k = 2; with per-point weights
(unfolded pairs, 1/(A·ε)) each k-NN density uses the weight inside the neighbour ball instead of
the count, which reduces to the unweighted estimator for equal weights.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from gammastar.errors import GammastarError


def _as_2d(a: ArrayLike, name: str) -> NDArray[np.float64]:
    x = np.asarray(a, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise GammastarError(f"knn_kl: {name} must be an (n, d) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise GammastarError(f"knn_kl: {name} contains NaN or infinite values")
    return x


class DuplicatePointsError(GammastarError, ValueError):
    """A sample holds exact duplicates (or p and q share points): the k-NN estimator assumes
    continuous distributions, where ties have probability zero."""


def _count_duplicates(x: NDArray[np.float64]) -> int:
    """Number of rows of ``x`` that repeat an earlier row exactly."""
    return int(len(x) - len(np.unique(x, axis=0)))


def _as_weights(w: ArrayLike | None, n: int, name: str) -> NDArray[np.float64] | None:
    if w is None:
        return None
    a = np.asarray(w, dtype=np.float64).reshape(-1)
    if a.shape != (n,):
        raise GammastarError(f"knn_kl: {name} has {a.size} weights for {n} points")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise GammastarError(
            f"knn_kl: {name} must be finite and positive (k-NN densities from weights)"
        )
    return a


def knn_kl(
    p: ArrayLike,
    q: ArrayLike,
    k: int = 2,
    *,
    p_weights: ArrayLike | None = None,
    q_weights: ArrayLike | None = None,
) -> float:
    r"""k-NN estimate of D(P‖Q) from samples X ~ P (n points) and Y ~ Q (m points).

    .. math:: \hat D(P\|Q) = \frac{d}{n}\sum_{i=1}^n \ln\frac{\nu_k(i)}{\rho_k(i)}
              + \ln\frac{m}{n-1},

    with ρ_k(i) the Euclidean distance from X_i to its k-th nearest neighbour among the other
    X and ν_k(i) that to its k-th nearest neighbour among the Y. Exact duplicates (zero
    The estimator assumes continuous P and Q (ties have probability zero): exact duplicates
    within p or within q, and points present in both samples, are refused. (Skipping the zero
    distances would use the k-th *distinct* neighbour while keeping the raw-count term
    ln(m/(n−1)), a bias: P = Q = N(0, I₂) with every p point doubled gives ≈ 0.3, not 0.)

    Weighted samples (P and Q the weighted densities, weights u of p and v of q): the k-NN
    densities use the weight in the neighbour ball, p̂(Xᵢ) ∝ Σ_{j ∈ kNN_p(i)} u_j/(U − uᵢ) ρ_k⁻ᵈ
    and q̂(Xᵢ) ∝ Σ_{j ∈ kNN_q(i)} v_j/V ν_k⁻ᵈ, and the average over i is weighted by uᵢ:

    .. math:: \hat D_w = \frac{1}{U}\sum_i u_i\Big[d\ln\frac{\nu_k(i)}{\rho_k(i)}
              + \ln\frac{\sum_{kNN_p(i)} u_j/(U-u_i)}{\sum_{kNN_q(i)} v_j/V}\Big].

    For equal weights the bracket's second term is ln(m/(n−1)): the unweighted estimator.
    Every point is used (no unweighting by accept–reject); the weights must be positive.
    For weights that vary smoothly with x (an acceptance correction) the neighbours' weights
    are nearly equal and the estimator keeps the unweighted one's small-sample behaviour;
    its variance follows Kish's effective sample size rather than the number of points.

    Arguments:
        p: samples of P, shape (n, d) (or (n,) for d = 1).
        q: samples of Q, shape (m, d).
        k: number of neighbours (the paper uses k = 2).
        p_weights: positive weights of p (``None``: equal).
        q_weights: positive weights of q (``None``: equal).

    Returns:
        The estimate (it can be slightly negative from statistical fluctuations).

    Raises:
        GammastarError: mismatched dimensions, non-finite values, too few points.
        DuplicatePointsError: (a GammastarError and ValueError) exact duplicate points within
            p or within q, or points that occur in both.

    References:
        Q. Wang, S. R. Kulkarni, S. Verdú, IEEE Trans. Inf. Theory 55 (2009) 2392,
        Eq. (5); docs/explanation/physics.md §6; Allison & Blinov App. A (k = 2).

    Example:
        >>> rng = np.random.default_rng(1)
        >>> x, y = rng.normal(0, 1, (4000, 1)), rng.normal(1, 1, (4000, 1))
        >>> abs(knn_kl(x, y) - 0.5) < 0.1   # analytic D = (Δμ)²/2 = 0.5
        True
    """
    if int(k) != k or k < 1:
        raise GammastarError(f"knn_kl: k must be a positive integer, got {k!r}")
    k = int(k)
    x = _as_2d(p, "p")
    y = _as_2d(q, "q")
    n, d = x.shape
    m = y.shape[0]
    if y.shape[1] != d:
        raise GammastarError(f"knn_kl: p has {d} dimensions but q has {y.shape[1]}")
    if n <= k or m < k:
        raise GammastarError(f"knn_kl: need more than k={k} points in p and at least k in q")
    for name, z in (("p", x), ("q", y)):
        dup = _count_duplicates(z)
        if dup:
            raise DuplicatePointsError(
                f"knn_kl: sample {name} has {dup} exact duplicate point(s) among {len(z)}; "
                "the estimator needs continuous data (remove or jitter the duplicates)"
            )
    u = _as_weights(p_weights, n, "p_weights")
    v = _as_weights(q_weights, m, "q_weights")
    rho_d, rho_i = cKDTree(x).query(x, k=k + 1)  # column 0 is the point itself
    rho = rho_d[:, k]
    nu_d, nu_i = cKDTree(y).query(x, k=k)
    nu_all = nu_d.reshape(n, k)
    shared = int(np.count_nonzero(nu_all[:, 0] == 0))
    if shared:
        raise DuplicatePointsError(
            f"knn_kl: {shared} point(s) of p also occur in q; the estimator needs "
            "continuous data (ties have probability zero)"
        )
    nu = nu_all[:, k - 1]
    if u is None and v is None:
        return float(d * np.mean(np.log(nu / rho)) + np.log(m / (n - 1)))
    uu = np.ones(n) if u is None else u
    vv = np.ones(m) if v is None else v
    U, V = uu.sum(), vv.sum()
    mass_p = uu[rho_i[:, 1:]].sum(1) / (U - uu)
    mass_q = vv[np.asarray(nu_i).reshape(n, k)].sum(1) / V
    terms = d * np.log(nu / rho) + np.log(mass_p / mass_q)
    return float(np.sum(uu * terms) / U)
