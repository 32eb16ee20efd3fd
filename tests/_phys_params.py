"""Test helper: a grid of cases × values with one value per case in the default suite.

A test that checks the same code path for every case at several values (brute-force
comparisons, quadrature checks) keeps, by default, each case once and each value at least
once (a diagonal through the grid); the rest of the grid is marked ``slow`` and runs in
``make test-all``. The default suite's cases are the covering tests of the slow ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest


def diagonal_grid(cases: Sequence[Any], values: Sequence[tuple[Any, ...]]) -> list[Any]:
    """``pytest.param(case, *value)`` for every case and value, case-major (the order of two
    stacked ``parametrize``); case ``i`` keeps value ``i mod len(values)`` in the default
    suite (with at least as many cases as values, every value is kept once), the others are
    ``slow``. Ids are ``case-value...``, as two stacked ``parametrize`` give them."""
    out = []
    for i, case in enumerate(cases):
        for j, value in enumerate(values):
            marks = () if j == i % len(values) else (pytest.mark.slow,)
            ident = "-".join(str(v) for v in (case, *value))
            out.append(pytest.param(case, *value, marks=marks, id=ident))
    return out
