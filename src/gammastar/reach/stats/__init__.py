"""Likelihoods and CLs limits for the reach, as pyhf workspaces (docs/explanation/physics.md §10; docs/explanation/reach.md §3).

This module offers the limit calculations (:func:`upper_limit`, :func:`cls`) of the
registered methods (:data:`METHODS`: ``exact`` hybrid CLs, pyhf ``toys`` and ``asymptotic``;
``auto`` picks the first whose rule accepts the model: :func:`choose_method`). Why which
method, and the numbers they give: docs/explanation/reach.md "Which CLs calculation, and why".
The pieces, one concern each:

* :mod:`~gammastar.reach.stats.model`: the statistical model (per decay channel a count or
  mass bins, a signal template normalised to one expected event, the NA62 nuisance
  parameters and the yield's named signal nuisances);
* :mod:`~gammastar.reach.stats.workspace`: its pyhf spec, validated workspaces;
* :mod:`~gammastar.reach.stats.interface`: what a method gets and gives (``Request``,
  ``LimitResult``, ``Method``);
* :mod:`~gammastar.reach.stats.calculators`: the methods' calculations;
* :mod:`~gammastar.reach.stats.exact`: the exact hybrid CLs construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gammastar.errors import GammastarError
from gammastar.reach.stats.calculators import (
    _asymptotic_cls,
    _asymptotic_limit,
    _exact_cls,
    _exact_limit,
    _large_background,
    _toys_cls,
    _toys_limit,
)
from gammastar.reach.stats.interface import LimitResult, Method, Request
from gammastar.reach.stats.model import Model

__all__ = ["METHODS", "choose_method", "cls", "upper_limit"]


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "exact",
            "hybrid CLs computed exactly (enumerated counts, quadrature over the nuisances)",
            _exact_limit,
            _exact_cls,
            # (cheap: the constructor only sizes the count grid)
            auto=lambda req: req.model is not None and req.exact.feasible,
            warm_start=True,  # its root search starts at the hint
        ),
        Method(
            "asymptotic",
            "pyhf asymptotic formulae (large counts only)",
            _asymptotic_limit,
            _asymptotic_cls,
            auto=_large_background,
        ),
        Method(
            "toys",
            "pyhf toy calculator (pseudo-experiments)",
            _toys_limit,
            _toys_cls,
            auto=lambda req: True,
        ),
    )
}
"""The statistical methods (the registry); ``"auto"`` picks among them (:func:`choose_method`)."""


def _resolve(req: Request, method: str) -> Method:
    if method != "auto" and method not in METHODS:
        raise GammastarError(
            f"unknown statistics method {method!r}; use one of {('auto', *METHODS)}"
        )
    if method != "auto":
        return METHODS[method]
    return next(m for m in METHODS.values() if m.auto(req))


def choose_method(model: Model, method: str = "auto") -> str:
    """Resolve ``"auto"``: the first method of :data:`METHODS` whose rule accepts the model."""
    return _resolve(Request(model.normalised()), method).name


def upper_limit(
    model: Model,
    *,
    cl: float = 0.9,
    method: str = "auto",
    ntoys: int = 500,
    seed: int | None = None,
    hint: float | None = None,
) -> LimitResult:
    """Expected (±1σ, ±2σ) and, with observed counts, observed upper limits on n_signal.

    The template is normalised to one event, so the limits are event counts.

    Arguments:
        model: the :class:`~gammastar.reach.stats.model.Model`.
        cl: confidence level (0.9, 0.95, …).
        method: ``"auto"`` or a key of :data:`METHODS` (``"exact"``, ``"toys"``,
            ``"asymptotic"``).
        ntoys: pseudo-experiments per hypothesis for ``"toys"``.
        seed: seed for the toys.
        hint: an approximate limit (e.g. from the neighbouring mass) to start the exact root
            search from; the result does not depend on it.

    Returns:
        A :class:`~gammastar.reach.stats.interface.LimitResult` (``method`` is the one used).

    Example:
        >>> from gammastar.reach.stats.model import Channel
        >>> m = Model([Channel("mumu", [1.0], [1e-9], observed=[0])], n_pot_unc=0.0)
        >>> round(upper_limit(m, cl=0.9, method="exact").observed, 3)
        2.303
    """
    if not (0 < cl < 1):
        raise GammastarError(f"confidence level must be in (0, 1), not {cl}")
    req = Request(model.normalised(), cl=cl, ntoys=ntoys, seed=seed, hint=hint)
    used = _resolve(req, method)
    if method == "auto" and used.name == "toys":
        import logging

        logging.getLogger(__name__).warning(
            "exact CLs: too many count configurations; using pyhf toys (slow: set "
            "reach.method or use fewer bins)"
        )
    return used.limit(req)


def cls(
    model_or_spec: Model | Mapping[str, Any] | Any,
    n_signal: float,
    *,
    method: str = "asymptotic",
    ntoys: int = 500,
    seed: int | None = None,
) -> dict[str, Any]:
    """CLs at ``n_signal`` (the POI): ``{"CLs_obs", "CLs_exp" (5 values, −2σ…+2σ), "method"}``.

    ``model_or_spec`` may be a :class:`~gammastar.reach.stats.model.Model` (normalised to one signal event), a workspace spec
    or a :class:`pyhf.Workspace`. With a spec, only ``"asymptotic"`` and ``"toys"`` apply;
    ``"asymptotic"`` is what ``pyhf cls --test-poi n_signal`` computes.
    """
    if isinstance(model_or_spec, Model):
        req = Request(model_or_spec.normalised(), ntoys=ntoys, seed=seed)
    else:
        req = Request(None, spec=model_or_spec, ntoys=ntoys, seed=seed)
    used = _resolve(req, method)
    obs, exp = used.cls(req, n_signal)
    return {"CLs_obs": obs, "CLs_exp": exp, "method": used.name}
