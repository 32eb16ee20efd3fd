"""The lepton flavour of the input: up-front checks that the leptons are ``input.lepton``.

:func:`lepton_flavours` classifies leptons by their mass (the ``mass`` branch, or
m² = E² − |p|² within the rounding of the stored precision) as muon-like, electron-like or
unresolved; :func:`check_flavour` takes those counts of the first entries of every input file
(read by its own probe, or counted by the selection's chunks that read them:
:func:`chunk_flavours`) and raises one :class:`~gammastar.errors.InputError` line when they
hold the other flavour or both (mixed-flavour pairs). Branch names per flavour:
:data:`gammastar.io.FLAVOUR_PREFIX`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.core.inflate import isal_inflate
from gammastar.errors import InputError
from gammastar.io import LAYOUTS, open_tree
from gammastar.physics.constants import M_E, M_MU

log = logging.getLogger(__name__)

PROBE_ENTRIES = 20_000
"""Entries read from the start of each file for the check."""

MASS = {"mu": M_MU, "e": M_E}
NAME = {"mu": "muon", "e": "electron"}


def lepton_flavours(
    e: NDArray | None,
    p2: NDArray | None = None,
    *,
    mass: NDArray | None = None,
    eps: float = 2.0**-23,
) -> dict[str, int]:
    """Count muon-like and electron-like leptons.

    With ``mass``: |m − m_ℓ| < 1% m_ℓ. Else m² = E² − |p|² with the tolerance 8 ε E² of values
    stored with relative precision ε (each of E² and |p|² carries ≤ ε E² of rounding); a lepton
    compatible with both masses (high E in float32) is counted as unresolved.

    Arguments:
        e: lepton energies (GeV), flat (``None`` with ``mass``).
        p2: |p|² (GeV²), flat (with ``e``).
        mass: lepton masses (GeV), flat, instead of ``e``/``p2``.
        eps: relative precision of the stored momenta (float32: 2⁻²³).

    Returns:
        ``{"mu": n, "e": n, "unresolved": n, "neither": n}``.

    Example:
        >>> import numpy as np
        >>> e = np.array([10.0, 10.0]); m = np.array([0.1056583755, 0.000511])
        >>> lepton_flavours(e, e**2 - m**2, eps=2.0**-52)["mu"]
        1
    """
    if mass is not None:
        m = np.asarray(mass, dtype=np.float64)
        mu = np.abs(m - M_MU) < 0.01 * M_MU
        el = np.abs(m - M_E) < 0.01 * M_E
    elif e is None or p2 is None:
        raise ValueError("lepton_flavours: give the energies and |p|², or the masses")
    else:
        e = np.asarray(e, dtype=np.float64)
        # NaN/inf momenta (the selection's nonfinite cut counts them) are "neither", quietly
        with np.errstate(invalid="ignore", over="ignore"):
            m2 = e**2 - np.asarray(p2, dtype=np.float64)
            tol = 8.0 * eps * e**2 + 1e-12
            mu = np.abs(m2 - M_MU**2) <= tol + 2e-3 * M_MU**2
            el = np.abs(m2 - M_E**2) <= tol + 2e-3 * M_E**2
    return {
        "mu": int(np.sum(mu & ~el)),
        "e": int(np.sum(el & ~mu)),
        "unresolved": int(np.sum(mu & el)),
        "neither": int(np.sum(~mu & ~el)),
    }


def _flat(x: Any) -> NDArray:
    import awkward as ak

    return np.asarray(ak.to_numpy(ak.flatten(x, axis=None)), dtype=np.float64)


def _eps(tree: Any, branch: str) -> float:
    try:
        dt = tree[branch].interpretation
        dt = getattr(dt, "content", dt).to_dtype
        return float(np.finfo(dt).eps)
    except Exception:  # noqa: BLE001 - RNTuple or exotic interpretation: float32 bound
        return 2.0**-23


def file_flavours(path: str, tree_name: str, columns: dict[str, str], layout: str) -> dict:
    """:func:`lepton_flavours` of the first :data:`PROBE_ENTRIES` entries of one file
    (``columns``: the layout's column → branch map); ``{}`` when the layout carries no mass
    information (``pt, eta, phi`` without a ``mass`` branch)."""

    f, t = open_tree(path, tree_name)
    try:
        stop = min(int(t.num_entries), PROBE_ENTRIES)
        wanted = _probed_columns(layout, columns)
        if stop == 0 or not wanted:
            return {}
        a = t.arrays([columns[c] for c in wanted], entry_stop=stop, how=dict)
        eps = _precision(t, layout, columns)
        return flavours_of({c: a[columns[c]] for c in wanted}, layout, eps)
    finally:
        f.close()


def _momenta(layout: str) -> list[tuple[str, str, str, str]]:
    """The ``(E, px, py, pz)`` columns of each lepton of an entry; none in a layout without
    them (``p, theta, phi``: no mass information; ``pt, eta, phi`` reads its ``mass``)."""
    if layout == "flat_pairs":
        sets = [("E1", "px1", "py1", "pz1"), ("E2", "px2", "py2", "pz2")]
    else:
        sets = [("E", "px", "py", "pz")]
    have = set(LAYOUTS[layout].coordinates)
    return [s for s in sets if set(s) <= have]


def _probed_columns(layout: str, columns: Mapping[str, Any]) -> list[str]:
    """The columns the flavour is read from: ``mass`` (``pt, eta, phi`` layouts, where the
    input has it), else the energy and momentum of each lepton."""
    if layout == "jagged_ptetaphi":
        return ["mass"] if "mass" in columns else []
    return [c for cols in _momenta(layout) for c in cols]


def _precision(tree: Any, layout: str, columns: Mapping[str, str]) -> dict[str, float]:
    """The relative precision of each energy branch (:func:`_eps`; none in ``pt, eta, phi``
    layouts, whose check reads the mass)."""
    if layout == "jagged_ptetaphi":
        return {}
    return {cols[0]: _eps(tree, columns[cols[0]]) for cols in _momenta(layout)}


def flavours_of(arrays: Mapping[str, Any], layout: str, eps: Mapping[str, float]) -> dict:
    """:func:`lepton_flavours` of leptons' columns as read (package names: those of
    :func:`_probed_columns`; ``eps``: the precision of each energy column); ``{}`` without a
    mass in a ``pt, eta, phi`` layout."""
    if layout == "jagged_ptetaphi":
        if "mass" not in arrays:
            return {}
        return lepton_flavours(None, mass=_flat(arrays["mass"]))
    if not _momenta(layout):
        return {}
    out = dict.fromkeys(("mu", "e", "unresolved", "neither"), 0)
    for cols in _momenta(layout):
        e = _flat(arrays[cols[0]])
        px, py, pz = (_flat(arrays[c]) for c in cols[1:])
        counts = lepton_flavours(e, px**2 + py**2 + pz**2, eps=eps[cols[0]])
        for k, v in counts.items():
            out[k] += v
    return out


def flavour_probe(layout: str, path: str, tree: str, columns: dict[str, str]) -> dict | None:
    """:func:`file_flavours` of one file as the selection reads it: :func:`check_flavour`'s
    own probe, which :func:`gammastar.io.check_inputs` can also run in each file's task;
    ``None`` for a file whose first entries cannot be read (left to the processing, which
    reports the damage by file name)."""
    try:
        with isal_inflate():  # the first baskets, as the selection reads them
            return file_flavours(path, tree, columns, layout)
    except Exception as err:  # noqa: BLE001 - damaged data: reported when processed
        log.debug("flavour check of %s skipped: %s", path, err)
        return None


def precision_probe(
    layout: str, path: str, tree: str, columns: dict[str, str]
) -> dict[str, float] | None:
    """The selection's probe of each file in its input check's task (:func:`gammastar.io.
    check_inputs`): the precision of its energy branches (their metadata; nothing
    decompressed), with which the chunks that read the file's first :data:`PROBE_ENTRIES`
    entries count their flavours (:func:`chunk_flavours`) instead of a second read of those
    baskets; ``None`` for a file that does not open (left to the processing)."""
    try:
        f, t = open_tree(path, tree)
        try:
            return _precision(t, layout, columns)
        finally:
            f.close()
    except Exception as err:  # noqa: BLE001 - reported when processed
        log.debug("flavour check of %s skipped: %s", path, err)
        return None


def chunk_flavours(
    cols: Mapping[str, Any], layout: str, eps: Mapping[str, float], start: int, stop: int
) -> dict | None:
    """:func:`flavours_of` of the chunk of entries [``start``, ``stop``) of its file (columns
    as read) within the file's first :data:`PROBE_ENTRIES` entries: the chunks' counts of a
    file add up to its :func:`file_flavours` (the same values, the same precision ``eps``
    from :func:`precision_probe`); ``None`` for a chunk after them."""
    n = min(stop, PROBE_ENTRIES) - start
    if n <= 0:
        return None
    return flavours_of({c: cols[c][:n] for c in _probed_columns(layout, cols)}, layout, eps)


def _probe_item(layout: str, columns: dict[str, str], path_tree: tuple[str, str]) -> dict | None:
    return flavour_probe(layout, *path_tree, columns)


def check_flavour(
    checked: Any,
    lepton: str,
    *,
    map_files: Callable[..., Iterable[dict | None]] = map,
) -> None:
    """Raise when the input's leptons are not of flavour ``lepton`` (``input.lepton``).

    Arguments:
        checked: :class:`gammastar.io.CheckedInputs` (its branch map and files).
        lepton: ``mu`` or ``e``.
        map_files: ``map_files(func, items)`` probes the ``(path, tree)`` items, its
            answers in their order (default: ``map``, in this process), where ``checked``
            holds no probes of :func:`flavour_probe` (``check_inputs(..., probe=...)``, each
            in its file's task). The first file in order that fails is reported, wherever
            the probes ran.

    A file whose first entries cannot be read is left to the processing, which reports the
    damage by file name (or skips it with ``--skip-bad-files``, docs/howto/runs-and-failures.md).

    Raises:
        InputError: a file whose first entries hold leptons of the other flavour only
            (``input.lepton`` inconsistent with the data, e.g. a muon mass branch read as
            electrons), or of both flavours (more than 1% of the other) in one lepton
            collection (mixed-flavour pairs).
    """
    cols = dict(checked.branches.all)
    layout = checked.branches.layout
    items = [(p, t) for spec in checked.fileset.values() for p, t in spec["files"].items()]
    answers: Iterable[dict | None]
    if all(p in checked.probes for p, _ in items):
        # each file's probe read its own columns: a mass branch only some files hold is not
        # in the common ones, and then the check of the others (no mass: none) applies
        common = layout != "jagged_ptetaphi" or "mass" in cols
        answers = [checked.probes[p] if common else {} for p, _ in items]
    else:
        answers = map_files(partial(_probe_item, layout, cols), items)
    for (path, _tree), n in zip(items, answers, strict=True):
        _refuse(path, n, lepton, layout, cols)


def check_file_flavour(checked: Any, lepton: str, path: str, counts: Mapping[str, int]) -> None:
    """:func:`check_flavour` of one file from the flavour counts of its first
    :data:`PROBE_ENTRIES` entries (as its chunks counted them, :func:`chunk_flavours`): the
    selection refuses a file as soon as the chunks that read those entries are in, before
    its later chunks run. The same line as :func:`check_flavour`'s for that file.

    Raises:
        InputError: as :func:`check_flavour`.
    """
    cols = dict(checked.branches.all)
    layout = checked.branches.layout
    # a mass branch only some files hold is not among the common columns: no check then, as
    # in check_flavour
    if layout == "jagged_ptetaphi" and "mass" not in cols:
        return
    _refuse(path, counts, lepton, layout, cols)


def _refuse(
    path: str, n: Mapping[str, int] | None, lepton: str, layout: str, cols: Mapping[str, str]
) -> None:
    """The :class:`~gammastar.errors.InputError` of a file whose counts ``n`` hold the other
    flavour only, or both (nothing without counts)."""
    if not n:
        return
    other = "e" if lepton == "mu" else "mu"
    if layout == "jagged_ptetaphi":
        where = f"mass branch {cols['mass']!r}"
    else:
        energy = ", ".join(repr(cols[c]) for c in ("E", "E1", "E2") if c in cols)
        where = f"m² = E² − |p|² with E from {energy}"
    # mixed: more than 1% of the resolved leptons of the other flavour (a stray value
    # of a damaged basket is left to the plausibility checks, docs/howto/runs-and-failures.md)
    if n[lepton] and n[other] > 0.01 * (n[lepton] + n[other]):
        raise InputError(
            f"{path}: mixed-flavour leptons in one collection ({n['mu']} with m ≈ m_μ, "
            f"{n['e']} with m ≈ m_e in the first {PROBE_ENTRIES} entries, {where}): "
            "pairs of a muon and an electron are not dileptons of one flavour; give each "
            "flavour its own branches (input.branches) and run once per input.lepton"
        )
    if n[other] and not n[lepton]:
        raise InputError(
            f"{path}: the leptons have the {NAME[other]} mass ({n[other]} of them, "
            f"{where}), inconsistent with input.lepton {lepton!r} "
            f"(m = {MASS[lepton]:.6g} GeV): set input.lepton: {other} or map the "
            f"{NAME[lepton]} branches in input.branches"
        )
