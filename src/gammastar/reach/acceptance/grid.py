"""The acceptance on grids: Eq. B1 at one mass for each cτ (:func:`acceptance`), on a (m, cτ)
grid (:func:`acceptance_grid`) and on a (m, ε) grid (:func:`acceptance_eps_grid`), each mass
its own draw (:func:`gammastar.reach.acceptance.draw`); and the Fig. 9/10 comparison of two
samplers' acceptance (:func:`plot_acceptance_comparison` on a :class:`ComparisonGrid`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.core.figures import figure_style, save_figure
from gammastar.errors import GammastarError
from gammastar.physics.darkphoton import ctau as ctau_fn
from gammastar.physics.sampling import SamplerLike
from gammastar.reach.acceptance import draw
from gammastar.source.geometry import Geometry

__all__ = [
    "ComparisonGrid",
    "acceptance",
    "acceptance_eps_grid",
    "acceptance_grid",
    "plot_acceptance_comparison",
]


# --------------------------------------------------------------------------- grids
def acceptance(
    sampler: SamplerLike,
    mass: float,
    ctau: ArrayLike,
    geometry: Geometry,
    *,
    n: int = 20_000,
    seed: int | None = None,
    channel: str = "mumu",
) -> NDArray[np.float64]:
    """Eq. B1 acceptance at one mass for each cτ (m).

    Example:
        >>> from gammastar.physics.sampling import ParametricSampler
        >>> g = Geometry(l1=5.0, l2=10.0, theta_min=0.0, theta_max=1.0)
        >>> a = acceptance(ParametricSampler(), 0.3, [1e-3, 1.0, 1e6], g, n=2000, seed=1)
        >>> bool(a[0] < a[1] and a[2] < 1e-3)
        True
    """
    return draw(sampler, mass, n, geometry, seed=seed, channel=channel).acceptance(ctau)


def acceptance_grid(
    sampler: SamplerLike,
    masses: ArrayLike,
    ctaus: ArrayLike,
    geometry: Geometry,
    *,
    n: int = 20_000,
    seed: int | None = None,
    channel: str = "mumu",
) -> NDArray[np.float64]:
    """Acceptance on a (mass, cτ) grid, shape (len(masses), len(ctaus)).

    Each mass gets its own child seed of ``seed`` (reproducible, independent).
    """
    masses = np.atleast_1d(np.asarray(masses, dtype=np.float64))
    seeds = np.random.SeedSequence(seed).spawn(masses.size)
    out = np.empty((masses.size, np.size(ctaus)))
    for i, m in enumerate(masses):
        s = int(seeds[i].generate_state(1)[0])
        out[i] = draw(sampler, float(m), n, geometry, seed=s, channel=channel).acceptance(ctaus)
    _check_nonempty(out, geometry)
    return out


def acceptance_eps_grid(
    sampler: SamplerLike,
    masses: ArrayLike,
    eps: ArrayLike,
    geometry: Geometry,
    *,
    n: int = 20_000,
    seed: int | None = None,
    channel: str = "mumu",
    dark: Any = None,
) -> NDArray[np.float64]:
    """Acceptance on a (mass, ε) grid, cτ from :func:`gammastar.physics.darkphoton.ctau`."""

    masses = np.atleast_1d(np.asarray(masses, dtype=np.float64))
    eps = np.atleast_1d(np.asarray(eps, dtype=np.float64))
    seeds = np.random.SeedSequence(seed).spawn(masses.size)
    out = np.empty((masses.size, eps.size))
    for i, m in enumerate(masses):
        s = int(seeds[i].generate_state(1)[0])
        sample = draw(sampler, float(m), n, geometry, seed=s, channel=channel)
        out[i] = sample.acceptance(ctau_fn(m, eps, dark=dark))
    _check_nonempty(out, geometry)
    return out


def _check_nonempty(acc: NDArray, geometry: Geometry) -> None:
    if not np.any(acc > 0):
        if geometry.window_geometry:
            where = (
                f"l1={geometry.l1}, l2={geometry.l2}, theta {geometry.theta_min}–"
                f"{geometry.theta_max}, plane_z={geometry.plane_z}, r {geometry.r_min}–"
                f"{geometry.r_max}"
            )
        else:
            sh = geometry.shapes()
            where = f"volume {sh.volume}, plane {sh.plane}, daughters {sh.requirements}"
        raise GammastarError(
            f"acceptance is zero everywhere on the grid: check the detector geometry ({where}) "
            "and the mass range"
        )


# --------------------------------------------------------------------------- figures
@dataclass(frozen=True)
class ComparisonGrid:
    """Where :func:`plot_acceptance_comparison` compares two samplers: the curves' masses, the
    map's masses and cτ values, the A′ samples per mass and the seed."""

    masses_curve: tuple[float, ...] = (0.3, 0.6, 0.9)
    """Masses (GeV) of the acceptance-vs-cτ curves (Fig. 9)."""
    masses_map: ArrayLike | None = None
    """Masses (GeV) of the relative-difference map (Fig. 10); ``None``: 16 from 0.25 to 1 GeV."""
    ctaus: ArrayLike | None = None
    """Proper decay lengths (m); ``None``: 61 from 10⁻³ to 10³ m."""
    n: int = 20_000
    """A′ samples per mass."""
    seed: int | None = 0


@figure_style()
def plot_acceptance_comparison(
    sampler_a: SamplerLike,
    sampler_b: SamplerLike,
    geometry: Geometry,
    *,
    grid: ComparisonGrid | None = None,
    labels: tuple[str, str] = ("with background", "without background"),
    path_curves: str | None = None,
    path_map: str | None = None,
) -> dict[str, Any]:
    """Fig. 9 and Fig. 10 analogues: acceptance vs cτ at three masses for two samplers, and the
    relative difference 2(A_a − A_b)/(A_a + A_b) in the (m, cτ) plane.

    Arguments:
        sampler_a, sampler_b: the two A′ kinematics (``labels`` in the legend).
        geometry: the detector.
        grid: masses, cτ values, samples and seed (:class:`ComparisonGrid`; default its
            defaults).
        path_curves, path_map: where to save the two figures (``None``: not saved).

    Returns:
        Dict with ``masses``, ``ctau``, ``acc_a``, ``acc_b``, ``rel_diff`` and the figures.
    """
    import matplotlib.pyplot as plt

    g = grid or ComparisonGrid()
    masses_curve, n, seed = g.masses_curve, g.n, g.seed
    ctaus = np.geomspace(1e-3, 1e3, 61) if g.ctaus is None else np.asarray(g.ctaus, dtype=float)
    masses_map = np.linspace(0.25, 1.0, 16) if g.masses_map is None else np.asarray(g.masses_map)
    a_c = acceptance_grid(sampler_a, masses_curve, ctaus, geometry, n=n, seed=seed)
    b_c = acceptance_grid(sampler_b, masses_curve, ctaus, geometry, n=n, seed=seed)
    fig1, ax = plt.subplots(figsize=(8, 6))
    for i, m in enumerate(masses_curve):
        (line,) = ax.plot(ctaus, a_c[i], label=f"$m_{{A'}}$ = {m:g} GeV, {labels[0]}")
        ax.plot(ctaus, b_c[i], ls="--", color=line.get_color(), label=f"{labels[1]}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-6, 2.0)
    ax.set_xlabel(r"$c\tau_{A'}$ [m]")
    ax.set_ylabel(r"acceptance $\mathcal{E}$")
    ax.legend(fontsize="xx-small")
    fig1.tight_layout()
    a_m = acceptance_grid(sampler_a, masses_map, ctaus, geometry, n=n, seed=seed)
    b_m = acceptance_grid(sampler_b, masses_map, ctaus, geometry, n=n, seed=seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = 2 * (a_m - b_m) / (a_m + b_m)
    fig2, ax2 = plt.subplots(figsize=(8, 6))
    pcm = ax2.pcolormesh(masses_map, ctaus, rel.T, cmap="RdBu_r", vmin=-0.5, vmax=0.5)
    fig2.colorbar(
        pcm, ax=ax2, label=r"$2(\mathcal{E}_a-\mathcal{E}_b)/(\mathcal{E}_a+\mathcal{E}_b)$"
    )
    ax2.set_yscale("log")
    ax2.set_xlabel(r"$m_{A'}$ [GeV]")
    ax2.set_ylabel(r"$c\tau_{A'}$ [m]")
    fig2.tight_layout()

    for fig, path in ((fig1, path_curves), (fig2, path_map)):
        if path is not None:
            save_figure(fig, path)
    return {
        "masses_curve": np.asarray(masses_curve),
        "masses": masses_map,
        "ctau": ctaus,
        "acc_a": a_m,
        "acc_b": b_m,
        "curves_a": a_c,
        "curves_b": b_c,
        "rel_diff": rel,
        "figures": (fig1, fig2),
    }
