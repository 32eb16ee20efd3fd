"""PDG branching ratios (gammastar.physics.pdgdata): the `pdg` database's numbers, cached on
disk per installed `pdg` version."""

from __future__ import annotations

import pytest

from gammastar.physics import pdgdata


def _clear() -> None:
    for f in (pdgdata.branching_ratio, pdgdata._modes_of, pdgdata.edition):
        f.cache_clear()


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """An empty cache folder and no lookup of this process remembered (restored after)."""
    monkeypatch.setenv("GAMMASTAR_CACHE", str(tmp_path))
    _clear()
    yield tmp_path
    _clear()


def test_branching_ratios_are_the_databases_through_the_cache(fresh, monkeypatch):
    """A branching ratio read from the database (empty cache) is read back from the cache file
    in a fresh process state without opening the database, the same number, identifier and
    edition; a corrupt cache file is remade."""
    first = pdgdata.branching_ratio("omega->mumu")
    if first.source != "pdg":
        pytest.skip("the pdg database cannot be opened here")
    files = sorted(p.name for p in (fresh / "pdg").iterdir())
    assert any(n.startswith("modes-223-") for n in files)
    assert any(n.startswith("edition-") for n in files)
    _clear()
    with monkeypatch.context() as mp:
        mp.setattr(pdgdata, "_api", lambda: pytest.fail("the database was opened"))
        assert pdgdata.branching_ratio("omega->mumu") == first  # exact: JSON keeps a float
    for p in (fresh / "pdg").iterdir():
        p.write_text("{not json")
    _clear()
    assert pdgdata.branching_ratio("omega->mumu") == first
    monkeypatch.setenv("GAMMASTAR_CACHE", "")  # no cache: read from the database
    _clear()
    assert pdgdata.branching_ratio("omega->mumu") == first
