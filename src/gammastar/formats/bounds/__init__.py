"""Published A′ bounds, read as their publishers ship them, for the reach plot and for
comparisons: (m_A′, ε) contours in GeV and ε whatever the file's units.

Formats (``reach.compare_with``'s ``format:``, else by the suffix):

- ``hepdata``: a HEPData table in YAML (``.yaml``, ``.yml``; :mod:`.table`);
- ``csv``: a CSV table whose header names the columns with their units (``.csv``; :mod:`.table`);
- ``lmt``: a DarkCast ``.lmt`` table, ``mass lower upper`` (``.lmt``; :mod:`.columns`);
- ``polygon``: a FORESEE-style closed polygon, one ``m coupling`` vertex a line (:mod:`.columns`).

The tables name their coupling column (ε or ε²); ``lmt`` and ``polygon`` files need ``units``
(``eps`` or ``eps2``) from the config entry or a ``# units:`` line. A ``compare_with`` file may
also be a HEPData reference, ``hepdata:ins1313628/Figure 5``, downloaded on first use into the
cache (:mod:`.remote`), or a short name for one (``phenix_2015``). The excluded ε range of a
contour at each mass and its ratio to another: :mod:`.compare`.

Example:
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "b.csv"
    >>> _ = p.write_text("# label: toy\\nm [MeV], eps^2\\n100, 1e-10\\n200, 4e-10\\n")
    >>> b = read_bound(p)
    >>> b.label, b.mass.tolist(), b.eps.tolist(), b.eps_from
    ('toy', [0.1, 0.2], [1e-05, 2e-05], 'eps^2 (square root taken)')
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gammastar.config import AnalysisConfig
from gammastar.errors import InputError
from gammastar.formats.bounds import remote
from gammastar.formats.bounds.columns import read_columns
from gammastar.formats.bounds.core import UNITS, Bound
from gammastar.formats.bounds.remote import BoundUnavailable
from gammastar.formats.bounds.table import read_table

log = logging.getLogger(__name__)
_WARNED: set[str] = set()

FORMATS: tuple[str, ...] = ("hepdata", "csv", "lmt", "polygon")
_SUFFIXES = {".yaml": "hepdata", ".yml": "hepdata", ".csv": "csv", ".lmt": "lmt"}


def read_bound(
    path: str | Path,
    *,
    label: str | None = None,
    format: str | None = None,  # the config key's name
    units: str | None = None,
    shape: str | None = None,
    column: str | None = None,
    reference: str | None = None,
) -> Bound:
    """Read one bound file.

    Arguments:
        path: the file.
        label: the legend entry (default: the file's ``# label:``, else its name).
        format: ``hepdata``, ``csv``, ``lmt`` or ``polygon`` (default: by the suffix).
        units: ``eps`` or ``eps2``: needed for ``lmt`` and ``polygon`` without a ``# units:``
            line; for a table it must agree with the coupling column's name.
        shape: overrides the file's shape (``contour``, ``curve``, ``above``, ``band``).
        column: a HEPData table's coupling column, by header name or qualifier value, when it
            has several.
        reference: the citation, when the file gives none.

    Returns:
        The :class:`Bound`, masses in GeV and ε (not ε²).

    Raises:
        InputError: one line naming the file (and the column).
    """
    path = Path(path)
    kind = format or _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"{path}: cannot tell the bound format from the suffix '{path.suffix}': give "
            f"format: {', '.join(FORMATS)}"
        )
    if kind not in FORMATS:
        raise InputError(f"{path}: format '{kind}': one of {', '.join(FORMATS)}")
    if units is not None and units not in UNITS:
        raise InputError(f"{path}: units '{units}': eps or eps2")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: bound file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the bound file ({err})") from None
    if kind in ("lmt", "polygon"):
        b = read_columns(path, text, kind=kind, label=label, units=units, shape=shape)
    else:
        b = read_table(path, text, kind=kind, label=label, units=units, shape=shape, column=column)
    if reference and not b.reference:
        from dataclasses import replace

        b = replace(b, reference=reference)
    return b


def read_entry(entry: Any, config: AnalysisConfig) -> Bound:
    """The bound of one ``reach.compare_with`` entry (a path relative to the config, a
    ``hepdata:`` reference or a known name), with the entry's label, format, units, shape and
    column over what the file or :data:`remote.KNOWN` says.

    Raises:
        BoundUnavailable: a reference neither cached nor downloadable.
        InputError: a bad file, naming it.
    """
    opts = {k: getattr(entry, k, None) for k in ("label", "format", "units", "shape", "column")}
    if remote.is_reference(entry.file):
        ref = remote.resolve(entry.file)
        path = remote.fetch(ref)
        known = remote.KNOWN.get(ref.key)
        if known is not None:
            opts["label"] = opts["label"] or known.label
            opts["shape"] = opts["shape"] or known.shape
            opts["column"] = opts["column"] or known.column
        opts["format"] = opts["format"] or "hepdata"
        reference = known.reference if known is not None else f"HEPData {ref.key}"
        label = opts.pop("label") or f"{ref.record} {ref.table}"
        return read_bound(path, label=label, reference=reference, **opts)
    return read_bound(Path(config.resolve(entry.file)), **opts)


def bound_path(file: str, config: AnalysisConfig) -> Path:
    """The file of a ``reach.compare_with`` entry: a HEPData reference's cached (or just
    downloaded) table, else a path relative to the config."""
    if remote.is_reference(file):
        return remote.fetch(remote.resolve(file))
    return Path(config.resolve(file))


def read_config_bounds(config: AnalysisConfig) -> list[tuple[Bound, str]]:
    """The bounds of ``reach.compare_with``, with their styles, in the config's order. A
    HEPData reference that is neither cached nor downloadable is left out with one warning
    line saying how to get it: the reach is drawn without it.

    Raises:
        InputError: the first bad file, naming it and the column.
    """
    out: list[tuple[Bound, str]] = []
    for entry in config.reach.compare_with:
        try:
            out.append((read_entry(entry, config), entry.style))
        except BoundUnavailable as err:
            if str(err) not in _WARNED:  # once per process: the reach reads the list twice
                _WARNED.add(str(err))
                log.warning("reach.compare_with: left out: %s", err)
    return out


__all__ = [
    "FORMATS",
    "bound_path",
    "read_bound",
    "read_config_bounds",
    "read_entry",
]
