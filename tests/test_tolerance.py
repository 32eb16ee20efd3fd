"""The test suite's own comparison of yes/no decisions (tests/_tolerance.py): a difference a
rounding can make passes, any other fails."""

from __future__ import annotations

import numpy as np
import pytest
from _tolerance import assert_same_decisions, count_range, tipping_points


def test_a_decision_tipped_by_rounding_passes_and_one_far_from_the_cut_fails():
    """x ≥ 3 where one x is 0.3 / 0.1 = 2.9999999999999996 (3 in exact arithmetic): another
    computation may put it on the other side of the cut; a move of DECISION_REL relative tips
    it, so that difference passes. A difference at x = 0.5, far from the cut, fails."""
    x = np.array([0.5, 2.0, 0.3 / 0.1, 5.0])
    assert x[2] < 3.0

    def decide(v):
        return v >= 3.0

    assert tipping_points(decide, (x,)).tolist() == [False, False, True, False]
    other = np.array([False, False, True, True])  # the point at the cut on the other side
    assert_same_decisions(decide(x), other, decide, (x,))
    other[0] = True
    with pytest.raises(AssertionError, match="1 of 4 decisions differ away from any cut"):
        assert_same_decisions(decide(x), other, decide, (x,))


def test_a_count_may_move_by_the_tipped_decisions_only():
    """Of x ≥ 3 on [0.5, 2.9999999999999996, 3.5, 4.0] two are sure (3.5, 4.0) and one is
    tipped by a 1e-9 move (0.3 / 0.1): another computation counts 2 or 3."""
    x = np.array([0.5, 0.3 / 0.1, 3.5, 4.0])
    assert count_range(lambda v: v >= 3.0, (x,)) == (2, 3)
