"""What a statistical method gets and gives: :class:`Request` (the normalised model or a bare
workspace spec, the settings, and the exact construction and pyhf model built once),
:class:`LimitResult` (the expected :data:`BANDS` and observed upper limits) and
:class:`Method` (one entry of the registry :data:`gammastar.reach.stats.METHODS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gammastar.errors import GammastarError
from gammastar.reach.stats.exact import _Exact
from gammastar.reach.stats.model import Model
from gammastar.reach.stats.workspace import _pyhf_model_data, build_spec

__all__ = ["BANDS", "LimitResult", "Method", "Request", "expected_bands_to_list"]

BANDS = ("-2", "-1", "0", "+1", "+2")
"""Expected-limit quantiles in σ of the background-only distribution (pyhf order)."""


@dataclass
class LimitResult:
    """Upper limits on n_signal (events, when the template sums to one)."""

    cl: float
    method: str
    expected: dict[str, float]
    observed: float | None = None
    ntoys: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cl": self.cl,
            "method": self.method,
            "expected": dict(self.expected),
            "observed": self.observed,
            "ntoys": self.ntoys,
        }


@dataclass
class Request:
    """One limit or CLs calculation, what a :class:`Method` gets: the normalised model (or a
    bare workspace ``spec``), the settings, and what methods build from the model once (the
    exact construction, pyhf's model and data)."""

    model: Model | None
    spec: Any = None
    cl: float = 0.9
    ntoys: int = 500
    seed: int | None = None
    hint: float | None = None
    _exact: Any = None
    _pyhf: Any = None

    @property
    def alpha(self) -> float:
        return 1.0 - self.cl

    @property
    def exact(self) -> _Exact:
        if self._exact is None:
            if self.model is None:
                raise GammastarError("exact CLs needs a gammastar Model, not a bare workspace")
            self._exact = _Exact(self.model)
        return self._exact

    @property
    def pyhf(self) -> tuple[Any, Any, Any]:
        """``(spec, pyhf model, data)``."""
        if self._pyhf is None:
            if self.spec is not None:
                spec = self.spec
            elif self.model is not None:
                spec = build_spec(self.model)
            else:
                raise GammastarError("a statistics request needs a Model or a workspace spec")
            self._pyhf = (spec, *_pyhf_model_data(spec))
        return self._pyhf


@dataclass(frozen=True)
class Method:
    """One CLs calculation (pyhf's ``infer.utils.create_calculator`` is the model): adding a
    method is one entry of :data:`gammastar.reach.stats.METHODS`; ``reach.method``, ``--method``,
    :func:`gammastar.reach.stats.upper_limit` and :func:`gammastar.reach.stats.cls` take it from
    there.

    Attributes:
        name: the ``method`` value (``reach.method``).
        doc: one line.
        limit: ``Request → LimitResult``: expected (and observed) upper limits on n_signal.
        cls: ``(Request, n_signal) → (CLs_obs or None, [CLs_exp −2σ … +2σ])``.
        auto: ``Request → bool``: whether ``"auto"`` may pick it (first accepted in registry
            order wins; the last entry should accept every model).
        warm_start: whether ``limit`` starts its search at ``Request.hint`` (a nearby
            solution, which moves the result within the search's tolerance): a scan then
            computes the limits in mass order, each from the previous mass's; without, on its
            worker processes (:mod:`gammastar.reach.scan.workers`).
    """

    name: str
    doc: str
    limit: Callable[[Request], LimitResult]
    cls: Callable[[Request, float], tuple[float | None, list[float]]]
    auto: Callable[[Request], bool]
    warm_start: bool = False


def expected_bands_to_list(res: LimitResult) -> list[float]:
    """Expected limits in pyhf order (−2σ … +2σ)."""
    return [res.expected[b] for b in BANDS]
