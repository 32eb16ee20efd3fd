"""Fused training kernels of the flow: the rational-quadratic spline with hand-derived gradients.

Offers :func:`log_prob` (ln p of a gammastar flow: MADE layers by torch, splines by one
compiled loop per step), :func:`rq_spline` (the spline as a ``torch.autograd.Function``:
compiled forward and vector–Jacobian product), :class:`FlatParameters` (one flat parameter
tensor for the optimiser) and :func:`warm_up`. zuko's ``MonotonicRQSTransform`` is the
reference it is tested against; the mathematics and its derivatives are in docs/explanation/flow.md
"Compiled kernels".
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from gammastar.core.threads import ensure_pool
from gammastar.flow.architecture import lu_matrix, made_layers, split_transforms

# set at import by numba.config from the environment; numba's stubs do not list it
_MAX_THREADS = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
# no NaN/inf assumptions (nnan/ninf) and no reassociation: only reciprocals, contraction
_FASTMATH = {"nsz", "arcp", "contract", "afn"}


@njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def rqs_forward(e, fq, x, bound, y, lj, jy, jl, jx, need_jac):
    """Spline of every (point, feature) given ``e`` = exp of the bounded raw parameters and
    ``fq`` = e × dŵ/dw (both (N, F, P), from :func:`_bounded_exp`): y, lj = ln|dy/dx| and, if
    ``need_jac``, the gradients jy = ∂y/∂phi, jl = ∂lj/∂phi (N, F, P) and jx = (∂y/∂x, ∂lj/∂x)
    (N, 2, F) with respect to the raw parameters phi and x.

    Branch-free per point (selects, not jumps: the bin is data-dependent and would be
    mispredicted); points outside the box get the identity, whatever the (discarded) bin
    arithmetic gave there.
    """
    n_pts, n_feat, n_par = e.shape
    K = (n_par + 1) // 3
    two_b = 2.0 * bound
    for n in range(n_pts):
        for f in range(n_feat):
            xv = float(x[n, f])
            sw = 0.0
            sh = 0.0
            for i in range(K):
                sw += float(e[n, f, i])
                sh += float(e[n, f, K + i])
            isw = 1.0 / sw
            ish = 1.0 / sh
            rw = two_b * isw
            rh = two_b * ish
            # bin: k = #{j: x_j < x} − 1 with x_0 = −B, so k = #{j ≥ 1: x_j < x} inside the box
            k = 0
            cw = 0.0
            cw0 = 0.0
            for j in range(K):
                ej = float(e[n, f, j])
                cw += ej
                below = cw * rw - bound < xv
                k += below
                cw0 += ej if below else 0.0
            inside = (-bound < xv) and (k < K)
            k = min(k, K - 1)
            ch0 = 0.0
            for i in range(K):
                ch0 += float(e[n, f, K + i]) if i < k else 0.0
            cw1 = cw0 + float(e[n, f, k])
            ch1 = ch0 + float(e[n, f, K + k])
            x0 = cw0 * rw - bound
            x1 = cw1 * rw - bound
            y0 = ch0 * rh - bound
            y1 = ch1 * rh - bound
            i0 = max(k - 1, 0)
            i1 = min(k, K - 2)
            has0 = k >= 1
            has1 = k <= K - 2
            d0 = float(e[n, f, 2 * K + i0]) if has0 else 1.0
            d1 = float(e[n, f, 2 * K + i1]) if has1 else 1.0
            dx = x1 - x0
            dy = y1 - y0
            rdx = 1.0 / dx
            s = dy * rdx
            z = (xv - x0) * rdx
            zz = z * (1.0 - z)
            den = s + (d0 + d1 - 2.0 * s) * zz
            rden = 1.0 / den
            num = s * z * z + d0 * zz
            tt = 2.0 * s * zz + d0 * (1.0 - z) * (1.0 - z) + d1 * z * z
            yv = y0 + dy * num * rden
            lv = math.log(s * s * tt * rden * rden)
            y[n, f] = yv if inside else xv
            lj[n, f] = lv if inside else 0.0
            if not need_jac:
                continue
            # reverse mode through the bin's scalars, for y (a…) and for lj (b…)
            rtt = 1.0 / tt
            rs = dx / dy
            one_2zz = 1.0 - 2.0 * zz
            dsum = d0 + d1 - 2.0 * s
            # y = y0 + dy·num/den
            g_num = dy * rden
            g_den = -g_num * num * rden
            g_s = g_num * z * z + g_den * one_2zz
            g_zz = g_num * d0 + g_den * dsum
            ad0 = (g_num + g_den) * zz
            ad1 = g_den * zz
            g_z = g_num * 2.0 * s * z + g_zz * (1.0 - 2.0 * z)
            g_dy = num * rden + g_s * rdx
            g_dx = -(g_z * z + g_s * s) * rdx
            ax = g_z * rdx
            ax0 = -ax - g_dx
            ax1 = g_dx
            ay0 = 1.0 - g_dy
            ay1 = g_dy
            # lj = 2 ln s + ln tt − 2 ln den
            g_den = -2.0 * rden
            g_s = 2.0 * rs + 2.0 * zz * rtt + g_den * one_2zz
            g_zz = 2.0 * s * rtt + g_den * dsum
            bd0 = rtt * (1.0 - z) * (1.0 - z) + g_den * zz
            bd1 = rtt * z * z + g_den * zz
            g_z = rtt * (2.0 * d1 * z - 2.0 * d0 * (1.0 - z)) + g_zz * (1.0 - 2.0 * z)
            g_dy = g_s * rdx
            g_dx = -(g_z * z + g_s * s) * rdx
            bx = g_z * rdx
            bx0 = -bx - g_dx
            bx1 = g_dx
            by0 = -g_dy
            by1 = g_dy
            jx[n, 0, f] = ax if inside else 1.0
            jx[n, 1, f] = bx if inside else 0.0
            # knots → weights e: ∂x_j/∂e_i = (2B/S)([i < j] − c_j), c_j = Σ_{i<j} e_i / S
            acx = (ax0 * cw0 + ax1 * cw1) * isw
            bcx = (bx0 * cw0 + bx1 * cw1) * isw
            acy = (ay0 * ch0 + ay1 * ch1) * ish
            bcy = (by0 * ch0 + by1 * ch1) * ish
            for i in range(K):
                lo = i < k
                le = i <= k
                ga = (ax0 if lo else 0.0) + (ax1 if le else 0.0) - acx
                gb = (bx0 if lo else 0.0) + (bx1 if le else 0.0) - bcx
                ha = (ay0 if lo else 0.0) + (ay1 if le else 0.0) - acy
                hb = (by0 if lo else 0.0) + (by1 if le else 0.0) - bcy
                fw = rw * float(fq[n, f, i])
                fh = rh * float(fq[n, f, K + i])
                jy[n, f, i] = fw * ga if inside else 0.0
                jl[n, f, i] = fw * gb if inside else 0.0
                jy[n, f, K + i] = fh * ha if inside else 0.0
                jl[n, f, K + i] = fh * hb if inside else 0.0
            for i in range(2 * K, n_par):
                jy[n, f, i] = 0.0
                jl[n, f, i] = 0.0
            use0 = inside and has0
            use1 = inside and has1
            f0 = float(fq[n, f, 2 * K + i0])
            f1 = float(fq[n, f, 2 * K + i1])
            # i0 == i1 at the first and last bins: add, the unused term being 0
            jy[n, f, 2 * K + i0] += f0 * ad0 if use0 else 0.0
            jl[n, f, 2 * K + i0] += f0 * bd0 if use0 else 0.0
            jy[n, f, 2 * K + i1] += f1 * ad1 if use1 else 0.0
            jl[n, f, 2 * K + i1] += f1 * bd1 if use1 else 0.0


@njit(cache=True, nogil=True)
def vjp_range(jy, jl, jx, gy, gl, gphi, gx, start, stop):
    """gphi = gy·jy + gl·jl, gx = gy·jx[:, 0] + gl·jx[:, 1] for the points start … stop − 1."""
    n_feat, n_par = jy.shape[1], jy.shape[2]
    for n in range(start, stop):
        for f in range(n_feat):
            a = gy[n, f]
            b = gl[n, f]
            for i in range(n_par):
                gphi[n, f, i] = a * jy[n, f, i] + b * jl[n, f, i]
            gx[n, f] = a * jx[n, 0, f] + b * jx[n, 1, f]


@njit(cache=True, nogil=True, parallel=True)
def vjp(jy, jl, jx, gy, gl, gphi, gx, chunks):
    """:func:`vjp_range` over all points, ``chunks`` contiguous ranges in parallel (call
    :func:`vjp_range` for one chunk: a parallel region costs a barrier of every numba thread,
    which stalls when the threads outnumber the free cores)."""
    n_pts = jy.shape[0]
    for c in prange(chunks):
        vjp_range(jy, jl, jx, gy, gl, gphi, gx, c * n_pts // chunks, (c + 1) * n_pts // chunks)


def _bounded_exp(phi, slope: float, grad: bool = True):
    """(e, fq): e = exp ŵ of zuko's bounded spline parameters ŵ = w/(1 + 2|w|/|ln slope|) (widths
    and heights), d/(1 + |d|/|ln slope|) (derivatives), and fq = e·dŵ/dw = e/(1 + c|w|)²
    (``None`` unless ``grad``); vectorised in torch."""
    import torch

    K = (phi.shape[-1] + 1) // 3
    ls = -math.log(slope)
    coef = torch.full((phi.shape[-1],), 2.0 / ls, dtype=phi.dtype)
    coef[2 * K :] = 1.0 / ls
    t = torch.addcmul(torch.ones((), dtype=phi.dtype), coef, phi.abs())
    e = torch.exp(phi / t)
    return e, (e / (t * t) if grad else None)


def _spline(phi, x, bound: float, slope: float, jac: bool):
    """Run :func:`rqs_forward` on torch tensors (no autograd): (y, lj) or (y, lj, jy, jl, jx)."""
    import torch

    phi = phi.detach().contiguous()
    x = x.detach().contiguous()
    e, fq = _bounded_exp(phi, slope, grad=jac)
    y = torch.empty_like(x)
    lj = torch.empty_like(x)
    if jac:
        jy = torch.empty_like(phi)
        jl = torch.empty_like(phi)
        jx = torch.empty((x.shape[0], 2, x.shape[1]), dtype=x.dtype)
    else:
        fq = jy = jl = torch.empty((0, 0, 0), dtype=phi.dtype)
        jx = torch.empty((0, 0, 0), dtype=x.dtype)
    given = (e, fq, x, float(bound), y, lj, jy, jl, jx, jac)
    args = tuple(a.numpy() if isinstance(a, torch.Tensor) else a for a in given)
    chunks = min(torch.get_num_threads(), _MAX_THREADS, max(1, x.shape[0] // 512))
    if chunks > 1:
        ensure_pool()
        # one tuple: mypy checks a call of numba's typed dispatcher with *args then more
        # positional arguments as too many
        rqs_forward_parallel(*(*args, chunks))
    else:
        rqs_forward(*args)
    return (y, lj, jy, jl, jx) if jac else (y, lj)


def _make_function():
    import torch

    class RQSpline(torch.autograd.Function):
        """(y, ln|dy/dx|) = spline(x; phi), phi (N, F, 3K − 1), x (N, F); gradients from the
        kernel's Jacobians (see the module docstring)."""

        @staticmethod
        def forward(ctx, phi, x, bound, slope):
            y, lj, jy, jl, jx = _spline(phi, x, bound, slope, jac=True)
            ctx.save_for_backward(jy, jl, jx)
            return y, lj

        @staticmethod
        def backward(ctx, gy, gl):
            jy, jl, jx = ctx.saved_tensors
            gy = gy.contiguous()
            gl = gl.contiguous()
            gphi = torch.empty_like(jy)
            gx = torch.empty_like(gy)
            chunks = min(torch.get_num_threads(), _MAX_THREADS, max(1, gy.shape[0] // 512))
            args = (jy.numpy(), jl.numpy(), jx.numpy(), gy.numpy(), gl.numpy(), gphi.numpy(),
                    gx.numpy())  # fmt: skip
            if chunks > 1:
                ensure_pool()
                vjp(*args, chunks)
            else:  # no parallel region (see vjp)
                vjp_range(*args, 0, gy.shape[0])
            return gphi, gx, None, None

    return RQSpline


_FUNCTION = None


def rq_spline(phi, x, bound: float, slope: float):
    """Differentiable (y, ln|dy/dx|) of the monotonic RQ spline; phi (N, F, P), x (N, F)."""
    import torch

    global _FUNCTION
    if torch.is_grad_enabled() and (phi.requires_grad or x.requires_grad):
        if _FUNCTION is None:
            _FUNCTION = _make_function()
        return _FUNCTION.apply(phi, x, bound, slope)
    return _spline(phi, x, bound, slope, jac=False)


def log_prob(flow, x, c, bins: int, bound: float, slope: float):
    """ln p(x | c) of the zuko ``flow`` (see ``gammastar.flow.architecture.build_flow``), x (N, 2), c (N, 1):
    point-major, the MADE layers as matrix products, the splines by :func:`rq_spline`."""
    import torch

    n = x.shape[0]
    z = x
    ladj = None
    for kind, t in split_transforms(flow):
        if kind == "maf":
            layers = made_layers(t)
            h = torch.cat((z, c), 1)
            last = len(layers) - 1
            for i, (w, b) in enumerate(layers):
                h = torch.addmm(b, h, w.t())
                if i < last:
                    h = torch.relu(h)
            z, lj = rq_spline(h.view(n, z.shape[1], -1), z, bound, slope)
        else:
            lower, upper = lu_matrix(t)
            z = z @ (lower @ upper).t()
            lj = torch.diagonal(lower).abs().log()
            lj = lj.expand(n, -1)
        ladj = lj if ladj is None else ladj + lj
    if ladj is None:
        raise ValueError("log_prob: the flow has no transforms")
    return ladj.sum(1) - 0.5 * (z * z).sum(1) - math.log(2 * math.pi)


@njit(cache=True, nogil=True, parallel=True)
def rqs_forward_parallel(e, fq, x, bound, y, lj, jy, jl, jx, need_jac, chunks):
    """:func:`rqs_forward` on ``chunks`` contiguous ranges of points in parallel.

    Every chunk calls :func:`rqs_forward` with the serial call's argument types (contiguous
    leading-axis slices, ``need_jac`` a run-time flag), so that both share one compiled
    specialisation; without ``need_jac`` the empty Jacobian arrays slice to empty arrays.
    """
    n = e.shape[0]
    for c in prange(chunks):
        a = c * n // chunks
        b = (c + 1) * n // chunks
        rqs_forward(
            e[a:b], fq[a:b], x[a:b], bound, y[a:b], lj[a:b], jy[a:b], jl[a:b], jx[a:b], need_jac
        )


OPTIMIZER_LAYOUT = "adamw-flat"  # in the checkpoint identity: older checkpoints are refused


class FlatParameters:
    """A module's parameters as views of one flat tensor, so that the optimizer updates one
    tensor per step (AdamW over ~50 small tensors costs more than the update itself).

    The module's own parameters keep their names, shapes and ``state_dict``; ``param`` is the
    flat leaf handed to the optimizer; :meth:`backward` puts the gradient of a loss into
    ``param.grad``.
    """

    def __init__(self, module) -> None:
        import torch

        self.params = list(module.parameters())
        with torch.no_grad():
            flat = torch.cat([p.detach().reshape(-1) for p in self.params])
        self.param = torch.nn.Parameter(flat)
        off = 0
        for p in self.params:
            p.data = self.param.data[off : off + p.numel()].view_as(p)
            off += p.numel()

    def backward(self, loss) -> None:
        import torch

        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        self.param.grad = torch.cat(
            [
                (g if g is not None else torch.zeros_like(p)).reshape(-1)
                for g, p in zip(grads, self.params, strict=True)
            ]
        )


def warm_up() -> None:
    """Load the compiled kernels (numba's on-disk cache; compiled on the first use after an
    installation) so that the first training step does not pay for it."""
    import torch

    ensure_pool()  # first: numba's launch must not change torch's thread count
    phi = torch.zeros((2, 2, 17))
    x = torch.zeros((2, 2))
    for jac in (False, True):
        _spline(phi, x, 5.0, 1e-3, jac)
        given = (*_bounded_exp(phi, 1e-3), x, 5.0, *(torch.empty_like(x),) * 2)
        args = tuple(a.numpy() if isinstance(a, torch.Tensor) else a for a in given)
        out = (np.empty((2, 2, 17), np.float32),) * 2 + (np.empty((2, 2, 2), np.float32),)
        rqs_forward_parallel(*(*args, *out, jac, 2))  # one tuple: as in _spline
    j = np.zeros((2, 2, 17), np.float32)
    g = np.zeros((2, 2), np.float32)
    vjp(j, j, np.zeros((2, 2, 2), np.float32), g, g, j.copy(), g.copy(), 2)
    vjp_range(j, j, np.zeros((2, 2, 2), np.float32), g, g, j.copy(), g.copy(), 0, 2)
