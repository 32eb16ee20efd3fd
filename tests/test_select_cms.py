"""The shipped CMS open-data configs on real data no one here wrote.

* ``uproot-Zmumu.root`` (flat pairs): the Z peak position and width.
* ``Run2012BC_DoubleMuParked_Muons_1000evts_rntuple`` (NanoAOD-like RNTuple): OS and SS pair
  counts against an independent plain-numpy count.

The files are read from ``$GAMMASTAR_CMS_DATA``, from ``mydata/`` where Tutorial 2 fetches them,
or from ``../shared/data/cms-open-data`` beside the repository (``conftest.cms_data_dir``; the
tests skip, saying how to get the files, when none holds them); the shipped configs name
``mydata/`` and no path outside the repository.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import uproot
from _tolerance import count_range
from scipy.optimize import curve_fit
from scipy.special import voigt_profile

from gammastar.config import load_config
from gammastar.selection.stage import select

M_Z = 91.1876  # PDG 2024, GeV
GAMMA_Z = 2.4955  # PDG 2024, GeV
RUN2012 = "Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root"


def test_zmumu_peak(cms_data_dir, repo_dir, tmp_path):
    cfg = load_config(os.path.join(repo_dir, "analysis", "cms_zmumu.yaml"))
    res = select(cfg, [os.path.join(cms_data_dir, "uproot-Zmumu.root")], output=tmp_path)
    df = res.pairs
    # Tutorial 2: 2304 rows holding the pairs of 500 events (column Event of the file)
    assert res.cutflow["events"] == 2304
    assert df.event.nunique() == 500
    # The file lists each event's dimuon once per muon-reconstruction type combination
    # (Type GG, GT, TT...), i.e. the same Z several times: keep one row per event.
    os_pairs = df[df.charge == 0].drop_duplicates("event")
    m = os_pairs["m"].to_numpy()
    assert 400 < len(m) < 600
    lo, hi = 80.0, 102.0
    h, e = np.histogram(m, bins=44, range=(lo, hi))
    c = 0.5 * (e[1:] + e[:-1])
    w = e[1] - e[0]

    def model(x, n, mu, sigma):  # Breit–Wigner (PDG Γ_Z) ⊗ Gaussian resolution
        return n * w * voigt_profile(x - mu, sigma, GAMMA_Z / 2)

    p, cov = curve_fit(model, c, h, p0=[len(m), 91.0, 1.5], sigma=np.sqrt(np.maximum(h, 1)))
    mu, sigma = p[1], abs(p[2])
    dmu = np.sqrt(cov[1, 1])
    chi2 = np.sum((h - model(c, *p)) ** 2 / np.maximum(h, 1)) / (len(c) - 3)
    print(f"Z peak {mu:.2f} ± {dmu:.2f} GeV, resolution σ = {sigma:.2f} GeV, χ²/ndf = {chi2:.2f}")
    # Peak within 1% of the PDG m_Z: early-2010 CMS muon momentum scale and final-state
    # radiation pull the reconstructed peak down by a few hundred MeV.
    assert abs(mu - M_Z) < 0.01 * M_Z
    # Gaussian resolution 0.5–3 GeV: ~1–3% for 45 GeV muons in the CMS tracker.
    assert 0.5 < sigma < 3.0
    assert chi2 < 3.0


def _numpy_pairs(path: str) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Plain numpy, event by event: no vector, no awkward combinations. Every muon pair's two
    (pt, eta, phi, mass), in float64 (the file's float32 values, exact), and its charge sum."""
    with uproot.open(path) as f:
        t = f["Events"]
        cols = {
            k: t[k].array(library="np")
            for k in ("Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge")
        }
    first, second, charge = [], [], []
    for *kin, q in zip(*cols.values(), strict=True):
        for i in range(len(q)):
            for j in range(i + 1, len(q)):
                first.append([k[i] for k in kin])
                second.append([k[j] for k in kin])
                charge.append(q[i] + q[j])
    a, b = np.asarray(first, dtype=np.float64).T, np.asarray(second, dtype=np.float64).T
    return (*a, *b), np.asarray(charge)


def _pair_mass(pt1, eta1, phi1, m1, pt2, eta2, phi2, m2):
    """The pair's invariant mass, GeV (float64 throughout)."""
    px = pt1 * np.cos(phi1) + pt2 * np.cos(phi2)
    py = pt1 * np.sin(phi1) + pt2 * np.sin(phi2)
    pz = pt1 * np.sinh(eta1) + pt2 * np.sinh(eta2)
    e = np.hypot(pt1 * np.cosh(eta1), m1) + np.hypot(pt2 * np.cosh(eta2), m2)
    return np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))


def test_run2012_rntuple_pair_counts(cms_data_dir, repo_dir, tmp_path):
    """Each class's count against the plain-numpy one. The two compute each mass with other
    roundings (and each on another CPU with others again), so a pair within rounding of the
    mass window's edges may fall on either side: it is ambiguous, and the count may differ by
    the ambiguous pairs of its class (tests/_tolerance.count_range), no more."""
    cfg = load_config(os.path.join(repo_dir, "analysis", "cms_run2012_rntuple.yaml"))
    path = os.path.join(cms_data_dir, RUN2012)
    res = select(cfg, [path], output=tmp_path)
    s = cfg.selection
    kin, charge = _numpy_pairs(path)
    assert res.cutflow["events"] == 1000
    ranges = {}
    for name, q in (("os", 0), ("pp", 2), ("mm", -2)):

        def in_window(*k, q=q):
            m = _pair_mass(*k)
            return (s.mass_min <= m) & (m < s.mass_max) & (charge == q)

        ranges[name] = count_range(in_window, kin)
        lo, hi = ranges[name]
        assert lo <= res.counts[name] <= hi, (name, res.counts[name], ranges[name])
        assert lo > 0
    print(f"Run2012 RNTuple: numpy's counts (sure, with the ambiguous) {ranges}")
    # Tutorial 2 prints these counts and the estimates from them
    # (tests/test_documented_commands.py): no pair of its window is ambiguous, on any CPU.
    assert all(lo == hi for lo, hi in ranges.values()), ranges


def test_run2012_sparse_like_sign_one_estimator(cms_data_dir, repo_dir, tmp_path):
    """A sparse real file (555 ++ and 455 −− pairs over 299 mass bins, mostly 0–3 per bin):
    select.json's signal (Σ os_m − comb_m) and unfolded (Σ weight; no ε map) are one
    estimator (before: 380.2 vs 245.0). Most bins have one like-sign sign empty, where the
    plain bin-wise 2√(N++N−−) is 0 (its sum 874.8 here); the windowed factors give a total
    close to the whole sample's 2√(555·455) = 1005.0 (the charge asymmetry hardly varies)."""
    cfg = load_config(os.path.join(repo_dir, "analysis", "cms_run2012_rntuple.yaml"))
    res = select(cfg, [os.path.join(cms_data_dir, RUN2012)], output=tmp_path)
    c = res.counts
    assert c["signal"] == pytest.approx(c["unfolded"], rel=1e-9)
    assert c["unfolded"] == pytest.approx(res.pairs["weight"].sum(), rel=1e-9)
    assert c["signal"] == pytest.approx(c["os"] - c["comb_estimate"], rel=1e-9)
    h = res.histograms
    pp, mm = h["pp_m"].values(), h["mm_m"].values()
    plain = float(np.sum(2 * np.sqrt(pp * mm)))
    whole = 2 * np.sqrt(c["pp"] * c["mm"])
    # the window's estimate is within 3σ (σ ≈ √(N++ + N−−) ≈ 32) of the whole-sample one;
    # the plain sum misses > 3σ of it
    sigma = np.sqrt(c["pp"] + c["mm"])
    assert abs(c["comb_estimate"] - whole) < 3 * sigma
    assert whole - plain > 3 * sigma
    bg = json.loads((tmp_path / "select.json").read_text())["background"]
    assert bg["bins_widened"] > 200


def test_cms_configs_name_no_path_outside_the_repository(repo_dir):
    """A clone runs the shipped CMS configs once the tutorial has fetched the files: every input
    path lies inside the repository (mydata/, ignored by git)."""
    root = os.path.realpath(repo_dir)
    for name in ("cms_zmumu.yaml", "cms_run2012_rntuple.yaml"):
        cfg = load_config(os.path.join(repo_dir, "analysis", name))
        for f in cfg.input.files:
            # the folder resolved, not the file: mydata/ may hold links to the files
            path = os.path.join(repo_dir, "analysis", f)
            path = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
            assert os.path.commonpath([root, path]) == root, (name, f)
            assert os.path.relpath(path, root).split(os.sep)[0] == "mydata", (name, f)
