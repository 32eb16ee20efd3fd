"""Bounds as tables with named columns: a HEPData table (YAML) or a CSV file.

A table is either a HEPData table in YAML (``independent_variables`` /
``dependent_variables``, each with ``header: {name, units}`` (or the units in brackets after
the name, ``m_U (MeV/c^2)``) and ``values``: the format of a HEPData record's table) or a CSV
file whose header row names the columns with their units in brackets (``m [MeV]``, ``eps``).
In both, leading comment lines ``# key: value`` carry ``label`` and ``reference`` (the
publication or HEPData record the numbers come from) and, optionally, ``shape``. A HEPData
table with several coupling columns (one per confidence level, say) is read at the one whose
header name or qualifier value is ``column`` (``"90%"``).

Columns:
    - one mass column: ``m``, ``mass``, ``m_A'``, ``M_{A'}``, ``m_V``, ``m_U`` (LaTeX braces,
      primes, ``$`` ignored) in GeV or MeV (``/c^2`` allowed), converted to GeV; a HEPData
      mass column of bins (``low``/``high``) is read at the bins' centres;
    - one or two coupling columns: ``eps``, ``epsilon``, ``ε`` (``\\varepsilon``) or their
      squares (``eps^2``, ``eps2``, ``ε²``; converted to ε), dimensionless, optionally
      suffixed ``low``/``high`` (``lo``, ``hi``, ``min``, ``max``, ``lower``, ``upper``).

One coupling column is a curve in point order (``shape: contour``, the default, closes it:
an excluded island; ``shape: curve`` leaves it open: a limit line; ``shape: above`` is an
upper limit on ε, everything above the curve excluded, as a prompt search's). Two are the
lower and upper ε of the excluded range at each mass (``shape: band``): the polygon runs along
the lower edge and back along the upper one; rows with a missing value (``-``, empty) are left
out.

Every problem is one :class:`~gammastar.errors.InputError` naming the file and, where there is
one, the column: a misspelt or unknown column, a unit other than these, no points, a value
that is not a positive finite number.

Example:
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "b.csv"
    >>> _ = p.write_text("# label: toy\\nm [MeV], eps^2\\n100, 1e-10\\n200, 4e-10\\n")
    >>> b = read_table(p, p.read_text())
    >>> b.label, b.mass.tolist(), b.eps.tolist(), b.eps_from
    ('toy', [0.1, 0.2], [1e-05, 2e-05], 'eps^2 (square root taken)')
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from gammastar.errors import InputError
from gammastar.formats.bounds.core import Bound, Shape, comments

MASS_UNITS: dict[str, float] = {"gev": 1.0, "mev": 1e-3}
"""Mass units a bound file may use and their factor to GeV (``/c^2`` and ``/c2`` allowed)."""

_MASS_NAMES = {"m", "mass", "ma", "maprime", "mdarkphoton", "mv", "mu"}
_EPS = r"(?:eps|epsilon|ε|varepsilon)"
_SQUARE = r"(?:\^2|2|²|\*\*2)"
_SIDE = r"(?:low|lo|min|lower|down|high|hi|max|upper|up)"
_EPS_RE = re.compile(rf"^(?P<eps>{_EPS})(?P<sq>{_SQUARE})?(?P<side>{_SIDE})?$")
# an energy unit in brackets after a column's name ("$m_U$(MeV/$c^2$)"); other brackets, such
# as "ε² (90% CL)", stay part of the name
_UNITS_IN_NAME = re.compile(
    r"^(?P<name>.*?\S)\s*[(\[](?P<units>\s*\$?\s*[kMGT]?eV[^()\[\]]*)[)\]]\s*$", re.IGNORECASE
)


@dataclass(frozen=True)
class _Column:
    name: str
    units: str
    values: list[Any]
    binned: bool = False
    qualifiers: dict[str, str] = field(default_factory=dict)


def read_table(
    path: Path,
    text: str,
    *,
    kind: str | None = None,
    label: str | None = None,
    units: str | None = None,
    shape: str | None = None,
    column: str | None = None,
) -> Bound:
    """Read a HEPData YAML table or a CSV table (``kind``: ``hepdata`` or ``csv``; default:
    by the suffix, ``.yaml``/``.yml`` or ``.csv``).

    Arguments:
        path: the file (named in every error).
        text: its content.
        label: the legend entry (default: the file's ``# label:``, else its name).
        units: ``eps`` or ``eps2`` when the caller states it: it must agree with the
            coupling column's name.
        shape: overrides the file's ``# shape:``.
        column: a HEPData table's coupling column to read, by header name or qualifier value.

    Returns:
        The :class:`~gammastar.formats.bounds.core.Bound`, masses in GeV and ε (not ε²).

    Raises:
        InputError: one line naming the file (and the column): misspelt column, unit other than
            GeV/MeV and dimensionless, no points, a value that is not a positive finite number.
    """
    meta = comments(text, path)
    if shape is not None:
        meta["shape"] = shape
    kind = kind or ("csv" if path.suffix.lower() == ".csv" else "hepdata")
    columns = _yaml_columns(text, path) if kind == "hepdata" else _csv_columns(text, path)
    if column is not None:
        columns = _select(columns, column, path)
    return _bound(columns, meta, path, label, units)


def _select(columns: list[_Column], column: str, path: Path) -> list[_Column]:
    """The mass column and the coupling column(s) named ``column`` or qualified by it (spaces
    and case ignored); a table with one coupling column needs no choice and is kept whole."""
    masses = [c for c in columns if _is_mass(c)]
    if sum(not _is_mass(c) for c in columns) == 1:
        return columns

    def norm(text: str) -> str:
        return re.sub(r"\s+", "", text).lower()

    want = norm(column)
    chosen = [
        c for c in columns
        if not _is_mass(c) and (
            want in norm(c.name)
            or any(want in (norm(v), norm(f"{k}:{v}")) for k, v in c.qualifiers.items())
        )
    ]  # fmt: skip
    if not chosen:
        names = ", ".join(
            f"'{c.name}'" + "".join(f" ({k}: {v})" for k, v in c.qualifiers.items())
            for c in columns if not _is_mass(c)
        )  # fmt: skip
        raise InputError(f"{path}: no coupling column is '{column}' (the table has {names})")
    return masses + chosen


def _is_mass(column: _Column) -> bool:
    key = _normalised(column.name)
    return key in _MASS_NAMES or key.startswith("mass")


def _yaml_columns(text: str, path: Path) -> list[_Column]:
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InputError(f"{path}: not valid YAML{where}") from None
    if not isinstance(doc, dict) or "independent_variables" not in doc:
        raise InputError(
            f"{path}: not a HEPData table (independent_variables and dependent_variables)"
        )
    unknown = sorted(set(doc) - {"independent_variables", "dependent_variables"})
    if unknown:
        raise InputError(f"{path}: unknown key '{unknown[0]}' of a HEPData table")
    columns = []
    for group in ("independent_variables", "dependent_variables"):
        variables = doc.get(group) or []
        if not isinstance(variables, list):
            raise InputError(f"{path}: {group}: a list of variables expected")
        for k, var in enumerate(variables):
            header = var.get("header") if isinstance(var, dict) else None
            if not isinstance(header, dict) or "name" not in header:
                raise InputError(f"{path}: {group}[{k}]: no header name")
            name, units = str(header["name"]), str(header.get("units", "") or "")
            if not units:  # older records write the units after the name: "m_U (MeV/c^2)"
                m = _UNITS_IN_NAME.match(name)
                if m is not None:
                    name, units = m.group("name"), m.group("units").strip()
            values, binned = [], False
            for v in var.get("values") or []:
                if isinstance(v, dict) and "value" in v:
                    values.append(v["value"])
                elif isinstance(v, dict) and "low" in v and "high" in v:
                    values.append(_centre(v["low"], v["high"], name, path))
                    binned = True
                else:
                    raise InputError(f"{path}: column '{name}': a value entry without 'value'")
            quals = {
                str(q.get("name")): str(q.get("value"))
                for q in (var.get("qualifiers") or [])
                if isinstance(q, dict)
            }
            columns.append(_Column(name, units, values, binned, quals))
    return columns


def _centre(low: Any, high: Any, name: str, path: Path) -> float:
    """The centre of a HEPData bin ``{low, high}``."""
    try:
        lo, hi = float(low), float(high)
    except (TypeError, ValueError):
        raise InputError(f"{path}: column '{name}': bin {{low: {low}, high: {high}}}") from None
    return 0.5 * (lo + hi)


def _csv_columns(text: str, path: Path) -> list[_Column]:
    rows = [r for r in csv.reader(line for line in text.splitlines() if not _skip(line))]
    if not rows:
        raise InputError(f"{path}: no header row (e.g. 'm [GeV], eps')")
    header, body = rows[0], rows[1:]
    columns = []
    for k, cell in enumerate(header):
        m = re.match(r"^\s*(?P<name>[^\[]*?)\s*(?:\[(?P<units>[^\]]*)\])?\s*$", cell)
        name = m.group("name") if m else cell.strip()
        if not name:
            raise InputError(f"{path}: column {k + 1} has no name")
        units = (m.group("units") or "") if m else ""
        values = []
        for r, row in enumerate(body, start=1):
            if len(row) != len(header):
                raise InputError(
                    f"{path}: data row {r} has {len(row)} fields, the header {len(header)}"
                )
            values.append(row[k].strip())
        columns.append(_Column(name, units.strip(), values))
    return columns


def _skip(line: str) -> bool:
    s = line.strip()
    return not s or s.startswith("#")


# --------------------------------------------------------------------------- columns
def _normalised(name: str) -> str:
    r"""A column name without LaTeX, primes, spaces and separators, ε spelt ``eps``.

    Example:
        >>> [_normalised(n) for n in ("M_{A^{\\prime}}", "$\\varepsilon^2$", "eps_low")]
        ['ma', 'eps^2', 'epslow']
    """
    text = re.sub(r"[{}$\s]", "", name.lower()).replace("\\prime", "'").replace("^'", "'")
    text = text.replace("\\", "")
    for old in ("varepsilon", "epsilon", "eps"):
        text = text.replace(old, "ε")
    text = re.sub(r"[_'′`,.()-]", "", text).replace("prime", "")
    return text.replace("ε", "eps")


def _role(column: _Column, path: Path) -> tuple[str, str, str]:
    """``(kind, side, how)``: ``("mass", "", unit)`` or ``("eps", "low"|"high"|"", "eps"|"eps2")``."""
    key = _normalised(column.name)
    where = f"{path}: column '{column.name}'"
    if key in _MASS_NAMES or key.startswith("mass"):
        unit = re.sub(r"[\s${}]", "", column.units.lower())
        unit = re.sub(r"/c(\^?2|²)$", "", unit)
        if unit not in MASS_UNITS:
            shown = column.units or "none"
            raise InputError(f"{where}: mass in {shown}; give GeV or MeV")
        return "mass", "", unit
    m = _EPS_RE.match(key)
    if m is not None:
        if column.binned:
            raise InputError(f"{where}: bins (low/high) where coupling values are expected")
        if column.units.strip() not in ("", "1", "dimensionless"):
            raise InputError(f"{where}: ε is dimensionless, not in {column.units}")
        side = m.group("side") or ""
        side = "high" if side in ("high", "hi", "max", "upper", "up") else ("low" if side else "")
        return "eps", side, "eps2" if m.group("sq") else "eps"
    raise InputError(
        f"{where}: not a mass (m, mass, m_A' in GeV or MeV) or a coupling column "
        "(eps, epsilon, ε, eps^2, optionally _low/_high)"
    )


def _numbers(column: _Column, path: Path) -> list[float | None]:
    out: list[float | None] = []
    for i, v in enumerate(column.values):
        if v is None or (isinstance(v, str) and v.strip() in ("", "-")):
            out.append(None)
            continue
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise InputError(
                f"{path}: column '{column.name}', point {i + 1}: {v!r} is not a number"
            ) from None
        if not math.isfinite(x) or x <= 0:
            raise InputError(
                f"{path}: column '{column.name}', point {i + 1}: {v!r} is not a positive "
                "finite number"
            )
        out.append(x)
    return out


def _bound(
    columns: Sequence[_Column],
    meta: dict[str, str],
    path: Path,
    label: str | None,
    units: str | None = None,
) -> Bound:
    mass_cols: list[Any] = []
    eps_cols: list[Any] = []
    for col in columns:
        kind, side, how = _role(col, path)
        stated = units or meta.get("units")
        if kind == "eps" and stated is not None and stated != how:
            raise InputError(
                f"{path}: column '{col.name}' is {how}, but the units given are {stated}"
            )
        (mass_cols if kind == "mass" else eps_cols).append((col, side, how))
    if len(mass_cols) != 1:
        raise InputError(f"{path}: {len(mass_cols)} mass columns; give exactly one")
    if not 1 <= len(eps_cols) <= 2:
        raise InputError(
            f"{path}: {len(eps_cols)} coupling columns; give one (ε) or two (low, high)"
        )
    mcol, _, unit = mass_cols[0]
    mass = _numbers(mcol, path)
    eps = [(_numbers(c, path), side, how, c.name) for c, side, how in eps_cols]
    for values, _, _, name in eps:
        if len(values) != len(mass):
            raise InputError(
                f"{path}: column '{name}' has {len(values)} values, the mass {len(mass)}"
            )
    if len(eps) == 2:
        sides = {e[1] for e in eps}
        if sides != {"low", "high"}:
            raise InputError(
                f"{path}: two coupling columns need the suffixes low and high "
                f"(got '{eps[0][3]}', '{eps[1][3]}')"
            )
        if eps[0][1] == "high":
            eps.reverse()
    missing = [i for i, v in enumerate(mass) if v is None]
    if missing:
        raise InputError(f"{path}: column '{mcol.name}', point {missing[0] + 1}: no mass")
    keep = [i for i in range(len(mass)) if all(e[0][i] is not None for e in eps)]
    if not mass:
        names = ", ".join(f"'{c.name}'" for c in columns)
        raise InputError(f"{path}: no points under the columns {names}")
    if len(keep) < 2:
        raise InputError(f"{path}: {len(keep)} complete point(s); a bound needs at least 2")
    m = np.array([mass[i] for i in keep], dtype=float) * MASS_UNITS[unit]
    arrays = []
    for values, _, how, _ in eps:
        a = np.array([values[i] for i in keep], dtype=float)
        arrays.append(np.sqrt(a) if how == "eps2" else a)
    eps_from = ", ".join(
        f"{name} (square root taken)" if how == "eps2" else name for _, _, how, name in eps
    )
    if len(arrays) == 2:
        low, high = arrays
        bad = np.flatnonzero(low > high)
        if bad.size:
            raise InputError(
                f"{path}: column '{eps[0][3]}', point {int(keep[bad[0]]) + 1}: the lower ε is "
                "above the upper one"
            )
        shape: Shape = "band"
        if meta.get("shape", "band") != "band":
            raise InputError(f"{path}: two coupling columns are a band, not '{meta['shape']}'")
    else:
        shape = cast(Shape, meta.get("shape", "contour"))  # one of SHAPES: _comments checked
        if shape == "band":
            raise InputError(f"{path}: shape band needs two coupling columns (low, high)")
        low, high = arrays[0], None
    return Bound(
        label=label or meta.get("label") or path.stem,
        reference=meta.get("reference", ""),
        mass=m,
        eps=low,
        eps_high=high,
        shape=shape,
        source=path,
        eps_from=eps_from,
        mass_from=f"{mcol.name} (bin centres)" if mcol.binned else mcol.name,
    )


__all__ = ["read_table"]
