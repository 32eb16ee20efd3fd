r"""The standard generator-level A′ recipe per POT, beside the data-driven yield of Eq. 6.

Offers :class:`MesonYields` (mesons per POT and where they came from),
:func:`meson_yields_from_meta` (from a mock file's ``meta``; its backend
:func:`mock_backend`), :data:`CHANNELS` (the recipe's production channels),
:func:`channel_yield` and :func:`recipe` (A′ per POT per ε² per channel, averaged over mass
bins), :func:`standard_recipe_section` (the ``yields.json``
``standard_recipe`` block, with the ratio data-driven / standard per mass bin) and
:func:`summary_rows` (its table).

The recipe is what FORESEE's ``DarkPhoton`` model does (Kling & Trojanowski, arXiv:2105.07077):
the A′ count per POT at mass m is Σ_P N_P BR(P → γA′) + N_ρ |mixing|² + bremsstrahlung, with
N_P the generator's mesons per POT. SensCalc's dark-photon model (Kyselov & Ovchynnikov,
arXiv:2409.11096) mixes the A′ with the other neutral vector mesons too; this module adds to
FORESEE's channels the η′ → γA′, ω → π0A′ and φ → ηA′ decays and the ω and φ mixing, each
channel kept apart, ``in_foresee`` saying whether FORESEE's model has it. Per channel, per ε²:

.. math::

    Y_P(m) = N_P\, 2 |F_P|^2 (1 - m^2/M_P^2)^3\, \mathrm{BR}(P\to\gamma\gamma),\qquad
    Y_V(m) = N_V |F_{VP}|^2\, \mathrm{BR}(V\to P\gamma)\,\lambda_{VP}(m)^{3/2}

(:mod:`gammastar.physics.aprime_meson`; FORESEE takes |F| = 1), and the vector-meson mixing

.. math::

    Y^{\rm mix}_V(m) = N_V \frac{e^2}{g_V^2}
        \frac{M_V^4}{(m^2 - M_V^2)^2 + M_V^2\Gamma_V^2},\qquad
    \frac{e^2}{g_V^2} = \frac{3\,\Gamma(V\to ee)}{\alpha M_V}

(FORESEE's ρ term with e/g_ρ = 0.3/5; here e/g_V from the measured Γ(V → ee), vector-meson
dominance: Γ(V → ee) = 4πα² M_V / (3 g_V²); for the ρ 3Γ_ee/(αM_ρ) = 0.0037 against FORESEE's
0.0036). Integrated over a narrow peak the mixing term gives N_V (3π M_V / 2α) BR(V → ee):
what Eq. 6 returns from the V → ℓℓ peak of the data (tests). The proton bremsstrahlung is
:func:`gammastar.physics.bremsstrahlung.aprime_yield_per_pot` (the ``theory.brems_aprime``
curve's central value; :func:`brems_interpolated` evaluates it fast).

Every channel is averaged over each mass bin of the data-driven table (Gauss–Legendre on
sub-intervals of at most :data:`MAX_STEP`, finer than the ω width): Eq. 6 is the bin's count
over its width, so the two compare bin by bin. The data's mass resolution is not folded in:
next to the ω and φ the bin ratio shows the resolution; their integrals over the peak compare.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import InputError
from gammastar.physics import aprime_meson
from gammastar.physics import bremsstrahlung as br
from gammastar.physics.aprime_meson import pdg_branching_ratio
from gammastar.physics.bremsstrahlung import BremsSettings
from gammastar.physics.constants import ALPHA_EM, PDGID, mass, width
from gammastar.physics.target import interaction_probability

MESONS: tuple[str, ...] = ("pi0", "eta", "eta_prime", "rho", "omega", "phi")
"""The mesons the recipe needs per POT (names of :data:`gammastar.physics.constants.PDGID`)."""

MAX_STEP = 0.002
"""Largest sub-interval (GeV) of the bin averages: a quarter of the ω width (8.7 MeV)."""

_GL_X, _GL_W = np.polynomial.legendre.leggauss(8)

_EE_MODE = {"rho": "rho->ee", "omega": "omega->ee", "phi": "phi->ee"}

FORESEE = "FORESEE DarkPhoton model, Kling & Trojanowski arXiv:2105.07077"
SENSCALC = "SensCalc dark photon, Kyselov & Ovchynnikov arXiv:2409.11096"


@dataclass(frozen=True)
class Channel:
    """One production channel of the recipe."""

    name: str
    parent: str
    """The meson whose yield per POT scales the channel (``"proton"`` for bremsstrahlung)."""
    kind: str
    """``decay`` (P → γA′, V → PA′), ``mixing`` (A′–V mixing) or ``brems``."""
    process: str
    in_foresee: bool
    """Whether FORESEE's DarkPhoton model has the channel."""
    reference: str


CHANNELS: tuple[Channel, ...] = (
    Channel("pi0", "pi0", "decay", "pi0 -> gamma A'", True,
            f"{FORESEE}; BR: Batell, Pospelov, Ritz arXiv:0906.5614"),
    Channel("eta", "eta", "decay", "eta -> gamma A'", True,
            f"{FORESEE}; BR: Batell, Pospelov, Ritz arXiv:0906.5614"),
    Channel("eta_prime", "eta_prime", "decay", "eta' -> gamma A'", False,
            "beyond FORESEE's model; BR as for pi0, eta (arXiv:0906.5614)"),
    Channel("omega", "omega", "decay", "omega -> pi0 A'", False,
            "beyond FORESEE's model; BR: Landsberg, Phys. Rep. 128 (1985) 301"),
    Channel("phi", "phi", "decay", "phi -> eta A'", False,
            "beyond FORESEE's model; BR: Landsberg, Phys. Rep. 128 (1985) 301"),
    Channel("rho_mixing", "rho", "mixing", "A'-rho mixing", True,
            f"{FORESEE} (e/g_rho = 0.3/5); here e/g_V from Gamma(V -> ee)"),
    Channel("omega_mixing", "omega", "mixing", "A'-omega mixing", False,
            f"FORESEE's rho term for the omega; mixing with neutral vector mesons: {SENSCALC}"),
    Channel("phi_mixing", "phi", "mixing", "A'-phi mixing", False,
            f"FORESEE's rho term for the phi; mixing with neutral vector mesons: {SENSCALC}"),
    Channel("brems", "proton", "brems", "p bremsstrahlung (FWW)", True,
            "Bluemlein & Brunner arXiv:1311.3870; gammastar.physics.bremsstrahlung"),
)  # fmt: skip
"""The recipe's channels, in the order of the output."""


@dataclass(frozen=True)
class MesonYields:
    """Mesons per POT, by name (:data:`MESONS`), and where the numbers came from."""

    per_pot: Mapping[str, float]
    source: Mapping[str, Any] = field(default_factory=dict)
    """``kind`` (e.g. ``mock_parametric``, ``mock_pythia``, ``given``), ``files`` and what
    was multiplied (``detail``)."""

    def __post_init__(self) -> None:
        for k, v in self.per_pot.items():
            if not (math.isfinite(float(v)) and float(v) >= 0):
                raise InputError(f"meson yields: {k} per POT must be finite and >= 0, got {v!r}")

    def get(self, meson: str) -> float:
        """N per POT of ``meson``; 0 when the source does not give it (the channel drops out)."""
        return float(self.per_pot.get(meson, 0.0))


# ------------------------------------------------------------------------- channels
def mixing_coupling2(meson: str) -> float:
    r"""(e/g_V)² = 3Γ(V → ee)/(α M_V) of ρ, ω or φ (vector-meson dominance).

    References:
        Γ(V → ee) = 4πα² M_V/(3 g_V²): Sakurai, *Currents and Mesons* (1969); O'Connell et al.,
        Prog. Part. Nucl. Phys. 39 (1997) 201. PDG BR(V → ee) × Γ_V.

    Example:
        >>> abs(mixing_coupling2("rho") / (0.3 / 5) ** 2 - 1) < 0.1   # FORESEE's e/g_rho
        True
    """
    gamma_ee = pdg_branching_ratio(_EE_MODE[meson]) * width(meson)
    return 3.0 * gamma_ee / (ALPHA_EM * mass(meson))


def mixing_fraction(m: ArrayLike, meson: str) -> NDArray[np.float64]:
    r"""A′ per V meson per ε² from A′–V mixing: (e/g_V)² M_V⁴ / ((m² − M_V²)² + M_V²Γ_V²).

    References:
        FORESEE ``DarkPhoton`` (arXiv:2105.07077), its ρ term; module docstring.

    Example:
        >>> f = mixing_fraction([0.77526], "rho")   # (e/g)² (M/Γ)² at the peak
        >>> bool(0.08 < f[0] < 0.12)
        True
    """
    m = np.asarray(m, dtype=np.float64)
    mv, gv = mass(meson), width(meson)
    return mixing_coupling2(meson) * mv**4 / ((m**2 - mv**2) ** 2 + mv**2 * gv**2)


def channel_yield(
    channel: Channel,
    m: ArrayLike,
    mesons: MesonYields,
    *,
    brems: Callable[[NDArray[np.float64]], NDArray[np.float64]] | None = None,
    form_factors: bool = False,
) -> NDArray[np.float64]:
    """A′ per POT per ε² of one channel at the masses ``m`` (GeV).

    Arguments:
        channel: an entry of :data:`CHANNELS`.
        m: A′ masses, GeV.
        mesons: mesons per POT.
        brems: A′ per POT per ε² of the bremsstrahlung at m (None: the channel is 0).
        form_factors: the decays with the transition form factors of
            :func:`gammastar.physics.aprime_meson.default_form_factor` (FORESEE: |F| = 1).

    Example:
        >>> y = MesonYields({"pi0": 2.0})
        >>> float(channel_yield(CHANNELS[0], [0.0], y)[0] / (2.0 * 2.0)) > 0.98   # 2 BR(γγ) N
        True
    """
    m = np.asarray(m, dtype=np.float64)
    if channel.kind == "brems":
        return np.zeros_like(m) if brems is None else np.asarray(brems(m), dtype=np.float64)
    n = mesons.get(channel.parent)
    if n == 0.0:
        return np.zeros_like(m)
    if channel.kind == "mixing":
        return n * mixing_fraction(m, channel.parent)
    return n * aprime_meson.branching_ratio(channel.parent, m, form_factors=form_factors)


def _bin_nodes(edges: NDArray[np.float64]) -> tuple[NDArray, NDArray, NDArray]:
    """Gauss–Legendre nodes and weights of every bin on sub-intervals ≤ :data:`MAX_STEP`;
    returns (nodes, weights / bin width, bin index of each node)."""
    nodes, weights, index = [], [], []
    for i, (a, b) in enumerate(itertools.pairwise(edges)):
        k = max(1, math.ceil((b - a) / MAX_STEP))
        sub = np.linspace(a, b, k + 1)
        half = 0.5 * np.diff(sub)[:, None]
        mid = 0.5 * (sub[:-1] + sub[1:])[:, None]
        nodes.append((mid + half * _GL_X).ravel())
        weights.append((half * _GL_W).ravel() / (b - a))
        index.append(np.full(k * _GL_X.size, i))
    return np.concatenate(nodes), np.concatenate(weights), np.concatenate(index)


def recipe(
    edges: ArrayLike,
    mesons: MesonYields,
    *,
    brems: Callable[[NDArray[np.float64]], NDArray[np.float64]] | None = None,
    form_factors: bool = False,
    channels: Sequence[Channel] = CHANNELS,
) -> dict[str, NDArray[np.float64]]:
    """Each channel's A′ per POT per ε² averaged over the mass bins ``edges`` (GeV).

    Returns:
        ``{channel name: array of len(edges) − 1}``.

    Example:
        >>> y = recipe([0.0, 0.01], MesonYields({"pi0": 1.0}), channels=CHANNELS[:1])
        >>> bool(abs(y["pi0"][0] / 2 - 0.988) < 0.01)
        True
    """
    edges = np.asarray(edges, dtype=np.float64)
    x, w, idx = _bin_nodes(edges)
    n_bins = len(edges) - 1
    return {
        c.name: np.bincount(
            idx, w * channel_yield(c, x, mesons, brems=brems, form_factors=form_factors), n_bins
        ).astype(np.float64)
        for c in channels
    }


def brems_interpolated(
    settings: BremsSettings, lo: float, hi: float, n: int = 160
) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    """:func:`gammastar.physics.bremsstrahlung.aprime_yield_per_pot` for masses in [lo, hi], fast:
    the part without |F_1(m²)|² (smooth in m) on ``n`` log-spaced masses, interpolated in
    log–log, times |F_1(m²)|² (the narrow ω pole) at each mass; the approach of
    :func:`gammastar.physics.bremsstrahlung.mcp_yield_per_pot`. Agrees with the direct
    quadrature to 2e-4 relative (tests)."""
    st = settings
    grid = np.geomspace(max(lo, 1e-4), hi, n)
    smooth = st.interaction_probability * st.normalisation * br.emission_probability(
        grid, beam_energy=st.beam_energy, z_range=(st.z_min, st.z_max), pt_max=st.pt_max,
        cutoff=st.cutoff, form_factor=False,
    )  # fmt: skip
    log_grid, log_smooth = np.log(grid), np.log(smooth)

    def brems(m: NDArray[np.float64]) -> NDArray[np.float64]:
        m = np.asarray(m, dtype=np.float64)
        value = np.exp(np.interp(np.log(np.clip(m, grid[0], grid[-1])), log_grid, log_smooth))
        return value * np.abs(br.timelike_form_factor(m)) ** 2

    return brems


# ------------------------------------------------------------------------- meson yields
def _name(key: Any) -> str | None:
    """A meson name of :data:`MESONS` from a name or a PDG id (``111``, ``"221"``)."""
    if isinstance(key, str) and key in MESONS:
        return key
    try:
        pid = int(key)
    except (TypeError, ValueError):
        return None
    return next((n for n in MESONS if PDGID[n] == pid), None)


def mock_backend(meta: Mapping[str, Any]) -> str:
    """A mock file's meson backend from its ``meta``: ``pythia`` when ``meta.backend`` or
    ``meta.mock_config.backend`` says so or a ``meta.pythia`` block is there, else
    ``parametric``.

    Example:
        >>> mock_backend({"mock_config": {"backend": "pythia"}}), mock_backend({})
        ('pythia', 'parametric')
    """
    backend = meta.get("backend") or (meta.get("mock_config") or {}).get("backend")
    return "pythia" if backend == "pythia" or "pythia" in meta else "parametric"


def _per_collision_pythia(meta: Mapping[str, Any], where: str) -> dict[str, float]:
    """A PYTHIA mock's mesons per inelastic collision, counted in the generator:
    ``meta.pythia.multiplicity_per_collision`` (or ``meta.meson_multiplicities``), {meson name or
    PDG id: mean number per collision, or ``{"per_collision": n}``}."""
    raw = (meta.get("pythia") or {}).get("multiplicity_per_collision")
    key = "pythia.multiplicity_per_collision"
    if raw is None:
        raw, key = meta.get("meson_multiplicities"), "meson_multiplicities"
    if not isinstance(raw, Mapping):
        raise InputError(
            f"{where}: a PYTHIA mock (backend pythia) without meta.pythia.multiplicity_per_collision"
        )
    out = {}
    for k, value in raw.items():
        name = _name(k)
        if name is None:
            continue
        v = value.get("per_collision") if isinstance(value, Mapping) else value
        try:
            if v is None:
                raise TypeError
            out[name] = float(v)
        except (TypeError, ValueError):
            raise InputError(f"{where}: meta.{key}.{k} is not a number") from None
    return out


def _per_collision_parametric(meta: Mapping[str, Any], where: str) -> dict[str, float]:
    """The parametric cocktail's mesons per collision: ⟨n_ω⟩ × σ_m/σ_ω in the mock's target
    (:meth:`gammastar.config.mock.MockConfig.omega_per_collision`,
    :meth:`gammastar.config.mock.MockConfig.sigma_rel`, from the file's ``meta.mock_config``)."""
    from gammastar.config.mock import MockConfig

    mc = meta.get("mock_config")
    if not isinstance(mc, Mapping):
        raise InputError(f"{where}: no meta.mock_config (not a gammastar mock file?)")
    try:  # the keys that set the multiplicities (the whole dump repeats defaults that some
        # keys refuse when given explicitly)
        cfg = MockConfig.model_validate(
            {
                "target": mc.get("target", "Pb"),
                "n_omega_per_collision": mc.get("n_omega_per_collision"),
                "cross_sections": mc["cross_sections"],
                "electrons": {"pi0": {"sigma_rel": mc["electrons"]["pi0"]["sigma_rel"]}},
            }
        )
    except (KeyError, TypeError) as err:
        raise InputError(f"{where}: meta.mock_config lacks {err} for the meson yields") from None
    except ValueError as err:
        first = str(err).splitlines()[0]
        raise InputError(f"{where}: meta.mock_config is not a mock config ({first})") from None
    n_omega = cfg.omega_per_collision()
    return {m: n_omega * cfg.sigma_rel(m) for m in MESONS}


def meson_yields_from_meta(metas: Sequence[tuple[str, Mapping[str, Any]]]) -> MesonYields:
    """Mesons per POT of the mock input files (their ``meta`` JSON, DEVELOPERS.md).

    Per file: mesons per inelastic collision × P_int(L) (``meta.target_interaction_lengths``,
    :func:`gammastar.physics.target.interaction_probability`): the normalisation the mock's
    N_POT is built on (:meth:`gammastar.mock.generator.MockGenerator.n_pot`). A PYTHIA mock
    (``meta.mock_config.backend`` ``pythia``, or a ``meta.pythia`` block) gives the
    multiplicities it counted (:func:`_per_collision_pythia`); the parametric cocktail the
    config's ⟨n_ω⟩ × σ_m/σ_ω. Several files: the N_POT-weighted mean.

    Arguments:
        metas: (file name, its meta) pairs.

    Raises:
        InputError: a file without what its backend needs, naming it.
    """
    if not metas:
        raise InputError("meson yields: no input file with a 'meta'")
    total: dict[str, float] = {}
    n_total, kinds, files = 0.0, set(), []
    for where, meta in metas:
        backend = mock_backend(meta)
        per_coll = (
            _per_collision_pythia(meta, where)
            if backend == "pythia"
            else _per_collision_parametric(meta, where)
        )
        try:
            p_int = float(interaction_probability(float(meta["target_interaction_lengths"])))
            n_pot = float(meta.get("n_pot") or 1.0)
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{where}: meta.target_interaction_lengths missing") from None
        for k, v in per_coll.items():
            total[k] = total.get(k, 0.0) + n_pot * v * p_int
        n_total += n_pot
        kinds.add(f"mock_{backend}")
        files.append(where)
    detail = (
        "meta.pythia.multiplicity_per_collision (counted by PYTHIA) x P_int(L)"
        if kinds == {"mock_pythia"}
        else "mock_config: n_omega_per_collision x cross_sections (pi0: electrons.pi0.sigma_rel)"
        " x P_int(L)"
    )
    return MesonYields(
        {k: v / n_total for k, v in total.items()},
        {"kind": ",".join(sorted(kinds)), "files": files, "detail": detail},
    )


# ------------------------------------------------------------------------- yields.json
def _ratio(num: Sequence[Any], den: NDArray[np.float64]) -> list[float | None]:
    out: list[float | None] = []
    for a, b in zip(num, den, strict=True):
        ok = a is not None and np.isfinite(a) and b > 0
        out.append(float(a) / float(b) if ok else None)
    return out


def standard_recipe_section(
    aprime: Mapping[str, Any],
    mesons: MesonYields,
    *,
    brems: Callable[[NDArray[np.float64]], NDArray[np.float64]] | None = None,
    brems_settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``yields.json`` ``standard_recipe`` block on the data-driven table's mass bins.

    Arguments:
        aprime: the document's ``aprime`` (``mass``, ``bin_edges``, ``per_pot_per_eps2``,
            ``stat_err``).
        mesons: mesons per POT and their source.
        brems: the bremsstrahlung A′ per POT per ε² at m (None: not in the recipe).
        brems_settings: how ``brems`` was computed (recorded).

    Returns:
        ``mass``, ``bin_edges``, ``per_pot_per_eps2`` (all channels, |F| = 1),
        ``per_pot_per_eps2_foresee`` (FORESEE's channels), ``channels`` {name: per bin},
        ``channel_info``, ``with_form_factors`` (the decays with transition form factors),
        ``meson_yields_per_pot``, ``meson_yields_source``, ``ratio_data_driven`` (+ ``_err``,
        ``_foresee``, ``_form_factors``): data-driven / standard per bin, null where either
        is missing or the recipe is 0.
    """
    edges = np.asarray(aprime["bin_edges"], dtype=np.float64)
    chans = recipe(edges, mesons, brems=brems)
    ff_decays = recipe(
        edges, mesons, form_factors=True, channels=[c for c in CHANNELS if c.kind == "decay"]
    )
    total = np.sum(list(chans.values()), axis=0)
    foresee = np.sum([chans[c.name] for c in CHANNELS if c.in_foresee], axis=0)
    total_ff = total + sum(ff_decays[k] - chans[k] for k in ff_decays)
    data = [None if v is None else float(v) for v in aprime["per_pot_per_eps2"]]
    err = [None if v is None else float(v) for v in aprime["stat_err"]]
    return {
        "mass": [float(v) for v in aprime["mass"]],
        "bin_edges": edges.tolist(),
        "per_pot_per_eps2": total.tolist(),
        "per_pot_per_eps2_foresee": foresee.tolist(),
        "channels": {k: v.tolist() for k, v in chans.items()},
        "channel_info": {
            c.name: {
                "process": c.process,
                "parent": c.parent,
                "kind": c.kind,
                "in_foresee": c.in_foresee,
                "reference": c.reference,
            }
            for c in CHANNELS
        },
        "with_form_factors": {
            "per_pot_per_eps2": total_ff.tolist(),
            "channels": {k: v.tolist() for k, v in ff_decays.items()},
            "form_factors": "gammastar.physics.aprime_meson.default_form_factor",
        },
        "meson_yields_per_pot": {k: float(v) for k, v in mesons.per_pot.items()},
        "meson_yields_source": dict(mesons.source),
        "brems": dict(brems_settings or {}) if brems is not None else None,
        "ratio_data_driven": _ratio(data, total),
        "ratio_data_driven_err": _ratio(err, total),
        "ratio_data_driven_foresee": _ratio(data, foresee),
        "ratio_data_driven_form_factors": _ratio(data, total_ff),
        "averaging": "each channel averaged over the data-driven bin (Gauss-Legendre, "
        f"sub-intervals <= {MAX_STEP} GeV); the data's mass resolution is not folded in",
        "form_factors": "none (|F| = 1, as FORESEE); with_form_factors: the decays with them",
    }


def summary_rows(section: Mapping[str, Any], aprime: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per mass bin of ``section`` (``yields.json`` ``standard_recipe``): ``mass``, ``data``
    (``aprime.per_pot_per_eps2``), ``standard``, ``ratio``, ``ratio_err``, ``ratio_foresee``,
    ``ratio_form_factors`` and ``dominant`` (the largest channel), for tables (the report)."""
    chans = section.get("channels") or {}
    data = list(aprime.get("per_pot_per_eps2") or [])
    rows = []
    for i, m in enumerate(section.get("mass") or []):
        shares = {k: v[i] for k, v in chans.items() if i < len(v) and v[i] is not None}

        def at(key: str, i: int = i) -> Any:
            values = section.get(key) or []
            return values[i] if i < len(values) else None

        rows.append({
            "mass": m, "data": data[i] if i < len(data) else None,
            "standard": at("per_pot_per_eps2"), "ratio": at("ratio_data_driven"),
            "ratio_err": at("ratio_data_driven_err"),
            "ratio_foresee": at("ratio_data_driven_foresee"),
            "ratio_form_factors": at("ratio_data_driven_form_factors"),
            "dominant": max(shares, key=lambda k: shares[k]) if shares else None,
        })  # fmt: skip
    return rows
