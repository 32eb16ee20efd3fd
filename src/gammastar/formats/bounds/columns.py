"""Bounds as bare columns of numbers, as DarkCast and FORESEE ship them.

- DarkCast ``.lmt`` (``format: lmt``): one line per mass, ``mass lower upper``: the mass in
  GeV and the lower and upper edge of the excluded coupling range; read as a band. DarkCast's
  tables may stop before the contour closes: the band is drawn closed at its last mass.
- FORESEE-style polygons (``format: polygon``): one vertex ``m coupling`` a line, the mass in
  GeV, the closed contour of the excluded region in drawing order.

Neither format says whether its coupling is ε or ε²: ``units`` (``eps`` or ``eps2``) is given
by the caller (``reach.compare_with``'s ``units:``) or by a ``# units:`` comment line in the
file, else the file is refused with one line naming it. ``#`` lines are comments (``# label:``,
``# reference:``, ``# shape:`` as in the tables); fields are split on blanks or commas.

Example:
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.lmt"
    >>> _ = p.write_text("# mass lower upper\\n0.01 1e-6 1e-3\\n0.1 2e-7 1e-5\\n")
    >>> b = read_columns(p, p.read_text(), kind="lmt", units="eps")
    >>> b.shape, b.mass.tolist(), b.eps.tolist(), b.eps_high.tolist()
    ('band', [0.01, 0.1], [1e-06, 2e-07], [0.001, 1e-05])
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from gammastar.errors import InputError
from gammastar.formats.bounds.core import Bound, Shape, checked, comments, to_eps

_FIELDS = {"lmt": 3, "polygon": 2}
_WHAT = {"lmt": "DarkCast .lmt (mass lower upper)", "polygon": "polygon (m coupling)"}


def read_columns(
    path: Path,
    text: str,
    *,
    kind: str,
    label: str | None = None,
    units: str | None = None,
    shape: str | None = None,
) -> Bound:
    """Read a DarkCast ``.lmt`` table (``kind="lmt"``) or a polygon (``kind="polygon"``).

    Arguments:
        path: the file (named in every error).
        text: its content.
        kind: ``lmt`` or ``polygon``.
        label: the legend entry (default: the file's ``# label:``, else its name).
        units: ``eps`` or ``eps2`` (default: the file's ``# units:``; one of them is needed).
        shape: overrides the format's shape (``band`` for lmt, ``contour`` for a polygon).

    Raises:
        InputError: one line naming the file: no units, a row with another number of fields,
            a field that is not a positive finite number, fewer than two rows, a lower edge
            above the upper one.
    """
    meta = comments(text, path)
    stated = units or meta.get("units")
    if stated is None:
        raise InputError(
            f"{path}: a {_WHAT[kind]} file does not say whether its coupling is ε or ε²: give "
            "units: eps or units: eps2 in its reach.compare_with entry"
        )
    n = _FIELDS[kind]
    rows = []
    for k, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        fields = [f for f in re.split(r"[\s,;]+", s) if f]
        if len(fields) != n:
            raise InputError(f"{path}: line {k} has {len(fields)} fields; {_WHAT[kind]} has {n}")
        try:
            rows.append([float(f) for f in fields])
        except ValueError:
            raise InputError(f"{path}: line {k}: {s!r} is not {n} numbers") from None
    if len(rows) < 2:
        raise InputError(f"{path}: {len(rows)} row(s); a bound needs at least 2")
    table = np.array(rows, dtype=float)
    mass = checked(table[:, 0], path, "mass")
    what = "ε²" if stated == "eps2" else "ε"
    columns = ("lower", "upper") if kind == "lmt" else ("coupling",)
    eps = [to_eps(checked(table[:, 1 + j], path, c), stated) for j, c in enumerate(columns)]
    how = " (square root taken)" if stated == "eps2" else ""
    if kind == "lmt":
        bad = np.flatnonzero(eps[0] > eps[1])
        if bad.size:
            raise InputError(
                f"{path}: row {int(bad[0]) + 1}: the lower {what} is above the upper one"
            )
        fixed: Shape = "band"
        eps_from = f"lower, upper ({what}{how})"
    else:
        fixed = "contour"
        eps_from = f"column 2 ({what}{how})"
    want = shape or meta.get("shape") or fixed
    if want != fixed and not (kind == "polygon" and want in ("curve", "above")):
        raise InputError(f"{path}: a {_WHAT[kind]} file is a {fixed}, not '{want}'")
    return Bound(
        label=label or meta.get("label") or path.stem,
        reference=meta.get("reference", ""),
        mass=mass,
        eps=eps[0],
        eps_high=eps[1] if kind == "lmt" else None,
        shape=want,  # type: ignore[arg-type]  # checked above
        source=path,
        eps_from=eps_from,
        mass_from="column 1 (GeV)",
    )


__all__ = ["read_columns"]
