"""The coverage table's joint test (:func:`gammastar_validation.coverage.joint_test`).

Twelve fractions (±1σ, ±2σ at six (mass, cτ) points) each within its own binomial error is met
by a calibrated quote in only a few per cent of tables; the joint test compares max |z| with its
distribution for a calibrated quote (Gaussian toys with the pulls' correlation). Tested here: its
size (calibrated pulls are rejected about 5% of the time), its power against an under-quoted
error, its critical value against the one- and two-look bounds, and its refusal of too few rows.
"""

from __future__ import annotations

import numpy as np
import pytest

from gammastar_validation import coverage

POINTS = [(m, c) for m in (0.3, 0.6, 0.9) for c in (1.0, 100.0)]


@pytest.fixture(scope="module")
def cov():
    return coverage


def rows_from(pulls: np.ndarray, points=POINTS) -> list[dict]:
    return [{"seed": s, "mass": m, "ctau": c, "pulls": {"q": float(pulls[s, i])}}
            for s in range(pulls.shape[0]) for i, (m, c) in enumerate(points)]  # fmt: skip


def correlated(rng, n: int, scale: float = 1.0) -> np.ndarray:
    """n pull vectors over POINTS: the two cτ of a mass correlated at 0.98, masses at 0.2
    (about what the mock's 224 realisations show)."""
    c = np.full((6, 6), 0.2)
    for k in range(3):
        c[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = 0.98
    np.fill_diagonal(c, 1.0)
    return scale * rng.normal(size=(n, 6)) @ np.linalg.cholesky(c).T


def test_size_is_five_per_cent(cov):
    """40 calibrated tables of 100 realisations: rejections ~ Binomial(40, 0.05), mean 2;
    8 or more has probability 0.0007, so ≤ 7 allows a correct test and catches a critical value
    that ignores the twelve looks (single-look 1.96 rejects most tables)."""
    rng = np.random.default_rng(11)
    rejected = sum(
        not cov.joint_test(rows_from(correlated(rng, 100)), "q", toys=1000, seed=i)["consistent"]
        for i in range(40)
    )
    assert rejected <= 7


def test_under_quoted_error_is_rejected(cov):
    """Pulls 1.3× too wide over 200 realisations: the ±1σ fraction is 0.557 instead of 0.683,
    z ≈ −3.8 at each point, beyond any critical value of twelve looks (< 3.1)."""
    t = cov.joint_test(rows_from(correlated(np.random.default_rng(3), 200, 1.3)), "q", toys=2000)
    assert not t["consistent"]
    assert t["p_value"] < 0.01
    assert t["max_abs_z"] > t["critical_5pct"]


def test_critical_value_between_one_and_two_looks(cov):
    """One point, two fractions (±1σ, ±2σ) of 2000 realisations: the 5% critical value of
    max |z| lies between a single look's 1.96 and Bonferroni's 2.24 for two looks."""
    pulls = np.random.default_rng(5).normal(size=(2000, 1))
    t = cov.joint_test(rows_from(pulls, [(0.5, 1.0)]), "q", toys=4000)
    assert 1.96 < t["critical_5pct"] < 2.24
    assert len(t["z"]) == 1  # one point, one entry (an integer count)


def test_letter_is_rarely_met_by_a_calibrated_quote(cov):
    """Every one of twelve fractions within its own binomial error: a calibrated quote meets
    it in well under a fifth of tables (about 3-7% with these correlations; one fraction alone
    would meet it 68% of the time)."""
    t = cov.joint_test(rows_from(correlated(np.random.default_rng(8), 100)), "q", toys=2000)
    assert 0.0 < t["letter_rate_calibrated"] < 0.2


def test_too_few_realisations_is_an_error(cov):
    with pytest.raises(ValueError, match="need >= 3"):
        cov.joint_test(rows_from(np.zeros((2, 6))), "q")


def test_a_constant_pull_column_does_not_make_every_table_consistent(cov):
    """A point whose pulls are all equal (a NaN correlation) joins the toys as an independent
    unit Gaussian: pulls all 0 there cover 100% at ±1σ, z ≈ +4.5 at 64 realisations, beyond
    the critical value (a zeroed diagonal made the toys' own |z| explode and passed it)."""
    pulls = np.random.default_rng(2).normal(size=(64, 6))
    pulls[:, 0] = 0.0
    t = cov.joint_test(rows_from(pulls), "q", toys=2000)
    assert t["critical_5pct"] < 3.5
    assert not t["consistent"]


def test_the_record_of_the_external_part_is_in_no_quote(cov):
    """``extrapolation_external`` is recorded for the record only: no σ variant sums it."""
    parts = {"data_stat": 0.03, "extrapolation": 0.04, "extrapolation_varied": 0.035,
             "extrapolation_fit": 0.02, "kinematic_model": 0.01, "mc_acceptance": 0.005,
             "acceptance_lambda_theta": 0.02, "acceptance_lambda_theta_yield": 0.015,
             "extrapolation_yield": 0.19}  # fmt: skip
    for w in cov.SIGMAS:
        assert cov.quoted({**parts, "extrapolation_external": 5.0}, w) == pytest.approx(
            cov.quoted(parts, w), rel=1e-12
        )
