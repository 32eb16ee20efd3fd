r"""The standard recipe's A′ as a :class:`~gammastar.source.source.Source`: the yield per POT
per ε² of :func:`gammastar.yields.standard_recipe.recipe` and kinematics drawn from the
recipe's channels, the way FORESEE (arXiv:2105.07077) and SensCalc (arXiv:2409.11096) build
their A′ spectra (``reach.production: standard_recipe``).

Offers :class:`MesonSpectra` (a parametric mock's meson spectra), :class:`PoolSpectra` (a
PYTHIA mock's meson pool, read from its file), :func:`meson_spectra` (the one of the files'
backend), :func:`decay_to_lab` (the two-body decay P → γA′ or V → PA′ of given parents),
:class:`RecipeKinematics` (the A′ (q_T, E) at a mass, channels mixed by their yields) and
:func:`recipe_source`.

Kinematics per channel at A′ mass m:

* P → γA′ (π0, η, η′) and V → PA′ (ω → π0, φ → η): the parent's lab (p_T, y) from the
  mock's mesons (below) at its PDG mass, the A′ isotropic in the parent frame with
  E* = (M² + m² − m_X²)/(2M) (m_X = 0 for the photon), boosted to the lab;
* A′–V mixing (ρ, ω, φ): the A′ takes a vector meson's lab (p_T, y), its own mass m
  (FORESEE's ρ channel: the ρ spectrum for the A′);
* proton bremsstrahlung: (z, p_T) from the FWW density of
  :func:`gammastar.physics.bremsstrahlung.sample_emission`, E = z E_beam.

Approximations: the vector mesons' decays isotropic (unpolarised parents), the mesons at
their PDG masses (the ρ's line shape enters only through the mixing's yield), no secondary
production in a thick dump, the data's yield scale (P_int and the A-dependence) applied to
every channel, bremsstrahlung included. The mesons' (p_T, y) come from the mock file, never
from the data: a parametric mock's spectra (``meta.mock_config``, the cocktail's
parametrisation), or a PYTHIA mock's own mesons (``mock.backend: pythia``: the pool its
sources were drawn from, the file's ``meson_pool`` tree described by ``meta.meson_pool``,
resampled with replacement; float32 in the file). Several PYTHIA files pool their mesons;
parametric and PYTHIA files are not mixed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from gammastar.core import rundir
from gammastar.errors import ConfigError, InputError
from gammastar.physics import bremsstrahlung as br
from gammastar.physics.constants import mass as pdg_mass
from gammastar.physics.kinematics import boost, four_momentum, two_body_momentum
from gammastar.physics.sampling import sample_pt_y
from gammastar.source.production import Yields
from gammastar.source.source import Source
from gammastar.yields.npot import meta_from_root
from gammastar.yields.standard_recipe import (
    CHANNELS,
    Channel,
    MesonYields,
    brems_interpolated,
    channel_yield,
    meson_yields_from_meta,
    mock_backend,
    recipe,
)
from gammastar.yields.theory import brems_settings

__all__ = [
    "MesonSpectra", "PoolSpectra", "RecipeKinematics", "Spectra", "decay_to_lab", "meson_spectra",
    "recipe_source",
]  # fmt: skip

DECAY_PARTNER: dict[str, str | None] = {
    "pi0": None, "eta": None, "eta_prime": None, "omega": "pi0", "phi": "eta",
}  # fmt: skip
"""The A′'s partner in each decay channel: the photon (``None``) or the pseudoscalar."""


@dataclass(frozen=True)
class MesonSpectra:
    """The parametric cocktail's meson spectra (docs/explanation/physics.md §3.1): m_T^a e^{−m_T/T}
    p_T, Gaussian rapidity truncated at the beam energy; the π0 its own T and width."""

    temperature: float
    power: float
    y_mean: float
    y_sigma: float
    pi0_temperature: float
    pi0_y_sigma: float
    beam_energy: float | None

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], where: str) -> MesonSpectra:
        """The spectra of a mock file's ``meta`` (``mock_config``, ``beam_energy``).

        Raises:
            InputError: a PYTHIA mock (its mesons are a pool: :class:`PoolSpectra`) or a
                ``meta`` without the spectra, naming the file.
        """
        mc = meta.get("mock_config")
        if not isinstance(mc, Mapping):
            raise InputError(f"{where}: no meta.mock_config (not a gammastar mock file?)")
        if mc.get("backend", "parametric") != "parametric":
            raise InputError(
                f"{where}: a {mc.get('backend')} mock has no parametric spectra; its mesons are "
                "its meson pool (gammastar.source.recipe.PoolSpectra)"
            )
        try:
            pi0 = mc["electrons"]["pi0"]
            return cls(
                float(mc["pt_temperature"]), float(mc["pt_mt_power"]),
                float(mc["rapidity_mean"]), float(mc["rapidity_sigma"]),
                float(pi0["pt_temperature"]), float(pi0["rapidity_sigma"]),
                None if meta.get("beam_energy") is None else float(meta["beam_energy"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"{where}: meta.mock_config lacks the meson spectra ({err})") from None

    def pt_y(
        self, rng: np.random.Generator, parent: str, masses: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Lab (p_T, y) of ``masses.size`` mesons ``parent`` (the mock's
        :func:`~gammastar.physics.sampling.sample_pt_y`)."""
        pi0 = parent == "pi0"
        temp = self.pi0_temperature if pi0 else self.temperature
        sig = self.pi0_y_sigma if pi0 else self.y_sigma
        return sample_pt_y(rng, masses, temp, self.power, self.y_mean, sig, self.beam_energy)


@dataclass(frozen=True, eq=False)
class PoolSpectra:
    """A PYTHIA mock's own mesons: the lab (p_T, y) per species of the pool its sources were
    drawn from (:class:`gammastar.mock.pythia.MesonPool`, the file's ``meson_pool`` tree),
    resampled with replacement as the mock's sources resample it.

    Arguments:
        pt: lab p_T per species (package names: ``pi0``, ``eta``, ...), GeV.
        y: lab rapidity per species.
        where: the file(s) the pool came from (for the errors).
    """

    pt: Mapping[str, NDArray[np.float64]]
    y: Mapping[str, NDArray[np.float64]]
    where: str

    @classmethod
    def from_files(cls, metas: Sequence[tuple[str, Mapping[str, Any]]]) -> PoolSpectra:
        """The pools of PYTHIA mock files ((file, its ``meta``) pairs), concatenated per species.

        Raises:
            InputError: a file without ``meta.meson_pool`` or whose pool tree cannot be read.
        """
        pt: dict[str, list[NDArray[np.float64]]] = {}
        y: dict[str, list[NDArray[np.float64]]] = {}
        for where, meta in metas:
            for name, (p, r) in _read_pool(where, meta).items():
                pt.setdefault(name, []).append(p)
                y.setdefault(name, []).append(r)
        where = ", ".join(w for w, _ in metas)
        return cls({k: np.concatenate(v) for k, v in pt.items()},
                   {k: np.concatenate(v) for k, v in y.items()}, where)  # fmt: skip

    def require(self, parents: Sequence[str]) -> None:
        """Check that the pool holds mesons of each of ``parents``.

        Raises:
            InputError: the first species without mesons, naming the file(s).
        """
        for parent in parents:
            if parent not in self.pt or self.pt[parent].size == 0:
                raise InputError(
                    f"{self.where}: no {parent} in the meson pool (tree meson_pool); the standard "
                    f"recipe's {parent} channels need them (raise mock.pythia.collisions)"
                )

    def pt_y(
        self, rng: np.random.Generator, parent: str, masses: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Lab (p_T, y) of ``masses.size`` pool mesons ``parent`` drawn with replacement (the
        masses are the caller's: the pool's kinematics at any mass, as the mock's sources).

        Raises:
            InputError: no ``parent`` in the pool, naming the file.
        """
        self.require([parent])
        i = rng.integers(0, self.pt[parent].size, masses.size)
        return self.pt[parent][i], self.y[parent][i]


def _read_pool(
    where: str, meta: Mapping[str, Any]
) -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """{species: (p_T, y)} of a PYTHIA mock file's pool tree (``meta.meson_pool``: its
    ``tree`` and the ``species`` name → code of its ``species`` branch), as float64.

    Raises:
        InputError: no ``meta.meson_pool`` or an unreadable tree, naming the file.
    """
    import uproot  # deferred: uproot is heavy and only a PYTHIA mock's pool needs it here

    spec = meta.get("meson_pool")
    if not isinstance(spec, Mapping):
        raise InputError(
            f"{where}: a PYTHIA mock without meta.meson_pool: its meson pool is not in the file "
            "(regenerate it with gammastar generate; reach.recipe_mock)"
        )
    try:
        codes = {str(k): int(v) for k, v in spec["species"].items()}
        with uproot.open(where) as f:
            a = f[str(spec["tree"])].arrays(["species", "pt", "y"], library="np")
    except (KeyError, TypeError, ValueError, AttributeError, OSError) as err:
        raise InputError(f"{where}: meson pool (meta.meson_pool) unreadable: {err}") from None
    out = {}
    for name, code in codes.items():
        sel = a["species"] == code
        out[name] = (a["pt"][sel].astype(np.float64), a["y"][sel].astype(np.float64))
    return out


class Spectra(Protocol):
    """The mesons' lab kinematics the recipe draws from: :class:`MesonSpectra`,
    :class:`PoolSpectra`."""

    def pt_y(
        self, rng: np.random.Generator, parent: str, masses: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...


def meson_spectra(metas: Sequence[tuple[str, Mapping[str, Any]]]) -> MesonSpectra | PoolSpectra:
    """The mesons' spectra of the recipe's mock files ((file, its ``meta``) pairs): their
    parametric spectra (:meth:`MesonSpectra.from_meta`; the files must agree) or, for PYTHIA
    mocks (:func:`~gammastar.yields.standard_recipe.mock_backend`), their pooled mesons
    (:meth:`PoolSpectra.from_files`).

    Raises:
        InputError: parametric and PYTHIA files mixed, parametric spectra that differ, or a
            file without its spectra or pool, naming the files.
    """
    backends = {mock_backend(meta) for _, meta in metas}
    files = ", ".join(w for w, _ in metas)
    if backends == {"pythia"}:
        return PoolSpectra.from_files(metas)
    if len(backends) > 1:
        raise InputError(f"{files}: parametric and PYTHIA mock files mixed (reach.recipe_mock)")
    spectra = {MesonSpectra.from_meta(meta, where) for where, meta in metas}
    if len(spectra) > 1:
        raise InputError(f"{files}: the mock files' meson spectra differ")
    return spectra.pop()


def decay_to_lab(
    rng: np.random.Generator, parent: NDArray[np.float64], m_parent: float, m: float,
    m_partner: float = 0.0,
) -> NDArray[np.float64]:  # fmt: skip
    """Lab four-momenta (4, n) of the A′ (mass ``m``) of the two-body decays of ``parent``
    (lab four-momenta (4, n), mass ``m_parent``) into A′ + a partner of mass ``m_partner``:
    isotropic in the parent frame with momentum p* = √λ(M², m², m_X²)/(2M)
    (:func:`~gammastar.physics.kinematics.two_body_momentum`), E* = (M² + m² − m_X²)/(2M),
    boosted to the lab.

    References:
        PDG Review of Particle Physics, "Kinematics", Eqs. 49.17 (p*), 49.8 (boost).

    Example:
        >>> p = np.array([[0.0], [0.0], [0.0], [0.135]])   # a π0 at rest
        >>> e = decay_to_lab(np.random.default_rng(1), p, 0.135, 0.05)[3, 0]
        >>> bool(abs(e - (0.135**2 + 0.05**2) / (2 * 0.135)) < 1e-12)
        True
    """
    n = parent.shape[1]
    p_star = two_body_momentum(m_parent, m, m_partner)
    cos = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    sin = np.sqrt(1.0 - cos**2)
    rest = np.stack([p_star * sin * np.cos(phi), p_star * sin * np.sin(phi), p_star * cos,
                     np.full(n, np.hypot(p_star, m))])  # fmt: skip
    return boost(rest, parent, m_parent)


class RecipeKinematics:
    """The recipe's A′ kinematics at a mass: ``sample(mass, n, seed)`` draws each channel's
    share by its A′ yield there (:func:`~gammastar.yields.standard_recipe.channel_yield`, FORESEE's
    |F| = 1) and its kinematics (module docstring); none labelled extrapolated (a model
    throughout, stated by the source's description).

    Arguments:
        mesons: mesons per POT (the channels' weights).
        spectra: the mesons' lab spectra (:class:`MesonSpectra`, :class:`PoolSpectra`).
        brems: bremsstrahlung settings (``None``: no bremsstrahlung channel).
        channels: the recipe's channels (default all of
            :data:`gammastar.yields.standard_recipe.CHANNELS`).
    """

    def __init__(
        self, mesons: MesonYields, spectra: Spectra, brems: br.BremsSettings | None,
        channels: Sequence[Channel] = CHANNELS,
    ) -> None:  # fmt: skip
        self.mesons, self.spectra, self.brems_settings = mesons, spectra, brems
        self.channels = tuple(c for c in channels if brems is not None or c.kind != "brems")

    def weights(self, mass: float) -> NDArray[np.float64]:
        """Each channel's A′ per POT per ε² at ``mass`` (the order of ``channels``)."""
        m = np.array([float(mass)])
        out = []
        for c in self.channels:
            if c.kind == "brems":
                assert self.brems_settings is not None
                out.append(float(br.aprime_yield_per_pot(m, self.brems_settings)[0]))
            else:
                out.append(float(channel_yield(c, m, self.mesons)[0]))
        return np.asarray(out)

    def _channel(self, rng: np.random.Generator, c: Channel, m: float, n: int) -> NDArray:
        """(q_T, E) of ``n`` A′ of channel ``c``, shape (2, n)."""
        if c.kind == "brems":
            st = self.brems_settings
            assert st is not None
            z, pt = br.sample_emission(m, n, rng, st)
            return np.stack([pt, z * st.beam_energy])
        mp = pdg_mass(c.parent)
        pt, y = self.spectra.pt_y(rng, c.parent, np.full(n, mp))
        phi = rng.uniform(0.0, 2.0 * np.pi, n)
        if c.kind == "mixing":  # the vector meson's (p_T, y), the A′'s mass
            p = four_momentum(np.full(n, m), pt, y, phi)
        else:
            partner = DECAY_PARTNER[c.parent]
            mx = 0.0 if partner is None else pdg_mass(partner)
            p = decay_to_lab(rng, four_momentum(np.full(n, mp), pt, y, phi), mp, m, mx)
        return np.stack([np.hypot(p[0], p[1]), p[3]])

    def sample(self, mass: float, n: int, seed: int | None = None) -> dict[str, NDArray]:
        """``n`` A′ at ``mass``: ``qT``, ``E`` (GeV), ``extrapolated`` (all False) and
        ``channel`` (the index into ``channels``).

        Raises:
            InputError: no channel produces an A′ of this mass.
        """
        rng = np.random.default_rng(seed)
        w = self.weights(mass)
        if not np.sum(w) > 0:
            raise InputError(f"standard recipe: no channel produces an A' of {mass:g} GeV")
        counts = rng.multinomial(n, w / np.sum(w))
        parts, index = [], []
        for k, (c, nk) in enumerate(zip(self.channels, counts, strict=True)):
            if nk:
                parts.append(self._channel(rng, c, float(mass), int(nk)))
                index.append(np.full(nk, k))
        qe = np.concatenate(parts, axis=1)
        return {"qT": qe[0], "E": qe[1], "extrapolated": np.zeros(n, dtype=bool),
                "channel": np.concatenate(index)}  # fmt: skip


def _mock_files(config: Any, block: Mapping[str, Any] | None) -> list[Path]:
    """``reach.recipe_mock`` (resolved), else the files the yields' ``standard_recipe`` names."""
    rc = config.reach
    if rc.recipe_mock:
        return [Path(config.resolve(f)) for f in rc.recipe_mock]
    files = ((block or {}).get("meson_yields_source") or {}).get("files")
    if not files:
        raise ConfigError(
            f"{config.source or '<config>'}: reach.recipe_mock: not given, and {rc.yields} has "
            "no standard_recipe block naming its mock files; name a mock file (gammastar generate)"
        )
    return [Path(f) for f in files]


def _brems(config: Any, block: Mapping[str, Any] | None) -> br.BremsSettings:
    """The bremsstrahlung settings the yields' ``standard_recipe`` block recorded, else the
    config's (:func:`gammastar.yields.theory.brems_settings`)."""
    rec = (block or {}).get("brems")
    if not isinstance(rec, Mapping):
        return brems_settings(config)
    names = {f.name for f in dataclasses.fields(br.BremsSettings)}
    return br.BremsSettings(**{k: float(v) for k, v in rec.items() if k in names})


def recipe_source(config: Any, data: Yields, path: Path) -> Source:
    """The recipe's :class:`~gammastar.source.source.Source` for the reach: its yield per POT
    per ε² on the data's mass bins (``aprime.bin_edges``; every channel averaged over each bin,
    :func:`gammastar.yields.standard_recipe.recipe`: the numbers of ``yields.json``
    ``standard_recipe``), its kinematics :class:`RecipeKinematics`.

    Arguments:
        config: the analysis config (``reach.recipe_mock``, ``beam``, ``yields.brems_*``).
        data: the data-driven yields (their ``meta``: N_POT, target, normalisation).
        path: their ``yields.json`` (``aprime.bin_edges``, ``standard_recipe``).

    Raises:
        ConfigError: no mock file to take the mesons from.
        InputError: a mock file without the mesons' multiplicities or spectra (a PYTHIA
            mock: its meson pool, or a species a channel needs).
    """
    document = rundir.read_artifact(path, rundir.schema_of(rundir.YIELDS), what="yields file")
    block = document.get("standard_recipe")
    files = _mock_files(config, block)
    metas = []
    for f in files:
        if not f.exists():
            raise InputError(
                f"{f}: the standard recipe's mock file is not there (reach.recipe_mock)"
            )
        meta = meta_from_root(f)
        if meta is None:
            raise InputError(f"{f}: no 'meta' (not a gammastar mock file; reach.recipe_mock)")
        metas.append((str(f), meta))
    mesons = meson_yields_from_meta(metas)
    spectra = meson_spectra(metas)
    st = _brems(config, block)
    try:
        edges = np.asarray(document["aprime"]["bin_edges"], dtype=np.float64)
        centres = np.asarray(document["aprime"]["mass"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{path}: aprime.bin_edges or aprime.mass missing") from None
    brems = brems_interpolated(st, float(edges[0]), float(edges[-1]))
    total = np.sum(list(recipe(edges, mesons, brems=brems).values()), axis=0)
    meta = {**data.meta, "production": "standard_recipe", "meson_yields_per_pot": dict(mesons.per_pot),
            "meson_yields_source": dict(mesons.source), "brems": dataclasses.asdict(st)}  # fmt: skip
    yields = Yields(centres, total, np.zeros_like(total), meta)
    kin = RecipeKinematics(mesons, spectra, st)
    if isinstance(spectra, PoolSpectra):  # a missing species named now, not mid-scan
        spectra.require([c.parent for c in kin.channels
                         if c.kind != "brems" and mesons.per_pot.get(c.parent, 0.0) > 0])  # fmt: skip
    kind = "PYTHIA meson pool" if isinstance(spectra, PoolSpectra) else "meson spectra"
    desc = (
        f"standard recipe (meson decays, A'-V mixing, proton bremsstrahlung; FORESEE/SensCalc "
        f"channels) with the {kind} of {', '.join(map(str, files))}"
    )
    return Source(kin, yields, desc)
