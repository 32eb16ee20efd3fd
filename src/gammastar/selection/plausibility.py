"""Plausibility of the decoded input: values no detector can have mark a corrupted file.

ROOT's ZLIB and LZ4 baskets carry checksums; ZSTD (RNTuple's default) and uncompressed
baskets do not, so a damaged basket can decode into numbers. Each chunk of leptons is checked
right after it is read (:meth:`Plausibility.check`, called by
:class:`gammastar.selection.executors.processor.DileptonProcessor`), before any selection:

* every per-lepton column of an event has the same number of entries (multiplicities);
* momenta and energies, where finite, are below :func:`max_lepton_energy` of the config's
  ``beam.energy``; ``E ≥ |p|`` within the storage precision; ``pt ≥ 0``, ``mass ≥ 0``,
  ``|phi| ≤ π`` in the ``pt, eta, phi`` layout (a layout's own coordinates: its registry
  entry's ``checks``, :class:`gammastar.io.Layout`);
* where a chunk's energies were computed from the momenta (at least :data:`SHELL_EXACT` of
  its leptons exactly on the ``input.lepton_mass`` shell), leptons off that shell by more than
  :data:`SHELL_GEV2` (a momentum component damaged into a smaller one leaves E ≥ |p|);
* every charge is −1 or +1;
* with ``input.nonfinite: bad_file`` every momentum component is finite (default ``cut``:
  NaN/inf leptons are dropped and counted in the cut flow).

A chunk that fails is an :class:`~gammastar.errors.InputError` naming the file, the branch and
the entry range: a bad file (``--skip-bad-files`` skips it and lists it in ``select.json``).
A basket that does not even decompress or decode (the ZLIB, LZ4 and LZMA checksums, a damaged
header) is named the same way, with the damaged basket's entries (:func:`read_failure`).
docs/howto/runs-and-failures.md lists what these checks catch and what they cannot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from gammastar.errors import InputError
from gammastar.io import Checks, Layout, get_layout
from gammastar.physics.constants import M_MU, M_PROTON

if TYPE_CHECKING:
    from gammastar.config import AnalysisConfig

SMEARING_MARGIN = 2.0
"""Factor on the kinematic limit allowed for mis-measurement (a 100% momentum error)."""


SHELL_GEV2 = 4.0
"""A lepton whose |E² − |p|² − m²| exceeds this (GeV²: a mass 2 GeV off; e, μ and τ
hypotheses all lie within it) is off the mass shell (the rule of :data:`SHELL_EXACT`)."""

SHELL_EXACT = 0.5
"""When at least this fraction of a chunk's (finite) leptons has E² = |p|² + m² to the storage
precision (16 ε (E² + |p|²): E was computed from the momentum, as in the mock and the CMS
files), leptons off the shell by more than :data:`SHELL_GEV2` are damage. Energies measured
independently (a calorimeter) are never exact to that precision, and the rule says nothing."""


def max_lepton_energy(beam_energy: float) -> float:
    """Largest plausible lab energy (and momentum) of a reconstructed lepton, GeV.

    Energy conservation in a beam–nucleon collision bounds any product's lab energy by
    ``E_beam + m_p`` (the target nucleon at rest; Fermi motion adds < 0.3 GeV; at a collider,
    whose configs give the energy of one beam, by ``E_beam``); a factor
    :data:`SMEARING_MARGIN` covers a mis-measured momentum far beyond any spectrometer's
    resolution. Garbage decoded from a damaged basket is typically orders of magnitude above
    it (values such as 6 × 10³⁷ GeV).

    Arguments:
        beam_energy: beam energy (config ``beam.energy``), GeV.

    Returns:
        ``SMEARING_MARGIN · (E_beam + m_p)`` in GeV.

    Example:
        >>> round(max_lepton_energy(400.0), 3)
        801.877
    """
    return SMEARING_MARGIN * (float(beam_energy) + M_PROTON)


def _parts(a: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """``(values, offsets)`` of a column: its flat numpy values (no copy for the usual
    jagged arrays read by uproot) and, when jagged, its offsets starting at 0."""
    import awkward as ak

    if isinstance(a, np.ndarray):
        return a, None
    arr = a if isinstance(a, ak.Array) else ak.Array(a)
    layout = arr.layout
    if isinstance(layout, ak.contents.ListOffsetArray) and isinstance(
        layout.content, ak.contents.NumpyArray
    ):
        off = np.asarray(layout.offsets)
        values = np.asarray(layout.content.data)[off[0] : off[-1]]
        return values, (off - off[0] if off[0] else off)
    if arr.ndim > 1:
        counts = np.asarray(ak.num(arr, axis=1), dtype=np.int64)
        off = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=off[1:])
        return np.asarray(ak.to_numpy(ak.flatten(arr, axis=None))), off
    return np.asarray(ak.to_numpy(arr)), None


def _eps(a: np.ndarray) -> float:
    """Machine epsilon of a float array's dtype (float64's for other dtypes)."""
    return float(np.finfo(a.dtype if np.issubdtype(a.dtype, np.floating) else np.float64).eps)


def _tolerance(*arrays: np.ndarray) -> float:
    """Relative tolerance of ``E ≥ |p|``: 16 units of the coarsest storage precision
    (float32: 2⁻¹⁹ ≈ 1.9 × 10⁻⁶; a muon of 400 GeV has (E − |p|)/E ≈ 3.5 × 10⁻⁸, below
    float32 rounding, so the stored E may be a few ulps under |p|)."""
    eps = max(np.finfo(a.dtype).eps if np.issubdtype(a.dtype, np.floating) else 0.0 for a in arrays)
    return 16.0 * float(eps or np.finfo(np.float64).eps)


class _Screen(NamedTuple):
    """The fast screen's verdict (:meth:`Plausibility._screen`)."""

    bad: np.ndarray
    """Leptons to judge in float64."""
    n_off: int
    """Leptons off the mass shell (counted only where the chunk's energies are exact)."""
    n_exact: int
    """Leptons of the sample exactly on the mass shell."""
    n_sub: int
    """Finite leptons of the sample."""


def _failure(
    branches: Mapping[str, str], where: tuple[str, int, int], offsets: np.ndarray | None
) -> Callable[[str, str, int], None]:
    """``fail(column, what, i)``: raise the :class:`~gammastar.errors.InputError` of lepton
    ``i`` of a chunk, naming the file, the branch, the entry range and the lepton's entry
    (from the jagged ``offsets``; ``None``: one lepton per entry)."""

    def entry(i: int) -> int:
        if offsets is None:
            return where[1] + i
        return where[1] + int(np.searchsorted(offsets, i, side="right")) - 1

    def fail(col: str, what: str, i: int) -> None:
        raise InputError(
            f"{where[0]}: implausible input in branch {branches[col]!r}, entries "
            f"{where[1]}-{where[2]}: {what} at entry {entry(i)} (damaged basket?)"
        )

    return fail


@dataclass(frozen=True)
class Plausibility:
    """The plausibility checks of a run (:mod:`gammastar.selection.plausibility`).

    Arguments:
        max_energy: bound on |p| and E, GeV (:func:`max_lepton_energy`).
        nonfinite: ``"cut"`` (non-finite leptons are the selection's to drop and count) or
            ``"bad_file"`` (a non-finite momentum component marks the file as bad).
    """

    max_energy: float
    nonfinite: str = "cut"
    lepton_mass: float = M_MU

    @classmethod
    def from_config(cls, cfg: AnalysisConfig) -> Plausibility:
        """The checks of a config: ``beam.energy`` and ``input.nonfinite``."""
        return cls(
            max_lepton_energy(cfg.beam.energy),
            getattr(cfg.input, "nonfinite", "cut"),
            cfg.input.lepton_mass,
        )

    def check(
        self,
        cols: Mapping[str, Any],
        layout: str,
        branches: Mapping[str, str],
        where: tuple[str, int, int],
    ) -> None:
        """Check one chunk (package column → array, as read).

        Arguments:
            cols: the chunk's columns.
            layout: the input layout.
            branches: package column → branch name (for the message).
            where: ``(file, first entry, stop entry)`` of the chunk.

        Raises:
            InputError: naming file, branch and entry range, and the first offending entry.

        Example:
            >>> p = Plausibility(max_lepton_energy(400.0))
            >>> cols = {"px": [[0.0]], "py": [[0.0]], "pz": [[1e30]], "E": [[1e30]],
            ...         "charge": [[1]]}
            >>> p.check(cols, "jagged_cartesian", {k: k for k in cols}, ("f.root", 0, 1))
            Traceback (most recent call last):
            ...
            gammastar.errors.InputError: f.root: implausible input in branch 'pz', entries 0-1: |p| = 1e+30 GeV above 801.9 GeV (2 (beam.energy + m_p)) at entry 0 (damaged basket?)
        """
        lay = get_layout(layout)
        parts = {c: _parts(v) for c, v in cols.items()}
        if lay.paired:
            for k in ("1", "2"):
                self._leptons(lay, parts, branches, where, suffix=k, offsets=None)
            return
        first: tuple[str, np.ndarray] | None = None  # the first per-lepton column's offsets
        for c in cols:
            off = parts[c][1]
            if c not in lay.per_lepton or off is None:
                continue
            if first is None:
                first = (c, off)
            elif not np.array_equal(off, first[1]):
                n, n0 = np.diff(off), np.diff(first[1])
                common = min(len(n), len(n0))
                diff = np.flatnonzero(n[:common] != n0[:common])
                bad = int(diff[0]) if len(diff) else common
                raise InputError(
                    f"{where[0]}: inconsistent input: branches {branches[first[0]]!r} and "
                    f"{branches[c]!r} disagree on the number of leptons, entries "
                    f"{where[1]}-{where[2]} (first at entry {where[1] + bad}; damaged basket?)"
                )
        offsets = None if first is None else first[1]
        self._leptons(lay, parts, branches, where, suffix="", offsets=offsets)

    def _leptons(
        self,
        lay: Layout,
        parts: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
        branches: Mapping[str, str],
        where: tuple[str, int, int],
        *,
        suffix: str,
        offsets: np.ndarray | None,
    ) -> None:
        """Check one set of leptons (``suffix``: ``"1"``/``"2"`` of a paired layout): charges,
        then the layout's own coordinates (:meth:`_own_coordinates`), or px, py, pz, E: a fast
        screen (:meth:`_screen`) and, where it flags a lepton, the judgement in float64
        (:meth:`_judge`)."""
        fail = _failure(branches, where, offsets)
        qcol = lay.charge + suffix
        q = parts[qcol][0]
        okq = np.abs(q) == 1
        if not okq.all():
            i = int(np.flatnonzero(~okq)[0])
            fail(qcol, f"charge {q[i]} (not ±1)", i)
        if lay.checks is not None:  # the layout's own coordinates (not px, py, pz, E)
            self._own_coordinates(lay, lay.checks, parts, fail)
            return
        names = [f"{c}{suffix}" for c in ("px", "py", "pz", "E")]
        p4 = tuple(parts[c][0] for c in names)
        self._finite(list(zip(names, p4, strict=True)), fail)
        tol = _tolerance(*p4)
        screen = self._screen(p4, tol)
        if screen.bad.any():
            self._judge(p4, names, tol, screen, fail)

    def _own_coordinates(
        self,
        lay: Layout,
        checks: Checks,
        parts: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
        fail: Callable[[str, str, int], None],
    ) -> None:
        """A layout's own checks of its coordinates (:attr:`gammastar.io.Layout.checks`), on
        the leptons whose coordinates are all finite (the others: the selection's cut)."""
        named = [(c, parts[c][0]) for c in lay.coordinates if c in parts]
        self._finite(named, fail)
        fin = np.logical_and.reduce([np.isfinite(a) for _, a in named])  # others: cut
        for col, bad, what in checks(dict(named), self.max_energy, _tolerance):
            bad = fin & bad
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                fail(col, what, i)

    def _screen(self, p4: tuple[np.ndarray, ...], tol: float) -> _Screen:
        """The fast screen in the stored precision: |p|² > B², E > B, E < 0,
        E² < |p|² (1 − tol)², and off the mass shell where the chunk's energies were computed
        from the momenta (:data:`SHELL_EXACT`). NaN compares false (the selection's cut);
        overflow to inf is flagged, then judged."""
        px, py, pz, e = p4
        bound = self.max_energy
        with np.errstate(over="ignore", invalid="ignore"):
            p2 = px * px
            p2 += py * py
            p2 += pz * pz
            bad = p2 > bound * bound
            bad |= e > bound
            bad |= e < 0
            e2 = e * e
            bad |= e2 < p2 * ((1 - tol) ** 2)
            # energies computed from the momentum (exact to precision for nearly all): a
            # lepton off that shell by more than SHELL_GEV2 is damage
            d = e2 - p2
            d -= self.lepton_mass**2
            np.abs(d, out=d)
            # (which kind of energy: decided on the finite ones of every 8th lepton of a large
            # chunk, enough for a fraction)
            sub = slice(None, None, 8 if len(d) > 4096 else 1)
            ds, ss = d[sub], e2[sub] + p2[sub]
            n_sub = int(np.count_nonzero(np.isfinite(ds)))
            n_exact = int(np.count_nonzero(ds <= ss * (16 * _eps(e))))
            n_off = 0
            if n_exact and n_exact >= SHELL_EXACT * n_sub:
                shell = d > SHELL_GEV2
                n_off = int(np.count_nonzero(shell))
                bad |= shell
        return _Screen(bad, n_off, n_exact, n_sub)

    def _judge(
        self,
        p4: tuple[np.ndarray, ...],
        names: list[str],
        tol: float,
        screen: _Screen,
        fail: Callable[[str, str, int], None],
    ) -> None:
        """The flagged chunk in float64: the first lepton (finite; the others are the
        selection's cut) with |p| or E above the bound, E below |p|, or off the mass shell,
        is the failure."""
        px, py, pz, e = p4
        bound = self.max_energy
        with np.errstate(over="ignore", invalid="ignore"):
            p = np.sqrt(
                px.astype(np.float64) ** 2 + py.astype(np.float64) ** 2 + pz.astype(np.float64) ** 2
            )
            e64 = e.astype(np.float64)
            fin = np.isfinite(p) & np.isfinite(e64)  # the others: the selection's cut
            big_p = fin & (p > bound)
            if big_p.any():
                i = int(np.flatnonzero(big_p)[0])
                comp = max(range(3), key=lambda k: abs(float((px, py, pz)[k][i])))
                fail(
                    names[comp],
                    f"|p| = {p[i]:.3g} GeV above {bound:.1f} GeV (2 (beam.energy + m_p))",
                    i,
                )
            big_e = fin & (e64 > bound)
            if big_e.any():
                i = int(np.flatnonzero(big_e)[0])
                fail(names[3], f"E = {e64[i]:.3g} GeV above {bound:.1f} GeV", i)
            low = fin & (e64 < p * (1 - tol))
            if low.any():
                i = int(np.flatnonzero(low)[0])
                fail(names[3], f"E = {e64[i]:.6g} GeV below |p| = {p[i]:.6g} GeV", i)
            if screen.n_off:
                m2 = e64 * e64 - p * p
                off = fin & (np.abs(m2 - self.lepton_mass**2) > SHELL_GEV2)
                if off.any():
                    i = int(np.flatnonzero(off)[0])
                    fail(
                        names[3],
                        f"E = {e64[i]:.6g} GeV, |p| = {p[i]:.6g} GeV (one of them damaged): mass "
                        f"{np.sqrt(abs(m2[i])):.3g} GeV off the lepton mass shell, while "
                        f"{screen.n_exact} of {screen.n_sub} leptons of the chunk checked are "
                        "exactly on it",
                        i,
                    )

    def _finite(self, named: list[tuple[str, np.ndarray]], fail: Any) -> None:
        if self.nonfinite != "bad_file":
            return
        for col, a in named:
            ok = np.isfinite(a)
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                fail(col, f"non-finite value {a[i]}", i)


CODECS = {b"ZL": "ZLIB", b"CS": "ZLIB", b"L4": "LZ4", b"XZ": "LZMA", b"ZS": "ZSTD"}
"""ROOT's compression-header tags (the first 2 bytes of a compressed basket payload)."""


def read_failure(where: tuple[str, int, int], tree: str, branch: str, err: Exception) -> InputError:
    """The :class:`~gammastar.errors.InputError` of a branch of a chunk that failed to read
    (decompression or decoding): the file, the branch, the entries of the first basket of the
    chunk that fails on its own (the chunk's entries when none does, or the file is no TTree)
    and its codec, and the reader's own words.

    Arguments:
        where: ``(file, first entry, stop entry)`` of the chunk.
        tree: the TTree's name.
        branch: the branch that failed.
        err: the reader's exception.
    """
    path, start, stop = where
    try:
        first, last, codec = _damaged_basket(path, tree, branch, start, stop)
    except Exception:  # noqa: BLE001 - the file is beyond reading: the chunk's entries
        first, last, codec = start, stop, ""
    cause = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:200]
    return InputError(
        f"{path}: unreadable {codec + ' ' if codec else ''}basket in branch {branch!r}, entries "
        f"{first}-{last} ({cause}; damaged basket)"
    )


def _damaged_basket(
    path: str, tree: str, branch: str, start: int, stop: int
) -> tuple[int, int, str]:
    """``(first entry, stop entry, codec)`` of the first basket of ``branch`` overlapping
    ``[start, stop)`` that does not read on its own."""
    import uproot

    with uproot.open(path) as f:
        br = f[tree][branch]
        offsets = [int(x) for x in br.entry_offsets]
        for i in range(len(offsets) - 1):
            if offsets[i + 1] <= start or offsets[i] >= stop:
                continue
            try:
                br.basket(i)
            except Exception:  # noqa: BLE001 - this basket is the damaged one
                return max(start, offsets[i]), min(stop, offsets[i + 1]), _codec(br, i)
    raise LookupError(branch)


def _codec(br: Any, i: int) -> str:
    """The compression of basket ``i`` of ``br`` from its header (``""``: not known)."""
    try:
        key = br.basket_key(i)
        seek, nbytes = int(br.member("fBasketSeek")[i]), int(br.member("fBasketBytes")[i])
        if key.fObjlen == nbytes - key.fKeylen:
            return "uncompressed"
        with open(br.file.file_path, "rb") as fh:
            fh.seek(seek + key.fKeylen)
            return CODECS.get(fh.read(2), "")
    except Exception:  # noqa: BLE001 - a damaged key: the codec stays unnamed
        return ""
