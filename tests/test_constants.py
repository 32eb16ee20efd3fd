"""Particle masses (gammastar.physics.constants): `particle`'s PDG table read directly."""

from __future__ import annotations


def test_masses_are_particles_numbers():
    """mass() reads `particle`'s PDG table file without importing `particle`
    (constants._pdg_table_masses): every particle of PDGID is found there (the fast path is
    the one taken) and its mass is the number Particle.from_pdgid gives, exactly."""
    from particle import Particle

    from gammastar.physics.constants import PDGID, _pdg_table_masses, mass

    table = _pdg_table_masses()
    assert set(table) == set(PDGID.values())
    for name, pdgid in PDGID.items():
        assert table[pdgid] == float(Particle.from_pdgid(pdgid).mass), name
        assert mass(name) == float(Particle.from_pdgid(pdgid).mass) / 1000.0, name
