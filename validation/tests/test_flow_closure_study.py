"""The flow-closure study over realisations (:mod:`gammastar_validation.flow_closure`): its
summary of the per-realisation ``reach.json`` ``flow_closure`` blocks."""

from __future__ import annotations

import numpy as np
import pytest

from gammastar_validation.flow_closure import summary


def test_summary_takes_the_ratio_of_means():
    """Over realisations the ratio of the mean acceptances, not the mean of the ratios (which
    a noisy denominator biases upward, E[1/x] > 1/E[x])."""
    pairs = [0.5, 1.0, 1.5]  # the flow equal to the mean: the ratio of means is 1
    recs = [{"points": [{"mass": 0.6, "eps_low": {
        "flow": 1.0, "pairs": d, "ratio": 1.0 / d, "ratio_err": 0.1, "pull": 0.0,
        "ctau": 1.0}}]} for d in pairs]  # fmt: skip
    (row,) = summary(recs)
    assert row["ratio_of_means"] == pytest.approx(1.0, rel=1e-12)
    assert row["ratio_mean"] == pytest.approx(np.mean([2.0, 1.0, 1 / 1.5]), rel=1e-12)
    assert row["n"] == 3
    assert row["at"] == "eps_low"
