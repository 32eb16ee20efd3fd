"""Millicharged-particle kinematics: the paper's χχ̄ sampling recipe on top of the γ* flow.

Offers :func:`sample_mcp` (γ* masses from the unfolded dilepton spectrum weighted by the Eq. 8
factor, (q_T, E) from a kinematics flow, decay γ* → χχ̄) and :func:`decay_two_body` (the decay
of a transversely polarised γ* to a fermion pair, dN/dcos θ ∝ 1 + cos²θ + (4m²/M²) sin²θ).

References:
    Allison & Blinov Sec. III C 2, Eq. 8; physics.md §1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gammastar.errors import GammastarError
from gammastar.physics.kinematics import decay_in_helicity_frame, mcp_factor
from gammastar.physics.sampling import sample_dalitz_cos


def decay_two_body(
    parent: Mapping[str, np.ndarray], m_daughter: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    r"""Decay γ* → χχ̄ in its rest frame with dN/dcosθ ∝ 1 + cos²θ + (4m²/M²) sin²θ.

    θ is measured from the γ* flight direction (the helicity frame of
    :func:`gammastar.physics.kinematics.decay_in_helicity_frame`); the azimuth is uniform.

    Arguments:
        parent: arrays ``px``, ``py``, ``pz``, ``E``, ``m`` of the γ*.
        m_daughter: the χ mass (GeV).
        rng: numpy generator.

    Returns:
        Two (n, 4) arrays (px, py, pz, E) of χ and χ̄ in the lab.

    References:
        Allison & Blinov Sec. III C 2; the angular distribution of a transversely
        polarised vector decaying to a fermion pair (e.g. Landsberg, Phys. Rep. 128 (1985) 301).

    Example:
        >>> g = {"px": np.array([0.3]), "py": np.array([0.0]), "pz": np.array([20.0]),
        ...      "m": np.array([0.5])}
        >>> g["E"] = np.sqrt(0.3**2 + 20.0**2 + 0.5**2)
        >>> a, b = decay_two_body(g, 0.1, np.random.default_rng(1))
        >>> bool(np.allclose(a + b, [[0.3, 0.0, 20.0, g["E"]]]))
        True
        >>> bool(np.isclose(a[0, 3] ** 2 - (a[0, :3] ** 2).sum(), 0.1**2))
        True
    """
    M = np.atleast_1d(np.asarray(parent["m"], dtype=np.float64))
    n = len(M)
    cos = sample_dalitz_cos(rng, 4 * m_daughter**2 / M**2)
    phi = rng.uniform(0, 2 * np.pi, n)
    p4 = np.stack(
        [
            np.broadcast_to(np.asarray(parent[k], dtype=np.float64), (n,))
            for k in ("px", "py", "pz", "E")
        ]
    )
    a, b = decay_in_helicity_frame(p4, m_daughter, cos, phi, mass=M)
    return a.T.copy(), b.T.copy()


def sample_mcp(
    model: Any,
    m_chi: float,
    n: int,
    *,
    spectrum: tuple[np.ndarray, np.ndarray],
    m_lepton: float,
    q: float = 1.0,
    seed: int | None = None,
    extrapolate: bool = False,
) -> dict[str, np.ndarray]:
    """The paper's mCP recipe (Sec. III C 2): γ* mass, (q_T, E) from the flow, γ* → χχ̄.

    1. γ* masses from the unfolded dilepton spectrum above 2 m_χ (and inside the flow's trained
       mass range unless ``extrapolate``), weighted by the Eq. 8 factor
       Q² K_χ(m)/K_ℓ(m) (:func:`gammastar.physics.kinematics.mcp_factor`): a bin is chosen with
       probability ∝ content × factor, the mass uniformly inside it;
    2. (q_T, E) of the γ* from the flow at that mass, with a uniform azimuth;
    3. the decay γ* → χχ̄ (:func:`decay_two_body`).

    Every event has weight Σ_bins(content × factor)/n, so the weights sum to the expected number
    of χχ̄ pairs in the normalisation of ``spectrum``.

    Arguments:
        model: the γ* kinematics flow (:class:`gammastar.flow.FlowModel`; its ``mass_range``
            and ``sample`` are used).
        m_chi: χ mass (GeV).
        n: number of events.
        spectrum: (edges, contents) of the γ* mass spectrum
            (:func:`gammastar.flow.mass_spectrum_from_pairs`).
        m_lepton: the lepton mass of the dilepton spectrum (GeV).
        q: χ charge in units of e.
        seed: random seed.
        extrapolate: use masses outside the flow's trained range.

    Returns:
        dict of arrays: ``m_gstar``, ``qT``, ``E``, ``px``, ``py``, ``pz`` (γ*), ``chi1_*`` and
        ``chi2_*`` (px, py, pz, E), ``weight``.
    """
    edges, contents = (np.asarray(a, dtype=np.float64) for a in spectrum)
    rng = np.random.default_rng(seed)
    lo = np.maximum(edges[:-1], 2 * m_chi)
    hi = edges[1:].copy()
    if not extrapolate:  # only the part of the spectrum inside the flow's trained range
        lo = np.maximum(lo, model.mass_range[0])
        hi = np.minimum(hi, model.mass_range[1])
    ok = hi > lo
    # mean of the Eq. 8 factor across the part of each bin above threshold (5-point rule)
    tpts = np.linspace(0, 1, 5)[1:-1]
    fac = np.mean([mcp_factor(lo + t * (hi - lo), m_chi, m_lepton, q) for t in tpts], axis=0)
    frac = np.where(ok, (hi - lo) / (edges[1:] - edges[:-1]), 0.0)
    expected = contents * fac * frac
    expected[~ok] = 0.0
    total = expected.sum()
    if not np.isfinite(total) or total <= 0:
        raise GammastarError(
            f"no γ* mass above 2 m_χ = {2 * m_chi:.4g} GeV in the mass spectrum "
            f"[{edges[0]:.4g}, {edges[-1]:.4g}] GeV"
        )
    b = rng.choice(len(expected), size=n, p=expected / total)
    m = rng.uniform(lo[b], hi[b])
    g = model.sample(m, seed=int(rng.integers(2**63)), extrapolate=extrapolate, four_vectors=True)
    c1, c2 = decay_two_body({**g, "m": m}, m_chi, rng)
    out = {
        "m_gstar": m,
        "qT": g["qT"],
        "E": g["E"],
        "px": g["px"],
        "py": g["py"],
        "pz": g["pz"],
        "weight": np.full(n, total / n),
    }
    for name, arr in (("chi1", c1), ("chi2", c2)):
        for i, comp in enumerate(("px", "py", "pz", "E")):
            out[f"{name}_{comp}"] = arr[:, i]
    return out
