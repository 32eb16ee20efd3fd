"""Particle masses (gammastar.physics.constants): `particle`'s numbers, cached per version."""

from __future__ import annotations

import json


def test_masses_are_particles_numbers_through_the_cache(tmp_path, monkeypatch):
    """mass() gives Particle.from_pdgid's mass exactly, computed (empty cache) and read back
    from the per-version cache file in a fresh lookup; a corrupt or incomplete cache file is
    remade, and GAMMASTAR_CACHE="" (no cache) still gives the numbers."""
    from importlib.metadata import version

    from particle import Particle

    from gammastar.physics import constants as c

    want = {pdgid: float(Particle.from_pdgid(pdgid).mass) for pdgid in c.PDGID.values()}
    monkeypatch.setenv("GAMMASTAR_CACHE", str(tmp_path))
    path = tmp_path / "constants" / f"particle-{version('particle')}.json"
    for content in (None, "{not json", json.dumps({"13": 105.0})):
        if content is not None:
            path.write_text(content)
        c._pdg_masses.cache_clear()
        assert c._pdg_masses() == want
        assert {int(k): v for k, v in json.loads(path.read_text()).items()} == want
    c._pdg_masses.cache_clear()
    real = c._masses_from_particle
    monkeypatch.setattr(c, "_masses_from_particle", dict)  # not called: the cache is read
    assert c._pdg_masses() == want
    c.mass.cache_clear()
    for name, pdgid in c.PDGID.items():
        assert c.mass(name) == want[pdgid] / 1000.0, name
    monkeypatch.setattr(c, "_masses_from_particle", real)
    monkeypatch.setenv("GAMMASTAR_CACHE", "")  # no cache: computed
    c._pdg_masses.cache_clear()
    assert c._pdg_masses() == want
    c._pdg_masses.cache_clear()
    c.mass.cache_clear()


def test_widths_are_particles_numbers_through_the_cache(tmp_path, monkeypatch):
    """width() gives Particle.from_pdgid's width exactly, computed (empty cache) and read back
    from the per-version cache file without `particle`'s table."""
    from importlib.metadata import version

    from particle import Particle

    from gammastar.physics import constants as c

    monkeypatch.setenv("GAMMASTAR_CACHE", str(tmp_path))
    c._pdg_widths.cache_clear()
    c.width.cache_clear()
    for name in ("rho", "omega", "phi", "eta"):
        assert c.width(name) == Particle.from_pdgid(c.PDGID[name]).width / 1000.0, name
    assert (tmp_path / "widths" / f"particle-{version('particle')}.json").is_file()
    c._pdg_widths.cache_clear()
    c.width.cache_clear()
    monkeypatch.setattr(c, "_widths_from_particle", dict)  # not called: the cache is read
    assert c.width("rho") == Particle.from_pdgid(c.PDGID["rho"]).width / 1000.0
    c._pdg_widths.cache_clear()
    c.width.cache_clear()


def test_module_level_masses_are_the_pdg_values():
    """The literal masses of gammastar.physics.constants (module-level use: thresholds, default
    arguments) agree with the installed `particle` release within the PDG's quoted mass errors
    (or 1e-6 relative, the literals' rounding): one home, checked, not re-typed per module."""
    from particle import Particle

    from gammastar.physics import constants as c

    for name, pdgid in [("M_E", 11), ("M_MU", 13), ("M_PROTON", 2212), ("M_PI", 211),
                        ("M_PI0", 111), ("M_K", 321), ("M_K0", 311), ("M_ETA", 221),
                        ("M_OMEGA", 223), ("M_PHI", 333)]:  # fmt: skip
        p = Particle.from_pdgid(pdgid)
        err = max(float(p.mass_upper or 0.0), 1e-6 * float(p.mass)) / 1000.0
        assert abs(getattr(c, name) - float(p.mass) / 1000.0) <= err, name
