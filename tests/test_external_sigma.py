"""The external σ_y response benchmark's summary (benchmarks/external_sigma.py, issue 19).

A response ln N(z) = a z + b z² (z the external σ_y's shift in units of its error) has, for
each symmetric pair ±z, chord (ln N₊ − ln N₋)/(2z) = a and curvature (ln N₊ + ln N₋)/2 = b z²;
against a quoted linear part q the ratios are a/q and (a z + b z²)/(q z).
"""

from __future__ import annotations

import pytest
from _benchmarks import load_benchmark


@pytest.fixture(scope="module")
def ext():
    return load_benchmark("external_sigma")


def test_chord_and_curvature_of_a_quadratic_response(ext):
    a, b, q = 0.04, -0.01, 0.035
    zs = [-1.5, -1.0, 0.0, 1.0, 1.5]
    # two realisations with the same response: the mean is exact, its error 0
    rec = {(0.6, 100.0): {z: [a * z + b * z * z] * 2 for z in zs}}
    (row,) = ext.summary(rec, {(0.6, 100.0): [q, q]}, zs)
    assert row["n"] == 2  # copied count
    for p in row["pairs"]:
        assert p["chord"] == pytest.approx(a, rel=1e-12)
        assert p["chord_over_quoted"] == pytest.approx(a / q, rel=1e-12)
        assert p["curvature"] == pytest.approx(b * p["z"] ** 2, rel=1e-12)
    r = row["response"]["+1.5"]
    assert r["mean"] == pytest.approx(a * 1.5 + b * 2.25, rel=1e-12)
    assert r["ratio"] == pytest.approx((a * 1.5 + b * 2.25) / (q * 1.5), rel=1e-12)
    assert r["err"] == pytest.approx(0.0, abs=1e-15)


def test_one_realisation_and_no_quoted_part_give_none_not_nan(ext):
    """One realisation has no error of its mean, and a point with nothing extrapolated has a
    quoted part 0: both are ``None`` in the output (valid JSON), not NaN or a division error."""
    import json

    rec = {(0.9, 1.0): {-1.0: [-0.02], 0.0: [0.0], 1.0: [0.01]}}
    (row,) = ext.summary(rec, {(0.9, 1.0): [0.0]}, [-1.0, 0.0, 1.0])
    assert row["response"]["+1"]["err"] is None
    assert row["response"]["+1"]["ratio"] is None
    assert row["pairs"][0]["chord_over_quoted"] is None
    json.loads(json.dumps(row, allow_nan=False))  # raises on NaN
