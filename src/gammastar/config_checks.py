"""Rules between the keys of different config sections, checked when a config is validated.

Each rule says, in one line naming the key, why a value that its own section accepts cannot
work with the rest of the config (a validation window wider than the selection's mass range,
a validation or reach mass outside it), so that the mistake is refused before any stage runs
instead of when the stage that reads the key is reached. The rules take the validated
sections and plain numbers and import nothing: :class:`gammastar.config.AnalysisConfig` calls
:func:`mass_range_problems` from its own validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_TOL = 1e-9
"""GeV: a mass on an edge of the range (written with fewer digits) is inside."""


def mass_range_problems(
    ranges: Sequence[tuple[float, float]],
    validate: Any,
    reach: Any,
    *,
    own_yields: bool,
) -> list[str]:
    """The cross-key mistakes of the masses of the ``validate`` and ``reach`` sections.

    Arguments:
        ranges: ``(selection.mass_min, selection.mass_max)`` of each flavour of the run
            (``per_flavour`` overrides applied): the masses the data can have.
        validate: the ``validate`` section; ``masses`` and ``figure_masses`` are checked when
            given in the config (their defaults are a NA60-like grid that other ranges skip).
        reach: the ``reach`` section; ``mass_min``/``mass_max`` are checked when the reach
            reads this run's yields (``own_yields``), whose masses are the selection's.

    Returns:
        One line per mistake, each naming its key.

    Example:
        >>> class V:
        ...     masses, window, model_fields_set = [5.0], 0.03, {"masses"}
        >>> class R:
        ...     mass_min = mass_max = None
        >>> print(*mass_range_problems([(0.2, 1.1)], V(), R(), own_yields=True))
        ... # doctest: +ELLIPSIS
        validate.masses: 5 GeV lies outside the selection's mass range 0.2-1.1 GeV (no pair ...)
    """
    lo = min(r[0] for r in ranges)
    hi = max(r[1] for r in ranges)
    span = f"the selection's mass range {lo:g}-{hi:g} GeV"
    out = []
    widest = max(r[1] - r[0] for r in ranges)
    if validate.window >= widest:
        out.append(
            f"validate.window: {validate.window:g} GeV is not narrower than {span} (the KL "
            "check compares the pairs of a narrow window around each mass; about the mass "
            "resolution)"
        )
    for key in ("masses", "figure_masses"):
        if key not in validate.model_fields_set:
            continue
        outside = [m for m in getattr(validate, key) if not lo - _TOL <= m <= hi + _TOL]
        if outside:
            out.append(
                f"validate.{key}: {', '.join(f'{m:g}' for m in outside)} GeV lies outside "
                f"{span} (no pair there to compare the flow with)"
            )
    if own_yields:
        for key in ("mass_min", "mass_max"):
            m = getattr(reach, key)
            if m is not None and not lo - _TOL <= m <= hi + _TOL:
                out.append(
                    f"reach.{key}: {m:g} GeV lies outside {span}, where this run's yields are "
                    "(reach.yields)"
                )
    return out
