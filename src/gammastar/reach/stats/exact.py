"""The exact hybrid CLs: the counts of every bin enumerated (:func:`_configurations`, at most
:data:`_MAX_CONFIGS` configurations) and the nuisances integrated by Gauss–Hermite quadrature
(:class:`_Exact`, for a normalised :class:`~gammastar.reach.stats.model.Model`; the test
statistic t = Σ n_i ln(1 + μ s_i/b_i), CLs = CLs+b / CLb with closed forms where the reference
outcome is "no event"; :func:`shared_log_rule` the outer rule with two-sided nuisances).
docs/explanation/reach.md "Which CLs calculation, and why".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, special, stats

from gammastar.errors import GammastarError
from gammastar.reach.stats.model import Model

_MAX_CONFIGS = 200_000


_Z = {"-2": -2.0, "-1": -1.0, "0": 0.0, "+1": 1.0, "+2": 2.0}
_Q = {b: float(stats.norm.cdf(z)) for b, z in _Z.items()}


class _Exact:
    """Exact hybrid CLs for a normalised :class:`~gammastar.reach.stats.model.Model` (see the
    module docstring)."""

    def __init__(self, model: Model, nodes: tuple[int, int, int] = (20, 5, 20)) -> None:
        self.model = model
        self.s = np.concatenate([c.signal for c in model.channels])
        self.b = np.concatenate([c.background for c in model.channels])
        self.ch = np.concatenate([np.full(c.signal.size, i) for i, c in enumerate(model.channels)])
        self.obs = (
            np.concatenate([np.asarray(c.observed) for c in model.channels]).astype(int)
            if model.has_observed
            else None
        )
        x, w = np.polynomial.hermite_e.hermegauss(nodes[0])
        w = w / w.sum()
        # the shared nuisances (n_pot and the named signal ones): independent log-normals of
        # the common signal scale multiply into one log-normal, integrated at the outer node;
        # with two-sided ones the scale's logarithm has a skewed law: its own Gauss rule
        s0 = model.signal_log_width
        self.k0 = np.exp(s0 * x) if s0 > 0 else np.ones(1)
        self.w0 = w if s0 > 0 else np.ones(1)
        if model.signal_log_sides:
            ln_k, self.w0 = shared_log_rule(s0, model.signal_log_sides, nodes[0])
            self.k0 = np.exp(ln_k)
        self.kc, self.wc, self.kb, self.wb = [], [], [], []
        for c in model.channels:
            # log-normal shapes 1 + u (as the normsys of eff_unc): ln(1 + r) stays finite for
            # the huge relative errors r of yields consistent with zero (r = 500: 6.2, where
            # r itself overflowed exp() at the quadrature nodes and gave NaN CLs)
            sig_s = math.sqrt(
                math.log1p(c.eff_unc) ** 2 + math.log1p(float(np.mean(c.mc_stat))) ** 2
            )
            xs, ws = np.polynomial.hermite_e.hermegauss(nodes[1])
            self.kc.append(np.exp(sig_s * xs) if sig_s > 0 else np.ones(1))
            self.wc.append(ws / ws.sum() if sig_s > 0 else np.ones(1))
            xb, wb = np.polynomial.hermite_e.hermegauss(nodes[2])
            lb = math.log(c.bkg_kappa)
            self.kb.append(np.exp(lb * xb) if lb > 0 else np.ones(1))
            self.wb.append(wb / wb.sum() if lb > 0 else np.ones(1))

        # count range: where the background-only distribution, marginalised over the same
        # quadrature nodes that the integrals use, leaves a tail below 1e-8 (per bin, and in
        # total over all bins); plus the observation
        def tail_k(lam_nodes: NDArray, w_nodes: NDArray) -> int:
            k = 0
            while k < 1000:
                if float(w_nodes @ stats.poisson.sf(k, np.maximum(lam_nodes, 1e-300))) < 1e-8:
                    return k
                k += 1
            return k

        kmax = np.array(
            [
                tail_k(self.b[i] * self.kb[self.ch[i]], self.wb[self.ch[i]])
                for i in range(self.b.size)
            ]
        )
        if self.obs is not None:
            kmax = np.maximum(kmax, self.obs)
        self.kmax = np.maximum(kmax, 1)
        # total: channels' background nuisances independent; bound with a common node index
        n_kb = max(k.size for k in self.kb)
        lam_tot = np.zeros(n_kb)
        w_tot = np.ones(n_kb) / n_kb
        for ci, c in enumerate(self.model.channels):
            kb = self.kb[ci] if self.kb[ci].size == n_kb else np.full(n_kb, self.kb[ci][0])
            w_tot = self.wb[ci] if self.kb[ci].size == n_kb else w_tot
            lam_tot = lam_tot + float(c.background.sum()) * kb
        k_tot = tail_k(lam_tot, w_tot) + 1
        if self.obs is not None:
            k_tot = max(k_tot, int(self.obs.sum()) + 1)
        self.k_total = k_tot
        self.n = _configurations(self.kmax, self.k_total)
        self.n_configs = 0 if self.n is None else int(self.n.shape[0])
        self.feasible = self.n is not None
        self._p0_cache: NDArray | None = None
        self._p_zero: float | None = None

    @property
    def grid(self) -> NDArray:
        """The count configurations (n_configs, n_bins) of a :attr:`feasible` construction."""
        if self.n is None:
            raise RuntimeError("exact CLs: no count grid (not feasible)")
        return self.n

    @property
    def p0(self) -> NDArray:
        """Background-only probability of each configuration of the count grid."""
        if self._p0_cache is None:
            self._p0_cache = self._prob(0.0, self.grid)
        return self._p0_cache

    # probability of each count configuration at signal strength mu
    def _prob(self, mu: float, n: NDArray) -> NDArray:
        joint = np.ones((self.k0.size, n.shape[0]))
        for ci, _ in enumerate(self.model.channels):
            sel = self.ch == ci
            s, b = self.s[sel], self.b[sel]
            if sel.sum() == 1:  # one bin: the distinct rows are 0..max
                col = n[:, sel][:, 0].astype(np.int64)
                rows, inv = np.arange(int(col.max()) + 1)[:, None], col
            else:
                rows, inv = np.unique(n[:, sel], axis=0, return_inverse=True)  # (nu, nbins)
                inv = inv.ravel()
            lam = b[None, None, None, :] * self.kb[ci][None, None, :, None]  # (1, 1, nkb, nbins)
            if mu > 0:  # (at mu = 0 no signal term: 0 × a huge node would be NaN)
                lam = (
                    mu
                    * s[None, None, None, :]
                    * self.k0[:, None, None, None]
                    * self.kc[ci][None, :, None, None]
                    + lam
                )  # (n0, nkc, nkb, nbins)
            lam = np.broadcast_to(lam, (self.k0.size, self.kc[ci].size, self.kb[ci].size, b.size))
            loglam = np.log(np.maximum(lam, 1e-300))
            # log P(rows | lam) summed over bins: (nu, n0, nkc, nkb)
            logp = np.einsum("ub,aijb->uaij", rows.astype(float), loglam) - lam.sum(-1)[None]
            logp -= special.gammaln(rows + 1.0).sum(-1)[:, None, None, None]
            p = np.einsum("uaij,i,j->au", np.exp(logp), self.wc[ci], self.wb[ci])
            joint *= p[:, inv]
        return self.w0 @ joint

    def _w(self, mu: float) -> NDArray:
        """ln(1 + μ s_i/b_i) per bin, finite for b_i = 0 (floored at 1e-300) and any μ.

        For b_i = 0 the ratio overflows at μ s_i > 1.8e8 (1.8e308 × 1e-300): then ln(μ s_i) − ln b_i
        (the same to double precision), never inf (0 counts × inf was NaN).
        """
        b = np.maximum(self.b, 1e-300)
        with np.errstate(over="ignore"):
            r = mu * self.s / b
        big = ~np.isfinite(r)
        if np.any(big):
            r = np.where(big, 0.0, r)
            return np.where(big, np.log(mu * np.where(big, self.s, 1.0)) - np.log(b), np.log1p(r))
        return np.log1p(r)

    def _t(self, mu: float, n: NDArray) -> NDArray:
        return n @ self._w(mu)

    def zero_class(self, band: str | None) -> bool:
        """Whether the band's reference outcome is "no event anywhere" (t = 0) for every μ.

        t = 0 only for the all-zero configuration (all s_i > 0), whose background-only
        probability does not depend on μ: a quantile below it, or an observation of zero
        counts, is that configuration at every μ, so such bands share one limit.
        """
        if band is None:
            return self.obs is not None and not np.any(self.obs[self.s > 0])
        if np.any(self.s <= 0):
            return False
        if self._p_zero is None:
            self._p_zero = float(self.p0[~self.grid.any(axis=1)].sum()) / float(self.p0.sum())
        return _Q[band] <= self._p_zero * (1 - 1e-12)

    def _t_ref(self, mu: float, band: str | None) -> float:
        if band is None:
            if self.obs is None:
                raise GammastarError("exact CLs: the observed limit needs observed counts")
            return float(self._t(mu, self.obs[None, :])[0])
        t = self._t(mu, self.grid)
        order = np.argsort(t, kind="stable")
        cdf = np.cumsum(self.p0[order])
        q = _Q[band]
        i = int(np.searchsorted(cdf, q * cdf[-1] * (1 - 1e-12)))
        return float(t[order][min(i, t.size - 1)])

    def _cls_zero(self, mu: float) -> float:
        """CLs when the reference outcome is "no event": P_μ(0)/P_0(0) in closed form.

        The background factors cancel (independent nuisances), leaving
        Σ_a w_a Π_c Σ_i w_i exp(−μ s_c k0_a kc_i), s_c the channel's total signal.
        """
        out = np.ones(self.k0.size)
        for ci, c in enumerate(self.model.channels):
            s_c = float(c.signal.sum())
            e = np.exp(-mu * s_c * self.k0[:, None] * self.kc[ci][None, :])  # (n0, nkc)
            out *= e @ self.wc[ci]
        return float(self.w0 @ out)

    def cls(self, mu: float, band: str | None) -> float:
        if mu <= 0:
            return 1.0
        if self.zero_class(band):
            return self._cls_zero(mu)
        t_ref = self._t_ref(mu, band)
        t = self._t(mu, self.grid)
        tol = 1e-9 * max(1.0, abs(t_ref))
        sel = t <= t_ref + tol
        clb = float(self.p0[sel].sum())
        clsb = self._clsb(mu, t_ref + tol)
        if not (math.isfinite(clb) and math.isfinite(clsb)):
            raise GammastarError(
                f"exact CLs: non-finite probabilities at n_signal = {mu:g} (CLb {clb}, "
                f"CLs+b {clsb}); use method 'toys'"
            )
        return clsb / clb if clb > 0 else 1.0

    def _clsb(self, mu: float, t_max: float) -> float:
        # configurations with t <= t_max; each count bounded by t_max / w_i
        w = self._w(mu)
        lim = np.where(w > 0, np.floor(t_max / np.where(w > 0, w, 1.0) + 1e-12), self.kmax)
        lim = np.minimum(lim, 400).astype(int)
        w_min = float(w[w > 0].min()) if np.any(w > 0) else 0.0
        total = int(min(np.floor(t_max / w_min + 1e-12), 400)) if w_min > 0 else int(lim.sum())
        n = _configurations(lim, total)
        if n is None:  # fall back to the background-range grid (complete for the usual cases)
            n = self.grid
        n = n[(n @ w) <= t_max]
        return float(self._prob(mu, n).sum()) if n.size else 0.0

    def limit(self, alpha: float, band: str | None, hint: float | None = None) -> float:
        def f(lmu: float) -> float:
            return math.log(max(self.cls(math.exp(lmu), band), 1e-300)) - math.log(alpha)

        if hint is not None and np.isfinite(hint) and hint > 0:
            # warm start: a narrow bracket around a nearby solution (a neighbouring band/mass)
            lo, hi = math.log(hint) - 0.05, math.log(hint) + 0.05
            if f(lo) > 0 > f(hi):
                return float(math.exp(optimize.brentq(f, lo, hi, xtol=1e-6, rtol=1e-7)))
        lo, hi = math.log(1e-3), math.log(10.0)
        if f(lo) < 0:
            return float(math.exp(lo))
        for _ in range(40):
            if f(hi) < 0:
                break
            lo, hi = hi, hi + math.log(4.0)
        else:
            return float("nan")
        return float(math.exp(optimize.brentq(f, lo, hi, xtol=1e-6, rtol=1e-7)))


_HALF_Z, _HALF_W = np.polynomial.legendre.leggauss(128)
_HALF_Z = 7.0 * (_HALF_Z + 1.0)  # [0, 14]: the half-normal's moments to degree 40 lose < 1e-20
_HALF_W = _HALF_W * np.exp(-0.5 * _HALF_Z**2)
_HALF_W = _HALF_W / _HALF_W.sum()


def shared_log_rule(
    width: float, sides: Sequence[tuple[float, float]], n: int
) -> tuple[NDArray, NDArray]:
    r"""An ``n``-point Gauss rule (nodes, weights summing to 1) for the logarithm of the shared
    signal scale, L = w Z₀ + Σ_j g_j(Z_j), Z independent standard normals, ``width`` = w (the
    symmetric nuisances), each ``sides`` (w₊, w₋) a two-sided log-normal nuisance,
    g(z) = w₊ z for z > 0 and w₋ z for z < 0 (pyhf's ``normsys`` ``code1``, hi^α and lo^{−α}:
    a normal on each half with its own width). Each g_j's own n-point Gauss rule comes from
    its law discretised by a 128-point Gauss–Legendre rule on each half-line (|z| ≤ 14), by
    Lanczos; the product with the n-point Gauss–Hermite rule of w Z₀ (or with the previous
    g's) holds L's moments to degree 2n − 1, and Lanczos on that product (n² points) gives
    L's own Gauss rule: exact for polynomials in L to degree 2n − 1, as Gauss–Hermite is for
    a symmetric L, at one outer axis of n nodes (the likelihood's cost unchanged). Where
    w₊ = w₋ L is normal and the rule Gauss–Hermite's up to rounding.

    Example:
        >>> x, p = shared_log_rule(0.0, [(0.5, 0.5)], 5)
        >>> h, q = np.polynomial.hermite_e.hermegauss(5)
        >>> bool(np.allclose(x, 0.5 * h, atol=1e-9) and np.allclose(p, q / q.sum(), atol=1e-9))
        True

    References:
        G. H. Golub, J. H. Welsch, Math. Comp. 23 (1969) 221 (Gauss rules from the Jacobi
        matrix); W. Gautschi, "Orthogonal Polynomials: Computation and Approximation" (Oxford,
        2004) §2.2.3 (discretisation and Lanczos).
    """
    xs, ws = np.polynomial.hermite_e.hermegauss(n)
    t, p = (width * xs, ws / ws.sum()) if width > 0 else (np.zeros(1), np.ones(1))
    for w_up, w_down in sides:
        g, pg = _gauss_rule(np.concatenate([w_up * _HALF_Z, -w_down * _HALF_Z]),
                            np.concatenate([_HALF_W, _HALF_W]) / 2.0, n)  # fmt: skip
        t, p = _gauss_rule((t[:, None] + g[None, :]).ravel(), (p[:, None] * pg[None, :]).ravel(), n)
    return t, p


def _gauss_rule(t: NDArray, p: NDArray, n: int) -> tuple[NDArray, NDArray]:
    """The ``n``-point Gauss rule of the discrete measure Σ pᵢ δ(tᵢ): the Jacobi matrix by
    Lanczos with full reorthogonalisation, its eigenvalues the nodes and the squared first
    components of its eigenvectors the weights (Golub–Welsch)."""
    from scipy.linalg import eigh_tridiagonal

    q = np.zeros((n, t.size))
    a, b = np.zeros(n), np.zeros(max(n - 1, 0))
    q[0] = np.sqrt(p / p.sum())
    for j in range(n):
        v = t * q[j]
        a[j] = q[j] @ v
        v = v - a[j] * q[j] - (b[j - 1] * q[j - 1] if j else 0.0)
        for _ in range(2):  # reorthogonalised twice: "twice is enough" (Parlett)
            v = v - q[: j + 1].T @ (q[: j + 1] @ v)
        if j < n - 1:
            b[j] = float(np.linalg.norm(v))
            q[j + 1] = v / b[j]
    nodes, vec = eigh_tridiagonal(a, b)
    return nodes, vec[0] ** 2


def _configurations(kmax: NDArray, k_total: int) -> NDArray | None:
    """All count vectors n with 0 ≤ n_i ≤ kmax_i and Σ n_i ≤ k_total (None if too many)."""
    kmax = np.asarray(kmax, dtype=int)
    nb = kmax.size
    if float(np.prod(kmax.astype(float) + 1)) <= _MAX_CONFIGS:
        grids = np.meshgrid(*[np.arange(k + 1) for k in kmax], indexing="ij")
        n = np.stack([g.ravel() for g in grids], axis=1)
        return n[n.sum(axis=1) <= k_total]
    k_total = int(min(k_total, kmax.sum()))
    if math.comb(k_total + nb, nb) > _MAX_CONFIGS:
        return None
    import itertools

    rows = [np.zeros(nb, dtype=int)]
    for k in range(1, k_total + 1):
        for combo in itertools.combinations_with_replacement(range(nb), k):
            rows.append(np.bincount(combo, minlength=nb))
    n = np.array(rows)
    return n[np.all(n <= kmax, axis=1)]
