"""Compiled exact sampler of the kinematics flow (numba): latent z → standardised features.

Offers :class:`CompiledSampler` (zuko's exact inverse of a gammastar flow, per block of points
in one compiled kernel, threads without a dependence of the result on them) and
:class:`UnsupportedFlow` for a flow structure it does not handle. zuko's ``transform.inv`` is
the reference it is tested against; the design (exact shortcuts from the MADE masks, numerics,
vectorisation, threads, compilation cache) is in docs/explanation/flow.md "Compiled kernels".
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from gammastar.core.threads import thread_map
from gammastar.flow.architecture import lu_matrix, made_layers, split_transforms


def _jit(**kw):
    """``numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, **kw)``; without
    caching where numba finds no writable cache location."""

    def deco(fn):
        opts = {"error_model": "numpy", "fastmath": {"contract"}, **kw}
        try:
            return njit(cache=True, **opts)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return njit(cache=False, **opts)(fn)

    return deco


_B = 256  # points per block (a compile-time constant: fixed strides let the loops vectorise)

_F = np.float32
_ZERO = _F(0.0)
_ONE = _F(1.0)
_TWO = _F(2.0)
_FOUR = _F(4.0)
_HALF = _F(0.5)
# Cephes expf: x = n ln2 + r, |r| ≤ ln2/2; exp(r) by a degree-7 minimax polynomial
_LOG2E = _F(1.44269504088896341)
_C1 = _F(0.693359375)
_C2 = _F(-2.12194440e-4)
_P0 = _F(1.9875691500e-4)
_P1 = _F(1.3981999507e-3)
_P2 = _F(8.3334519073e-3)
_P3 = _F(4.1665795894e-2)
_P4 = _F(1.6666665459e-1)
_P5 = _F(5.0000001201e-1)


@intrinsic
def _bits_to_f32(typingctx, i):
    """Reinterpret an int32 as a float32 (vectorisable)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@_jit(inline="always")
def _exp32(x):
    """expf for |x| < 80 (Cephes); ≤ 1 ulp; vectorises (no libm call)."""
    n = np.floor(x * _LOG2E + _HALF)
    r = x - n * _C1
    r = r - n * _C2
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    p = p * (r * r) + r + _ONE
    return p * _bits_to_f32(np.int32((np.int32(n) + 127) << 23))


@_jit()
def _matmul(w, bias, hin, hout, init, relu):
    """hout[u] = act((bias[u] if init else hout[u]) + Σ_v w[u, v] hin[v]) on rows of _B points.

    Four input rows per pass over the output row (sums in the order v = 0, 1, 2, …).
    """
    nv = w.shape[1]
    for u in range(w.shape[0]):
        o = u * _B
        if init:
            bu = bias[u]
            for p in range(_B):
                hout[o + p] = bu
        v = 0
        while v + 4 <= nv:
            w0 = w[u, v]
            w1 = w[u, v + 1]
            w2 = w[u, v + 2]
            w3 = w[u, v + 3]
            i = v * _B
            for p in range(_B):
                acc = hout[o + p] + w0 * hin[i + p]
                acc = acc + w1 * hin[i + _B + p]
                acc = acc + w2 * hin[i + 2 * _B + p]
                hout[o + p] = acc + w3 * hin[i + 3 * _B + p]
            v += 4
        while v < nv:
            wv = w[u, v]
            i = v * _B
            for p in range(_B):
                hout[o + p] += wv * hin[i + p]
            v += 1
        if relu:
            for p in range(_B):
                hout[o + p] = max(hout[o + p], _ZERO)


@_jit(inline="always")
def _dense(par, q, rows, cols, hin, hout, relu):
    """hout = W hin + b (ReLU'd when ``relu``), W (rows × cols) then b (rows) read from
    ``par[q:]``; returns the offset after them."""
    w = par[q : q + rows * cols].reshape((rows, cols))
    q += rows * cols
    _matmul(w, par[q : q + rows], hin, hout, True, relu)
    return q + rows


@_jit(inline="always")
def _rank_one_relu(par, q, rows, x, ox, hout):
    """hout[u] = relu(w_u x[ox : ox + _B] + k_u), u < rows: a first layer with one input row,
    w then k read from ``par[q:]``; returns the offset after them."""
    for u in range(rows):
        wu = par[q + u]
        ku = par[q + rows + u]
        for p in range(_B):
            hout[u * _B + p] = max(wu * x[ox + p] + ku, _ZERO)
    return q + 2 * rows


@_jit(inline="always")
def _segment(yp, x0, x1, y0, y1, d0, d1, inside):
    """Inverse rational-quadratic segment (zuko's formulae); identity where not inside."""
    dy = y1 - y0
    dx = x1 - x0
    s = dy / dx
    yr = yp - y0 if inside else _ZERO
    t = d0 + d1 - _TWO * s
    a = dy * (s - d0) + yr * t
    b = dy * d0 - yr * t
    c = -s * yr
    disc = max(b * b - _FOUR * a * c, _ZERO)
    z = _TWO * c / (-b - math.sqrt(disc))
    return x0 + z * dx if inside else yp


@_jit()
def _inverse_table(y, oy, tab, nb):
    """Inverse spline of the row y[oy : oy + m] in place; knots: one constant (3, K+1) table."""
    bins = len(nb)
    for p in range(_B):
        yp = y[oy + p]
        cnt = 0
        for j in range(bins + 1):
            cnt += tab[1, j] < yp
        k = cnt - 1
        inside = (k >= 0) and (k < bins)
        k = min(max(k, 0), bins - 1)
        x0 = tab[0, 0]
        x1 = tab[0, 1]
        y0 = tab[1, 0]
        y1 = tab[1, 1]
        d0 = tab[2, 0]
        d1 = tab[2, 1]
        for j in range(1, bins):  # selects (all loads unconditional: the loop vectorises)
            sel = k == j
            xa = tab[0, j]
            xb = tab[0, j + 1]
            ya = tab[1, j]
            yb = tab[1, j + 1]
            da = tab[2, j]
            db = tab[2, j + 1]
            x0 = xa if sel else x0
            x1 = xb if sel else x1
            y0 = ya if sel else y0
            y1 = yb if sel else y1
            d0 = da if sel else d0
            d1 = db if sel else d1
        y[oy + p] = _segment(yp, x0, x1, y0, y1, d0, d1, inside)


@_jit()
def _cumexp(phi, o, cs, nb, lsw):
    """cs[j] = Σ_{i ≤ j} exp(u_i / (1 + lsw |u_i|)), u_i = phi[o + i] (rows); zuko's bounding."""
    bins = len(nb)
    for p in range(_B):
        u = phi[o * _B + p]
        cs[p] = _exp32(u / (_ONE + lsw * abs(u)))
    for j in range(1, bins):
        r = (o + j) * _B
        for p in range(_B):
            u = phi[r + p]
            cs[j * _B + p] = cs[(j - 1) * _B + p] + _exp32(u / (_ONE + lsw * abs(u)))


@_jit()
def _inverse_phi(y, oy, phi, nb, cw, ch, lsw, lsd, bound):
    """Inverse spline of the row y[oy : oy + m] in place; raw parameters phi (3K − 1 rows).

    Knots as zuko's ``MonotonicRQSTransform`` (cumulative exp of the bounded widths
    and heights, scaled to [−B, B]); bin and formulae as zuko. ``cw``/``ch``: scratch rows.
    """
    bins = len(nb)
    _cumexp(phi, 0, cw, nb, lsw)
    _cumexp(phi, bins, ch, nb, lsw)
    two_b = _TWO * bound
    last = (bins - 1) * _B
    fbins = _F(bins)
    for p in range(_B):
        yp = y[oy + p]
        sx = two_b / cw[last + p]
        sy = two_b / ch[last + p]
        # bin k = Σ_j [y_j < y] − 1 (counted in float32: the loop stays in float vectors)
        cnt = _ONE if -bound < yp else _ZERO
        for j in range(bins):
            cnt += _ONE if ch[j * _B + p] * sy - bound < yp else _ZERO
        inside = (cnt >= _ONE) and (cnt <= fbins)
        k = min(max(cnt - _ONE, _ZERO), fbins - _ONE)
        # knots at the ends of bin k (knot 0 is −B; knot j + 1 is row j), raw derivative
        # parameters there (d_0 = d_K = 1)
        x0 = -bound
        x1 = cw[p] * sx - bound
        y0 = -bound
        y1 = ch[p] * sy - bound
        r0 = _ZERO
        r1 = phi[2 * bins * _B + p]
        for j in range(1, bins):  # selects (all loads unconditional: the loop vectorises)
            sel = k == _F(j)
            xa = cw[(j - 1) * _B + p] * sx - bound
            xb = cw[j * _B + p] * sx - bound
            ya = ch[(j - 1) * _B + p] * sy - bound
            yb = ch[j * _B + p] * sy - bound
            ra = phi[(2 * bins + j - 1) * _B + p]
            rb = phi[(2 * bins + min(j, bins - 2)) * _B + p]
            x0 = xa if sel else x0
            x1 = xb if sel else x1
            y0 = ya if sel else y0
            y1 = yb if sel else y1
            r0 = ra if sel else r0
            r1 = rb if sel else r1
        e0 = _exp32(r0 / (_ONE + lsd * abs(r0)))
        e1 = _exp32(r1 / (_ONE + lsd * abs(r1)))
        d0 = _ONE if k == _ZERO else e0
        d1 = _ONE if k == fbins - _ONE else e1
        y[oy + p] = _segment(yp, x0, x1, y0, y1, d0, d1, inside)


@_jit(nogil=True)
def _sample_blocks(z, ctx, out, blk0, blk1, ints, par, nb, lsw, lsd, bound):
    """out[i] = flow⁻¹(z[i]) for the points of blocks [blk0, blk1) of _B points.

    ``ints``/``par``: the packed flow (see :meth:`CompiledSampler._pack`); ``ctx`` (n,) the
    standardised context per point, or unused (fixed mass: its contribution is in ``par``).
    ``nb``: a tuple of K zeros: its type carries the number of bins K, so that K is a constant
    of the compiled code (the loops over bins unroll).
    """
    bins = len(nb)
    n = z.shape[0]
    nsteps = ints[0]
    fixed = ints[1] == 1
    width = ints[2]  # most units in one group of one layer
    nlmax = ints[3]  # most hidden layers of a step
    nphi = 3 * bins - 1
    # scratch: rows of _B points (row r of an array at [r * _B, (r + 1) * _B))
    nc = ctx.shape[0]
    y = np.empty(2 * _B, dtype=np.float32)
    cp = np.empty(_B, dtype=np.float32)
    g = np.empty(nlmax * width * _B, dtype=np.float32)  # context units, every layer
    h0 = np.empty(width * _B, dtype=np.float32)  # feature units (ping-pong)
    h1 = np.empty(width * _B, dtype=np.float32)
    phi = np.empty(nphi * _B, dtype=np.float32)
    cw = np.empty(bins * _B, dtype=np.float32)
    ch = np.empty(bins * _B, dtype=np.float32)
    lay = width * _B
    for blk in range(blk0, blk1):
        s0 = blk * _B
        m = min(_B, n - s0)
        # every block is computed in full (a short last block padded with zeros), so that
        # every point goes through the same vectorised code
        for p in range(m):
            y[p] = z[s0 + p, 0]
            y[_B + p] = z[s0 + p, 1]
            cp[p] = ctx[min(s0 + p, nc - 1)]
        for p in range(m, _B):
            y[p] = _ZERO
            y[_B + p] = _ZERO
            cp[p] = _ZERO
        pos = 4
        q = 0
        for _ in range(nsteps):
            kind = ints[pos]
            if kind == 0:  # LU: y ← M⁻¹ y
                m00, m01, m10, m11 = par[q], par[q + 1], par[q + 2], par[q + 3]
                q += 4
                for p in range(_B):
                    u = y[p]
                    v = y[_B + p]
                    y[p] = m00 * u + m01 * v
                    y[_B + p] = m10 * u + m11 * v
                pos += 1
                continue
            a = ints[pos + 1]
            nl = ints[pos + 3]
            sz = pos + 4  # n0_1..n0_L, n1_1..n1_L
            oa = a * _B
            ob = (1 - a) * _B
            if fixed:
                tab = par[q : q + 3 * (bins + 1)].reshape((3, bins + 1))
                q += 3 * (bins + 1)
                _inverse_table(y, oa, tab, nb)
                # feature units: layer 1 = relu(w x_a + k), then relu(W h + k), out = W h + k
                q = _rank_one_relu(par, q, ints[sz + nl], y, oa, h0)
                hc, hn = h0, h1
                for li in range(1, nl):
                    q = _dense(par, q, ints[sz + nl + li], ints[sz + nl + li - 1], hc, hn, True)
                    hc, hn = hn, hc
                q = _dense(par, q, nphi, ints[sz + 2 * nl - 1], hc, phi, False)
            else:
                # context units g[l]: layer 1 = relu(w c + b), then relu(W g + b)
                q = _rank_one_relu(par, q, ints[sz], cp, 0, g)
                for li in range(1, nl):
                    gin, gout = g[(li - 1) * lay :], g[li * lay :]
                    q = _dense(par, q, ints[sz + li], ints[sz + li - 1], gin, gout, True)
                n0l = ints[sz + nl - 1]
                gl = g[(nl - 1) * lay :]
                q = _dense(par, q, nphi, n0l, gl, phi, False)
                _inverse_phi(y, oa, phi, nb, cw, ch, lsw, lsd, bound)
                # feature units: layer 1 = relu(w_x x_a + w_c c + b); then relu(W_g g + W_h h + b)
                n1 = ints[sz + nl]
                wx = par[q : q + n1]
                wc = par[q + n1 : q + 2 * n1]
                b1 = par[q + 2 * n1 : q + 3 * n1]
                q += 3 * n1
                for u in range(n1):
                    wxu = wx[u]
                    wcu = wc[u]
                    bu = b1[u]
                    for p in range(_B):
                        h0[u * _B + p] = max(wxu * y[oa + p] + (wcu * cp[p] + bu), _ZERO)
                hc, hn = h0, h1
                for li in range(1, nl):
                    nprev0 = ints[sz + li - 1]
                    nprev1 = ints[sz + nl + li - 1]
                    nn = ints[sz + nl + li]
                    wg = par[q : q + nn * nprev0].reshape((nn, nprev0))
                    q += nn * nprev0
                    wh = par[q : q + nn * nprev1].reshape((nn, nprev1))
                    q += nn * nprev1
                    bl = par[q : q + nn]
                    q += nn
                    _matmul(wg, bl, g[(li - 1) * lay :], hn, True, False)
                    _matmul(wh, wh[0], hc, hn, False, True)
                    hc, hn = hn, hc
                nlast = ints[sz + 2 * nl - 1]
                wg = par[q : q + nphi * n0l].reshape((nphi, n0l))
                q += nphi * n0l
                wh = par[q : q + nphi * nlast].reshape((nphi, nlast))
                q += nphi * nlast
                bl = par[q : q + nphi]
                q += nphi
                _matmul(wg, bl, gl, phi, True, False)
                _matmul(wh, wh[0], hc, phi, False, False)
            _inverse_phi(y, ob, phi, nb, cw, ch, lsw, lsd, bound)
            pos = sz + 2 * nl
        for p in range(m):
            out[s0 + p, 0] = y[p]
            out[s0 + p, 1] = y[_B + p]


def _knot_table(phi: np.ndarray, bins: int, slope: float, bound: float) -> np.ndarray:
    """(3, K+1) table (x_k, y_k, d_k) of one spline, raw parameters phi (3K − 1,) (float64)."""
    ls = math.log(slope)
    tab = np.empty((3, bins + 1))
    for row, par in ((0, phi[:bins]), (1, phi[bins : 2 * bins])):
        cs = np.concatenate(([0.0], np.cumsum(np.exp(par / (1 + (2 / -ls) * np.abs(par))))))
        tab[row] = cs * (2 * bound / cs[-1]) - bound
    d = phi[2 * bins :]
    tab[2] = np.concatenate(([1.0], np.exp(d / (1 + (1 / -ls) * np.abs(d))), [1.0]))
    return tab


def _relu64(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


class UnsupportedFlow(ValueError):
    """The flow is not of the form the compiled sampler handles (use the torch sampler)."""


class CompiledSampler:
    """Exact inverse of a 2-feature, 1-context zuko MAF/RQS flow (see the module docstring).

    ``flow``: the zuko flow; ``bins``, ``slope``, ``bound``: its splines. Raises
    :class:`UnsupportedFlow` for another structure.
    """

    def __init__(self, flow, bins: int, slope: float, bound: float) -> None:
        import torch

        self.bins = int(bins)
        self.slope = float(slope)
        self.bound = float(bound)
        nphi = 3 * self.bins - 1
        self.steps: list[tuple[str, Any]] = []
        with torch.no_grad():
            for kind, t in reversed(split_transforms(flow)):  # latent → data
                if kind == "lu":
                    lower, upper = lu_matrix(t)
                    mat = lower.double() @ upper.double()
                    if mat.shape != (2, 2):
                        raise UnsupportedFlow("LU transform of another size")
                    self.steps.append(("lu", np.linalg.inv(mat.numpy())))
                    continue
                masks = [m.mask.detach().numpy() != 0 for m in t.hyper if hasattr(m, "mask")]
                layers = [
                    (w.detach().double().numpy(), b.detach().double().numpy())
                    for w, b in made_layers(t)
                ]
                if len(masks) != len(layers) or layers[0][0].shape[1] != 3:
                    raise UnsupportedFlow("not a 2-feature, 1-context MADE")
                if any(not isinstance(m, (torch.nn.Linear, torch.nn.ReLU)) for m in t.hyper):
                    raise UnsupportedFlow("MADE with another activation")
                order = t.order.tolist()
                a = order.index(min(order))
                b = 1 - a
                w_out, b_out = layers[-1]
                if w_out.shape[0] != 2 * nphi:
                    raise UnsupportedFlow("spline parameters of another shape")
                if masks[0][:, b].any():
                    raise UnsupportedFlow("hyper-network sees the last feature")
                dep = [masks[0][:, a]]  # units that see x_a
                for mk in masks[1:-1]:
                    dep.append(mk[:, dep[-1]].any(1))
                if masks[-1][a * nphi : (a + 1) * nphi][:, dep[-1]].any():
                    raise UnsupportedFlow("first feature's spline sees x_a")
                self.steps.append(
                    (
                        "maf",
                        {
                            "a": a,
                            "b": b,
                            "layers": layers[:-1],
                            "dep": dep,
                            "wa": w_out[a * nphi : (a + 1) * nphi],
                            "ba": b_out[a * nphi : (a + 1) * nphi],
                            "wb": w_out[b * nphi : (b + 1) * nphi],
                            "bb": b_out[b * nphi : (b + 1) * nphi],
                        },
                    )
                )
        self._fixed_cache: tuple[float, np.ndarray, np.ndarray] | None = None
        self._event = self._pack(None)

    # ------------------------------------------------------------------ packing
    def _pack(self, c: float | None) -> tuple[np.ndarray, np.ndarray]:
        """(ints, par) for the kernel: at the fixed context c, or per-point context (None)."""
        ints: list[int] = [0, 0, 0, 0]
        par: list[np.ndarray] = []
        width = nlmax = 1
        for kind, st in self.steps:
            if kind == "lu":
                ints.append(0)
                par.append(st.ravel())
                continue
            a, b, dep, layers = st["a"], st["b"], st["dep"], st["layers"]
            nl = len(layers)
            n0 = [int((~d).sum()) for d in dep]
            n1 = [int(d.sum()) for d in dep]
            width = max(width, *n0, *n1)
            nlmax = max(nlmax, nl)
            ints += [1, a, b, nl, *n0, *n1]
            w1, b1 = layers[0]
            u0, u1 = ~dep[0], dep[0]
            if c is not None:
                g = _relu64(w1[u0, 2] * c + b1[u0])
                k = w1[u1, 2] * c + b1[u1]
                hidden = []
                for li in range(1, nl):
                    w, bl = layers[li]
                    p0, p1 = ~dep[li - 1], dep[li - 1]
                    c0, c1 = ~dep[li], dep[li]
                    hidden += [w[c1][:, p1], w[c1][:, p0] @ g + bl[c1]]
                    g = _relu64(w[c0][:, p0] @ g + bl[c0])
                phi_a = st["wa"][:, ~dep[-1]] @ g + st["ba"]
                par += [_knot_table(phi_a, self.bins, self.slope, self.bound).ravel()]
                par += [w1[u1, a], k, *(x.ravel() for x in hidden)]
                par += [st["wb"][:, dep[-1]].ravel(), st["wb"][:, ~dep[-1]] @ g + st["bb"]]
            else:
                par += [w1[u0, 2], b1[u0]]
                for li in range(1, nl):
                    w, bl = layers[li]
                    p0, c0 = ~dep[li - 1], ~dep[li]
                    par += [w[c0][:, p0].ravel(), bl[c0]]
                par += [st["wa"][:, ~dep[-1]].ravel(), st["ba"]]
                par += [w1[u1, a], w1[u1, 2], b1[u1]]
                for li in range(1, nl):
                    w, bl = layers[li]
                    p0, p1 = ~dep[li - 1], dep[li - 1]
                    c1 = dep[li]
                    par += [w[c1][:, p0].ravel(), w[c1][:, p1].ravel(), bl[c1]]
                par += [st["wb"][:, ~dep[-1]].ravel(), st["wb"][:, dep[-1]].ravel(), st["bb"]]
        ints[:4] = [len(self.steps), int(c is not None), width, nlmax]
        return (
            np.asarray(ints, dtype=np.int64),
            np.ascontiguousarray(np.concatenate(par), dtype=np.float32),
        )

    def _packed(self, c: float | None) -> tuple[np.ndarray, np.ndarray]:
        if c is None:
            return self._event
        cached = self._fixed_cache
        if cached is None or cached[0] != c:
            cached = (c, *self._pack(c))
            self._fixed_cache = cached
        return cached[1], cached[2]

    # ------------------------------------------------------------------ sampling
    def __call__(self, z: np.ndarray, c, threads: int = 1) -> np.ndarray:
        """Standardised features (n, 2) float32 of latent ``z`` (n, 2) float32.

        ``c``: the standardised context, one float (fixed mass) or an (n,) array.
        ``threads``: Python threads sharing the blocks (the result does not depend on it).
        """
        z = np.ascontiguousarray(z, dtype=np.float32)
        n = z.shape[0]
        if np.ndim(c) == 0:
            ints, par = self._packed(float(c))
            ctx = np.zeros(1, dtype=np.float32)
        else:
            ints, par = self._packed(None)
            ctx = np.ascontiguousarray(c, dtype=np.float32).reshape(-1)
            if ctx.shape[0] != n:
                raise ValueError(f"{ctx.shape[0]} contexts for {n} points")
        out = np.empty((n, 2), dtype=np.float32)
        nblk = -(-n // _B)
        ls = math.log(self.slope)
        args = (ints, par, (0,) * self.bins, _F(2 / -ls), _F(1 / -ls), _F(self.bound))
        threads = max(1, min(int(threads), nblk))
        if threads == 1:
            _sample_blocks(z, ctx, out, 0, nblk, *args)
            return out
        cuts = [nblk * i // threads for i in range(threads + 1)]
        thread_map(lambda r: _sample_blocks(z, ctx, out, r[0], r[1], *args),
                   itertools.pairwise(cuts), threads=threads)  # fmt: skip
        return out


def warm_up() -> None:
    """Compile (or load from numba's cache) the sampling kernel at the signature of the
    package's flows of the default architecture (``flow.bins``), at a fixed and at a
    per-point context (:mod:`gammastar.kernels`)."""
    import torch

    from gammastar.config.flow import FlowConfig
    from gammastar.flow.architecture import BOUND, SLOPE, architecture_from_config, build_flow

    cfg = FlowConfig(transforms=1, hidden_features=[4])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        flow = build_flow(architecture_from_config(cfg))
    sampler = CompiledSampler(flow, cfg.bins, SLOPE, BOUND)
    z = np.zeros((2, 2), dtype=np.float32)
    sampler(z, 0.0)
    sampler(z, np.zeros(2, dtype=np.float32))
