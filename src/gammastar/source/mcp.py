"""Millicharged-particle events: the paper's χχ̄ recipe (Sec. III C 2, Eq. 8), the one
implementation: γ* → χχ̄ pairs with the data-driven γ* mass spectrum, kinematics and
polarisation, built on the A′ kinematics (:mod:`gammastar.source.aprime`), the decays'
angular distribution (:mod:`gammastar.source.decays`) and the production vertex
(:mod:`gammastar.source.vertices`).

Offers :func:`mcp_bins` (the expected χχ̄ pairs per γ* mass bin: content × the bin-averaged
Eq. 8 factor, 12-point Gauss–Legendre), :func:`generate_mcp` (one chunk of weighted events:
written by ``gammastar events --mchi``, :func:`gammastar.events.stage.run_mcp_events`) and
:func:`sample_mcp` (the same recipe on a kinematics flow with a transverse γ*, the columns of
``gammastar sample --mcp-mass``).

References:
    E. Allison, N. Blinov, "Data-Driven Predictions for Dark Photon and Millicharged Particle
    Production" (2025), Sec. III C 2 and Eq. 8; docs/explanation/physics.md §1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.errors import InputError
from gammastar.physics.kinematics import mcp_factor
from gammastar.physics.sampling import sample_cos_theta
from gammastar.source.aprime import AprimeKinematics, aprime_kinematics, decay_daughters, mass_range
from gammastar.source.decays import Decay, decay_coefficients
from gammastar.source.source import Source
from gammastar.source.vertices import production_vertex

__all__ = ["McpSettings", "generate_mcp", "mcp_bins", "sample_mcp"]


@dataclass
class McpSettings:
    """Settings of a χχ̄ event sample (:func:`run_mcp_events`); lengths m, energies GeV."""

    m_chi: float
    charge: float
    pdgid: int
    beam_energy: float = 400.0
    beam_spot: tuple[float, float] = (0.0, 0.0)
    target_lambda: float = 0.0
    target_lengths: float = math.inf
    sigma_pb_per_event: float = 0.0


def mcp_bins(
    edges: NDArray, contents: NDArray, m_chi: float, m_lepton: float, q: float,
    mass_range: tuple[float, float] | None,
) -> tuple[NDArray, NDArray, NDArray]:  # fmt: skip
    """(lo, hi, expected χχ̄ pairs) per γ* mass bin: the part of each bin above 2 m_χ (and
    inside ``mass_range``), content × the bin-averaged Eq. 8 factor Q² K_χ/K_ℓ
    (:func:`gammastar.physics.kinematics.mcp_factor`; Gauss–Legendre after m = lo + (hi − lo)u²,
    exact to ~1e-8 also in the threshold bin)."""

    lo = np.maximum(edges[:-1], 2 * m_chi)
    hi = edges[1:].astype(np.float64).copy()
    if mass_range is not None:
        lo = np.maximum(lo, mass_range[0])
        hi = np.minimum(hi, mass_range[1])
    ok = hi > lo
    # bin average with m = lo + (hi − lo) u²: the √(m − 4m_χ²) threshold becomes smooth in u;
    # 12-point Gauss–Legendre in u ∈ [0, 1]
    x, w = np.polynomial.legendre.leggauss(12)
    u, w = 0.5 * (x + 1), 0.5 * w
    fac = sum(wi * 2 * ui * mcp_factor(lo + (hi - lo) * ui**2, m_chi, m_lepton, q)
              for ui, wi in zip(u, w, strict=True))  # fmt: skip
    frac = np.where(ok, (hi - lo) / (edges[1:] - edges[:-1]), 0.0)
    expected = np.where(ok, contents * fac * frac, 0.0)
    return lo, hi, expected


def expected_total(
    bins: tuple[NDArray, NDArray, NDArray], edges: NDArray, m_chi: float,
    mass_range: tuple[float, float] | None, *, what: str = "the mass spectrum",
) -> float:  # fmt: skip
    """The expected χχ̄ pairs of :func:`mcp_bins`' ``bins``, in the normalisation of the
    spectrum (``mass_range``: the range they were restricted to, None: none).

    Raises:
        InputError: no γ* mass above 2 m_χ in the spectrum ``what`` (inside ``mass_range``).
    """
    total = float(bins[2].sum())
    if not (np.isfinite(total) and total > 0):
        where = "" if mass_range is None else f" inside the flow's range {mass_range}"
        raise InputError(
            f"no γ* mass above 2 m_χ = {2 * m_chi:.4g} GeV in {what} "
            f"[{edges[0]:.4g}, {edges[-1]:.4g}] GeV{where}"
        )
    return total


def generate_mcp(
    sampler: Any,
    st: McpSettings,
    bins: tuple[NDArray, NDArray, NDArray],
    rho00: NDArray,
    n: int,
    *,
    seed: int | None,
    total: float,
    n_norm: int,
) -> dict[str, NDArray]:
    """One chunk of ``n`` χχ̄ events (the paper's recipe, Sec. III C 2, with this module's
    machinery): γ* mass from the data's spectrum × Eq. 8 factor (bin ∝ expected pairs, mass
    uniform in the bin), (q_T, E) from the sampler at the bin centre with E set to the event's
    mass at fixed momentum, the decay γ* → χχ̄ with the bin's ρ₀₀, the production vertex.
    Weight ``total``/``n_norm``: the weights sum to the expected χχ̄ pairs."""
    lo, hi, expected = bins
    ss = np.random.SeedSequence(seed)
    s_bin, s_kin, s_vtx = ss.spawn(3)
    rng_b = np.random.default_rng(s_bin)
    b = rng_b.choice(expected.size, size=n, p=expected / expected.sum())
    m = rng_b.uniform(lo[b], hi[b])
    px, py, pz = np.empty(n), np.empty(n), np.empty(n)
    ok = np.ones(n, dtype=bool)
    extrap = np.zeros(n, dtype=bool)
    rng_k = np.random.default_rng(s_kin)
    for j in np.unique(b):
        idx = np.nonzero(b == j)[0]
        mc = 0.5 * (lo[j] + hi[j])
        k = aprime_kinematics(
            sampler, float(mc), idx.size, seed=int(rng_k.integers(2**63)), rng=rng_k
        )
        if k.weight is not None:
            raise InputError("millicharged pairs: importance-weighted A' draws are not supported")
        px[idx], py[idx], pz[idx] = k.px, k.py, k.pz
        ok[idx] = k.ok
        if k.extrapolated is not None:
            extrap[idx] = k.extrapolated
    e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
    g = AprimeKinematics(m, px, py, pz, e, ok)  # type: ignore[arg-type]  # per-event mass
    chi = Decay("chichi", st.pdgid, -st.pdgid, st.m_chi, st.m_chi, True)
    coef = np.array([decay_coefficients(float(r), float(0.5 * (lo[j] + hi[j])), chi)
                     for j, r in enumerate(rho00)])  # fmt: skip
    cos_t = sample_cos_theta(rng_k, coef[b, 0], coef[b, 1], n)
    phi = rng_k.uniform(0.0, 2 * np.pi, n)
    d1, d2 = decay_daughters(g, st.m_chi, st.m_chi, cos_t, phi)
    x0, y0, z0 = production_vertex(st, n, np.random.default_rng(s_vtx))
    cols = {
        "weight": np.full(n, total / n_norm),
        "extrapolated": extrap,
        "m_gstar": m,
        "prod_x": x0,
        "prod_y": y0,
        "prod_z": z0,
        "gstar_px": px,
        "gstar_py": py,
        "gstar_pz": pz,
        "gstar_E": e,
        "cos_theta": cos_t,
        "phi": phi,
    }
    for name, d in (("chi1", d1), ("chi2", d2)):
        for i, comp in enumerate(("px", "py", "pz", "E")):
            cols[f"{name}_{comp}"] = d[i]
    return {key: np.ascontiguousarray(v[ok]) for key, v in cols.items()}


def sample_mcp(
    model: Any,
    m_chi: float,
    n: int,
    *,
    spectrum: tuple[NDArray, NDArray],
    m_lepton: float,
    q: float = 1.0,
    seed: int | None = None,
    extrapolate: bool = False,
) -> dict[str, NDArray]:
    """The paper's mCP recipe (Sec. III C 2) on a γ* kinematics flow, as ``gammastar sample
    --mcp-mass`` writes it: :func:`mcp_bins` and :func:`generate_mcp` with a transversely
    polarised γ* (ρ₀₀ = 0: dN/dcos θ ∝ 1 + cos²θ + (4m_χ²/m²) sin²θ about the γ* direction) and
    no production vertex.

    1. γ* masses from the unfolded dilepton spectrum above 2 m_χ (and inside the flow's trained
       mass range unless ``extrapolate``), a bin chosen ∝ content × Eq. 8 factor, the mass
       uniform inside it;
    2. (q_T, E) of the γ* from the flow at the bin's centre, E set to the event's mass at fixed
       momentum, a uniform azimuth;
    3. the decay γ* → χχ̄.

    The weights sum to the expected number of χχ̄ pairs in the normalisation of ``spectrum``.

    Arguments:
        model: the γ* kinematics (a :class:`gammastar.flow.model.FlowModel`, or any sampler with
            ``sample(mass, n, seed)`` and optionally ``mass_range``).
        m_chi: χ mass (GeV).
        n: number of events (fewer rows where the sampler gives unphysical kinematics).
        spectrum: (edges, contents) of the γ* mass spectrum
            (:func:`gammastar.flow.data.mass_spectrum_from_pairs`).
        m_lepton: the lepton mass of the dilepton spectrum (GeV).
        q: χ charge in units of e.
        seed: random seed.
        extrapolate: use masses outside the flow's trained range (the flow extrapolated,
            :meth:`Source.at_any_mass <gammastar.source.source.Source.at_any_mass>`).

    Returns:
        dict of arrays: ``m_gstar``, ``qT``, ``E``, ``px``, ``py``, ``pz`` (γ*), ``chi1_*`` and
        ``chi2_*`` (px, py, pz, E), ``weight``.

    Raises:
        InputError: no γ* mass above 2 m_χ in the spectrum (inside the flow's range).

    References:
        Allison & Blinov Sec. III C 2, Eq. 8; the angular distribution of a transversely
        polarised vector decaying to a fermion pair (Landsberg, Phys. Rep. 128 (1985) 301).

    Example:
        >>> from gammastar.physics.sampling import ParametricSampler
        >>> edges = np.linspace(0.3, 1.0, 15)
        >>> s = sample_mcp(ParametricSampler(), 0.2, 1000, spectrum=(edges, np.ones(14)),
        ...                m_lepton=0.1056583755, seed=1)
        >>> bool(np.all(s["m_gstar"] >= 0.4)), bool(np.allclose(s["chi1_E"] + s["chi2_E"], s["E"]))
        (True, True)
    """
    edges, contents = (np.asarray(a, dtype=np.float64) for a in spectrum)
    frange = mass_range(model)
    limit = None if extrapolate else frange
    bins = mcp_bins(edges, contents, m_chi, m_lepton, q, limit)
    total = expected_total(bins, edges, m_chi, limit)
    source = Source.at_any_mass(model) if extrapolate else Source.from_model(model)
    st = McpSettings(m_chi=float(m_chi), charge=float(q), pdgid=0)
    cols = generate_mcp(source, st, bins, np.zeros(bins[2].size), n, seed=seed, total=total,
                        n_norm=n)  # fmt: skip
    out = {
        "m_gstar": cols["m_gstar"],
        "qT": np.hypot(cols["gstar_px"], cols["gstar_py"]),
        "E": cols["gstar_E"],
        "px": cols["gstar_px"],
        "py": cols["gstar_py"],
        "pz": cols["gstar_pz"],
        "weight": cols["weight"],
    }
    for name in ("chi1", "chi2"):
        for comp in ("px", "py", "pz", "E"):
            out[f"{name}_{comp}"] = cols[f"{name}_{comp}"]
    return out
