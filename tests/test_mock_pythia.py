"""The PYTHIA 8 backend of the mock (``mock.backend: pythia``): output contract, PYTHIA's own
multiplicities, channel composition, seeds, the p+A mode in ``meta``, a missing pythia8mc."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import uproot

from gammastar.cli import main
from gammastar.cocktail_channels import Channel
from gammastar.config import AnalysisConfig
from gammastar.errors import ConfigError
from gammastar.mock.cocktail import CHANNELS, EE_CHANNELS
from gammastar.mock.generate import generate_file, read_meta
from gammastar.physics.target import interaction_probability

EFF_MAP = Path(__file__).resolve().parents[1] / "data" / "efficiency_na60_like.root"
COLLISIONS = 400
EVENTS = 6_000


@pytest.fixture(scope="module")
def mpi_cache(tmp_path_factory):
    """PYTHIA's multiparton-interaction tables written once here and read by every run of the
    tests (their initialisation then takes a second; reading them skips the random numbers
    of their computation, so every run must read them for seeds to reproduce)."""
    pythia8mc = pytest.importorskip("pythia8mc")
    from gammastar.mock.pythia import pythia_settings

    path = tmp_path_factory.mktemp("pythia") / "mpi.cmnd"
    py = pythia8mc.Pythia("", False)
    cfg = _config([], mode="pp")
    for line in pythia_settings(cfg.mock.pythia, cfg.beam.energy, 0):
        py.readString(line)
    py.readString("MultipartonInteractions:reuseInit = 3")
    py.readString(f"MultipartonInteractions:initFile = {path}")
    assert py.init()
    return ["MultipartonInteractions:reuseInit = 3", f"MultipartonInteractions:initFile = {path}"]


def _config(mpi_cache, backend="pythia", leptons=("mu", "e"), **pythia) -> AnalysisConfig:
    return AnalysisConfig.model_validate(
        {
            "mock": {
                "backend": backend,
                "events": EVENTS,
                "chunk_size": 4_000,
                "efficiency_map": str(EFF_MAP),
                "leptons": list(leptons),
                "combinatorial": {"pilot_events": 2_000},
                "electrons": {"conversion_template_sources": 2_000},
                "pythia": {"mode": "pp", "collisions": COLLISIONS, "settings": mpi_cache, **pythia},
            }
        }
    )


@pytest.fixture(scope="module")
def files(mpi_cache, tmp_path_factory):
    """Parametric and PYTHIA files of one config; a second PYTHIA file of the same seed and
    one of another seed."""
    d = tmp_path_factory.mktemp("mock")
    out = {}
    for name, backend, seed in (
        ("parametric", "parametric", 7),
        ("pythia", "pythia", 7),
        ("pythia_same", "pythia", 7),
        ("pythia_other", "pythia", 8),
    ):
        out[name] = generate_file(_config(mpi_cache, backend), d / f"{name}.root", seed=seed)
    return out


def _layout(path: Path) -> dict[str, object]:
    """Class of every key, and every TTree's branches with their type names."""
    out: dict[str, object] = {}
    with uproot.open(path) as f:
        for key, cls in f.classnames().items():
            out[key.split(";")[0]] = cls
            if cls == "TTree":
                out[key.split(";")[0]] = {name: br.typename for name, br in f[key].iteritems()}
    return out


def test_same_output_contract_as_parametric(files):
    """Every object and branch (name and type) of the parametric file, truth included; and
    the PYTHIA meson pool's tree (meta.meson_pool), read back by the standard recipe."""
    para, pyth = _layout(files["parametric"].path), _layout(files["pythia"].path)
    assert para == {k: v for k, v in pyth.items() if k != "meson_pool"}
    assert pyth["meson_pool"] == {"species": "int32_t", "pt": "float", "y": "float"}
    assert (
        files["pythia"].meta["meson_pool"]["entries"]
        == files["pythia"].meta["pythia"]["pool_mesons"]
    )
    assert "meson_pool" not in files["parametric"].meta
    assert {"events", "truth", "truth_ee", "truth_generated", "meta"} <= set(pyth)
    assert {"muon_px", "electron_E", "truth_channel", "truth_gstar_m"} <= set(pyth["events"])
    meta = files["pythia"].meta
    assert meta["generator"] == "gammastar.mock/pythia"
    assert files["pythia"].n_events_written > 0


def test_multiplicities_are_pythias_own_counts(files):
    """meta's multiplicities are the counts of the cocktail mesons PYTHIA itself gives with the
    recorded settings (a run of pythia8mc here, counted by index), per collision."""
    import pythia8mc

    meta = read_meta(files["pythia"].path)["pythia"]
    py = pythia8mc.Pythia("", False)
    for line in meta["settings"]:
        assert py.readString(line)
    assert py.init()
    ids = {111: "pi0", 221: "eta", 331: "eta_prime", 113: "rho", 223: "omega", 333: "phi"}
    counts = dict.fromkeys(ids.values(), 0)
    done = 0
    while done < meta["collisions"]:
        if not py.next():
            continue
        done += 1
        ev = py.event
        for i in range(ev.size()):
            if ev[i].isFinal() and ev[i].id() in ids:
                counts[ids[ev[i].id()]] += 1
    assert meta["pool_mesons"] == counts  # integers: the same PYTHIA run
    for k, n in counts.items():
        assert meta["multiplicity_per_collision"][k] == pytest.approx(n / COLLISIONS, rel=1e-12)
    # pp at 400 GeV: about 0.6 omega per collision (PYTHIA 8.3; 0.39 measured, the config's
    # MockConfig.n_omega_per_collision): a sanity range, 5 sigma of Poisson at 400 collisions
    assert 0.3 < meta["multiplicity_per_collision"]["omega"] < 1.0


def test_channel_composition_and_normalisation(files):
    """Sources per channel ∝ ⟨n_meson⟩ × BR (multinomial tolerance, 5σ) and N_POT from the
    PYTHIA multiplicities: N_cocktail / (P_int Σ ⟨n⟩ BR)."""
    meta = files["pythia"].meta
    mult = meta["pythia"]["multiplicity_per_collision"]
    n_gen = meta["n_generated"]
    for specs, brs in ((CHANNELS, meta["branching_ratios"]),
                       (EE_CHANNELS, meta["electrons"]["branching_ratios"])):  # fmt: skip
        w = {s.channel.name: mult[s.parent] * brs[s.channel.name]["value"] for s in specs}
        total = sum(n_gen[c] for c in w)
        wsum = sum(w.values())
        for c, wc in w.items():
            p = wc / wsum
            sigma = np.sqrt(total * p * (1 - p))
            assert abs(n_gen[c] - total * p) <= 5 * sigma + 1, (c, n_gen[c], total * p)
    mumu = sum(mult[s.parent] * meta["branching_ratios"][s.channel.name]["value"] for s in CHANNELS)
    assert meta["mumu_sources_per_collision"] == pytest.approx(mumu, rel=1e-12)
    assert meta["n_omega_per_collision"] == pytest.approx(mult["omega"], rel=1e-12)
    # both flavours, no prescale: every non-combinatorial source over P_int × sources/collision
    ee = meta["electrons"]["ee_sources_per_collision"]
    combinatorial = n_gen["COMBINATORIAL"] + n_gen["COMBINATORIAL_EE"]
    n_cocktail = sum(n_gen.values()) - combinatorial
    p_int = interaction_probability(0.01)  # beam.interaction_lengths default
    assert meta["n_pot"] == pytest.approx(n_cocktail / (p_int * (mumu + ee)), rel=1e-9)


def test_seed_reproducibility(files):
    """Same seed: the same events (to float32 rounding; the same arithmetic, so the tolerance
    is a few ulp of the values); another seed: different events and PYTHIA seed."""

    def read(name):
        with uproot.open(files[name].path) as f:
            return f["events"].arrays(["muon_px", "electron_pz", "truth_gstar_m"], library="ak")

    a, b, c = read("pythia"), read("pythia_same"), read("pythia_other")
    import awkward as ak

    assert len(a) == len(b)
    for k in a.fields:
        x, y = ak.to_numpy(ak.flatten(a[k], axis=None)), ak.to_numpy(ak.flatten(b[k], axis=None))
        np.testing.assert_allclose(x, y, rtol=1e-6, equal_nan=True)
    assert len(a) != len(c) or not np.allclose(
        ak.to_numpy(ak.flatten(a["electron_pz"])), ak.to_numpy(ak.flatten(c["electron_pz"]))
    )
    ma, mc = files["pythia"].meta["pythia"], files["pythia_other"].meta["pythia"]
    assert ma["random_seed"] != mc["random_seed"]
    assert (
        ma["pool_mesons"] != mc["pool_mesons"]
        or ma["pythia_multiplicity"] != mc["pythia_multiplicity"]
    )


def test_kinematics_resample_the_pool(mpi_cache):
    """Each parent is a pool meson's (p_T, y) at the requested mass: p_T and rapidity of the
    sampled four-momenta are values of the pool (to the float64 round trip)."""
    from gammastar.mock.pythia import PythiaMesons

    mesons = PythiaMesons(_config(mpi_cache), seed=3)
    rng = np.random.default_rng(1)
    masses = np.full(500, 0.78266)
    p = mesons.sample(rng, masses, "omega")
    pt = np.hypot(p[0], p[1])
    y = 0.5 * np.log((p[3] + p[2]) / (p[3] - p[2]))
    pool_pt, pool_y = mesons.pool.pt["omega"], mesons.pool.y["omega"]
    i = np.abs(pt[:, None] - pool_pt[None, :]).argmin(axis=1)
    np.testing.assert_allclose(pt, pool_pt[i], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(y, pool_y[i], rtol=1e-9, atol=1e-9)


def test_pp_scaled_mode(mpi_cache, files):
    """``pp_scaled``: ⟨n⟩_pA = ⟨n⟩_pp σ_pp A^α / σ_pA per meson (by hand), said in meta."""
    from gammastar.mock.pythia import PythiaMesons

    alpha = {"pi0": 0.8, "eta": 0.9, "eta_prime": 0.9, "rho": 0.85, "omega": 0.85, "phi": 0.9}
    cfg = _config(mpi_cache, mode="pp_scaled", a_exponent=alpha)
    cfg = cfg.model_copy(update={"beam": cfg.beam.model_copy(update={"target_mass_number": 207.2})})
    base = PythiaMesons(_config(mpi_cache), seed=7)
    scaled = PythiaMesons(cfg, seed=7, pool=base.pool)
    for k, n in base.multiplicity.items():
        want = n * base.pool.sigma_mb * 207.2 ** alpha[k] / cfg.beam.sigma_inel_mb
        assert scaled.multiplicity[k] == pytest.approx(want, rel=1e-12)
    meta = scaled.meta()
    assert meta["mode"] == "pp_scaled"
    assert meta["a_exponent"] == alpha
    assert files["pythia"].meta["pythia"]["mode"] == "pp"
    with pytest.raises(ConfigError, match=r"mock\.pythia\.a_exponent"):
        PythiaMesons(_config(mpi_cache, mode="pp_scaled"), seed=7, pool=base.pool)
    with pytest.raises(ConfigError, match=r"mock\.pythia\.target_pdgid"):
        PythiaMesons(_config(mpi_cache, mode="angantyr"), seed=7, pool=base.pool)
    with pytest.raises(ConfigError, match=r"mock\.pythia\.mode"):
        PythiaMesons(_config(mpi_cache, mode=None), seed=7, pool=base.pool)


def test_missing_pythia8mc_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pythia8mc", None)  # import pythia8mc raises ImportError
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"mock:\n  events: 100\n  backend: pythia\n  efficiency_map: {EFF_MAP}\n")
    rc = main(["generate", str(cfg), "-o", str(tmp_path / "x.root")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert "pythia8mc" in err
    assert "not installed" in err
    assert not (tmp_path / "x.root").exists()


def test_channels_cover_the_cocktail():
    """Every cocktail meson is one PYTHIA keeps stable."""
    from gammastar.mock.pythia import SPECIES

    assert {s.parent for s in CHANNELS + EE_CHANNELS} <= set(SPECIES)
    assert Channel.PI0_DALITZ_EE in {s.channel for s in EE_CHANNELS}
