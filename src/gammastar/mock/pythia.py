"""PYTHIA 8 mesons for the mock generator (``mock.backend: pythia``; docs/reference/mock.md
"PYTHIA backend").

Offers :func:`pythia_settings` and :func:`run_pool` (``SoftQCD:inelastic`` collisions of
``beam.energy`` protons on a fixed target, ``Beams:frameType = 2``, with the decays of the
cocktail mesons π0, η, η′, ρ0, ω, φ off: their lab (p_T, y) per species and their counts),
the pool's tree in the mock file (:data:`POOL_TREE`, :meth:`MesonPool.arrays`,
:meth:`MesonPool.describe`: what ``reach.production: standard_recipe`` resamples), and
:class:`PythiaMesons` (for ``mock.pythia.mode: pp_scaled`` the p+p counts scaled to the
target with :func:`gammastar.physics.target.nucleus_scale`), the :class:`~gammastar.mock.cocktail.MesonSource` of the cocktail: the
multiplicities per inelastic collision are PYTHIA's counts, the kinematics of each source a
pool meson's (p_T, y) at the channel's mass with a fresh azimuth. The decays, form factors,
detector and combinatorial background stay the package's (:mod:`gammastar.mock.cocktail`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.config import AnalysisConfig
from gammastar.config.mock import MockPythia
from gammastar.errors import ConfigError, GammastarError
from gammastar.physics.kinematics import four_momentum
from gammastar.physics.target import nucleus_scale

SPECIES: dict[str, int] = {
    "pi0": 111, "eta": 221, "eta_prime": 331, "rho": 113, "omega": 223, "phi": 333,
}  # fmt: skip
"""The cocktail's mesons (package names → PDG ids; ρ: the ρ0), decays off in PYTHIA."""

POOL_TREE = "meson_pool"
"""The mock file's tree of the pool: one entry per meson, ``species`` (int32 PDG id, the
mapping :data:`SPECIES` in ``meta.meson_pool.species``), ``pt``, ``y`` (float32, lab)."""

PYTHIA_SEED_MAX = 900_000_000
"""PYTHIA's largest ``Random:seed`` (0 would mean a time-dependent seed)."""


def pythia_seed(seed: int) -> int:
    """``Random:seed`` for the package's ``seed``: seed mod 900000000 + 1 (PYTHIA takes
    1…900000000; 0 would seed from the clock).

    Example:
        >>> pythia_seed(0), pythia_seed(899_999_999)
        (1, 900000000)
    """
    return int(seed) % PYTHIA_SEED_MAX + 1


def pythia_settings(py: MockPythia, beam_energy: float, seed: int) -> list[str]:
    """The PYTHIA settings of a pool (recorded in ``meta.pythia.settings``): inelastic
    collisions of a ``beam_energy`` GeV proton on a target at rest (``Beams:frameType = 2``:
    the event record is in the lab frame), the target a proton or, for ``angantyr``, the nucleus
    ``target_pdgid`` (``HeavyIon:mode = 1``); the cocktail mesons stable; the seed; then
    ``mock.pythia.settings``."""
    nucleus = py.mode == "angantyr"
    out = [
        "Print:quiet = on",
        "Beams:frameType = 2",
        "Beams:idA = 2212",
        f"Beams:idB = {py.target_pdgid if nucleus else 2212}",
        f"Beams:eA = {float(beam_energy)!r}",
        "Beams:eB = 0.",
        "SoftQCD:inelastic = on",
        *(["HeavyIon:mode = 1", "HeavyIon:showInit = off"] if nucleus else []),
        "Random:setSeed = on",
        f"Random:seed = {pythia_seed(seed)}",
    ]
    out += [f"{pdg}:mayDecay = off" for pdg in SPECIES.values()]
    return out + list(py.settings)


@dataclass
class MesonPool:
    """The mesons of ``collisions`` PYTHIA collisions: lab p_T and rapidity per species."""

    pt: dict[str, NDArray[np.float64]]
    y: dict[str, NDArray[np.float64]]
    collisions: int
    """Collisions generated (PYTHIA's failed ``next()`` calls not counted)."""
    sigma_mb: float
    """PYTHIA's estimate of the generated (inelastic) cross-section, mb."""
    settings: list[str]
    init_seconds: float = 0.0
    init_cpu_seconds: float = 0.0
    """Wall and CPU time of PYTHIA's initialisation (not in ``meta``: timings)."""

    def counts(self) -> dict[str, int]:
        """Mesons per species in the pool."""
        return {k: int(v.size) for k, v in self.pt.items()}

    def arrays(self) -> dict[str, NDArray[Any]]:
        """The :data:`POOL_TREE` branches: every species' mesons in :data:`SPECIES` order, each
        species in pool order; float32 (the tree keeps the file small; the recipe's
        resampling needs no more)."""
        names = [k for k in SPECIES if k in self.pt]
        return {
            "species": np.concatenate(
                [np.full(self.pt[k].size, SPECIES[k], np.int32) for k in names]
            ),
            "pt": np.concatenate([self.pt[k] for k in names]).astype(np.float32),
            "y": np.concatenate([self.y[k] for k in names]).astype(np.float32),
        }

    def describe(self) -> dict[str, Any]:
        """``meta.meson_pool``: the tree's name, branches, species codes and counts."""
        return {
            "tree": POOL_TREE,
            "branches": {
                "species": "int32: the meson's PDG id (species: name -> id)",
                "pt": "float32: lab transverse momentum, GeV",
                "y": "float32: lab rapidity",
            },
            "species": {k: SPECIES[k] for k in SPECIES if k in self.pt},
            "entries": self.counts(),
            "collisions": self.collisions,
        }


def _import_pythia() -> Any:
    try:
        import pythia8mc
    except ImportError:
        raise GammastarError(
            "mock.backend: 'pythia' needs the pythia8mc package (pip install 'gammastar[pythia]'),"
            " which is not installed; use backend: parametric"
        ) from None
    return pythia8mc


@contextlib.contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Any]:
    """A rich progress bar over the collisions (as the flow's training bar); a no-op if off."""
    if not enabled:
        yield lambda done: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("PYTHIA"), BarColumn(), TextColumn("{task.completed}/{task.total} collisions"),
        TimeElapsedColumn(),
    ) as prog:  # fmt: skip
        task = prog.add_task("pythia", total=total)
        yield lambda done: prog.update(task, completed=done)


def run_pool(settings: list[str], collisions: int, progress: bool = False) -> MesonPool:
    """Run PYTHIA with ``settings`` for ``collisions`` collisions and collect the final-state
    mesons of :data:`SPECIES` (decays off: every one produced, directly or in the decay of
    another hadron).

    Raises:
        GammastarError: pythia8mc missing, a setting PYTHIA does not take, its initialisation
            failing, or most events failing.
    """
    p8 = _import_pythia()
    pythia = p8.Pythia("", False)
    for line in settings:
        if not pythia.readString(line):
            raise ConfigError(f"mock.pythia: PYTHIA does not accept the setting {line!r}")
    t0, c0 = time.perf_counter(), time.process_time()
    if not pythia.init():
        raise GammastarError("mock.pythia: PYTHIA failed to initialise (settings in meta)")
    t_init, c_init = time.perf_counter() - t0, time.process_time() - c0
    ids = {pdg: name for name, pdg in SPECIES.items()}
    pt: dict[str, list[float]] = {k: [] for k in SPECIES}
    y: dict[str, list[float]] = {k: [] for k in SPECIES}
    done = failed = 0
    with _progress(progress, collisions) as update:
        while done < collisions:
            if not pythia.next():
                failed += 1
                if failed > 100 + collisions // 10:
                    raise GammastarError(f"mock.pythia: PYTHIA failed {failed} events")
                continue
            done += 1
            for part in pythia.event:
                name = ids.get(part.id())
                if name is not None and part.isFinal():
                    pt[name].append(part.pT())
                    y[name].append(part.y())
            if done % 500 == 0:
                update(done)
        update(done)
    sigma = float(pythia.infoPython().sigmaGen())
    return MesonPool(
        {k: np.asarray(v) for k, v in pt.items()},
        {k: np.asarray(v) for k, v in y.items()},
        done,
        sigma,
        list(settings),
        t_init,
        c_init,
    )


class PythiaMesons:
    """The PYTHIA meson source of the cocktail (module docstring).

    Arguments:
        config: the analysis config (``mock.pythia``, ``beam``).
        seed: the run's seed (PYTHIA's ``Random:seed``: :func:`pythia_seed`).
        progress: a progress bar while PYTHIA runs.
        pool: a pool already generated (tests, benchmarks); default: run PYTHIA.

    Raises:
        ConfigError: ``mock.pythia.mode`` missing, ``target_pdgid`` missing for ``angantyr``,
            ``a_exponent`` or ``beam.target_mass_number`` missing for ``pp_scaled``.
    """

    name = "pythia"

    def __init__(
        self,
        config: AnalysisConfig,
        seed: int,
        progress: bool = False,
        pool: MesonPool | None = None,
    ) -> None:
        if pool is None:
            _import_pythia()  # first: a missing package is the one error to fix
        py = config.mock.pythia if config.mock else MockPythia()
        self.cfg, self.beam = py, config.beam
        if py.mode is None:
            raise ConfigError(
                "mock.pythia.mode: give pp, angantyr or pp_scaled with backend pythia"
            )
        self.mode = py.mode
        """``mock.pythia.mode`` (given)."""
        if py.mode == "angantyr" and py.target_pdgid is None:
            raise ConfigError("mock.pythia.target_pdgid: needed with mode angantyr")
        if py.mode == "pp_scaled":
            missing = sorted(set(SPECIES) - set(py.a_exponent))
            if missing:
                raise ConfigError(f"mock.pythia.a_exponent: no alpha for {', '.join(missing)}")
            if config.beam.target_mass_number is None:
                raise ConfigError("beam.target_mass_number: needed with mock.pythia.mode pp_scaled")
        self.seed = int(seed)
        settings = pythia_settings(py, config.beam.energy, self.seed)
        self.pool = pool if pool is not None else run_pool(settings, py.collisions, progress)
        n = self.pool.collisions
        self.pythia_multiplicity = {k: c / n for k, c in self.pool.counts().items()}
        """⟨n⟩ per collision PYTHIA generated (pp for ``pp``/``pp_scaled``, p+A for ``angantyr``)."""
        self.multiplicity = dict(self.pythia_multiplicity)
        """⟨n⟩ per inelastic collision on the target (scaled for ``pp_scaled``)."""
        if py.mode == "pp_scaled":
            mass_number = config.beam.target_mass_number
            assert mass_number is not None  # refused above when missing
            a = float(mass_number)
            alpha: dict[str, float] = {k: v for k, v in py.a_exponent.items()}
            self.multiplicity = {
                # ⟨n⟩_pA = ⟨n⟩_pp A^α σ_pp/σ_pA: the nucleus scale from a proton (A = 1)
                k: v * nucleus_scale(a, config.beam.sigma_inel_mb, 1.0, self.pool.sigma_mb,
                                     alpha[k])
                for k, v in self.pythia_multiplicity.items()
            }  # fmt: skip
        if not self.multiplicity["omega"] > 0:
            raise GammastarError(
                f"mock.pythia: no omega in {n} PYTHIA collisions; raise mock.pythia.collisions"
            )

    @property
    def n_omega_per_collision(self) -> float:
        return self.multiplicity["omega"]

    def sigma_rel(self, parent: str) -> float:
        return self.multiplicity[parent] / self.multiplicity["omega"]

    def sample(self, rng: np.random.Generator, masses: NDArray[np.float64], parent: str = ""):
        """Lab four-momenta of ``masses.size`` parents: (p_T, y) of pool mesons drawn with
        replacement, the given masses (the ρ's line shape, the PDG masses), a uniform azimuth
        (the unpolarised beam's symmetry: each reuse of a pool meson points elsewhere)."""
        name = parent or "omega"
        pt, y = self.pool.pt[name], self.pool.y[name]
        n = masses.size
        if pt.size == 0:
            if n == 0:
                return np.zeros((4, 0))
            raise GammastarError(
                f"mock.pythia: no {name} in {self.pool.collisions} PYTHIA collisions; raise "
                "mock.pythia.collisions"
            )
        i = rng.integers(0, pt.size, n)
        phi = rng.uniform(0.0, 2.0 * np.pi, n)
        return four_momentum(masses, pt[i], y[i], phi)

    def meta(self) -> dict[str, Any]:
        """``meta.pythia``: the mode, PYTHIA's version, settings and seed, the pool (collisions,
        mesons per species: each source resamples one of them) and the multiplicities."""
        from importlib.metadata import version

        out: dict[str, Any] = {
            "mode": self.cfg.mode,
            "nucleus": {
                "pp": "proton target (p+p)",
                "angantyr": f"p+A with Angantyr (target {self.cfg.target_pdgid})",
                "pp_scaled": "p+p scaled per meson to p+A, sigma_pA = sigma_pp A^alpha",
            }[self.mode],
            "version": version("pythia8mc"),
            "settings": self.pool.settings,
            "random_seed": pythia_seed(self.seed),
            "collisions": self.pool.collisions,
            "sigma_generated_mb": self.pool.sigma_mb,
            "pool_mesons": self.pool.counts(),
            "pool_reuse": "each source draws a pool meson's (pT, y) with replacement, "
            "a uniform azimuth and the channel's mass",
            "pythia_multiplicity": self.pythia_multiplicity,
            "multiplicity_per_collision": self.multiplicity,
            "combinatorial": "the package's pi/K decay-muon model (not from PYTHIA)",
        }
        if self.cfg.mode == "pp_scaled":
            out["a_exponent"] = dict(self.cfg.a_exponent)
            out["target_mass_number"] = self.beam.target_mass_number
            out["sigma_inel_mb"] = self.beam.sigma_inel_mb
        return out
