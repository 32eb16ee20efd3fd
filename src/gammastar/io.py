"""Reading dilepton ntuples: input files, branch mappings and up-front checks.

Three layouts map an experiment's branches onto the package's columns
(design.md, "Input schemas"):

``jagged_cartesian``
    one entry per event, per-lepton jagged ``px, py, pz, E, charge`` (the mock ntuple);
``jagged_ptetaphi``
    per-lepton jagged collider-style ``pt, eta, phi, mass, charge`` (NanoAOD ``Muon_*``);
``flat_pairs``
    one pre-paired entry per row, ``E1, px1, py1, pz1, Q1, E2, px2, py2, pz2, Q2``.

The config's ``input.branches`` overrides the defaults below, key by key. Both TTrees and
RNTuples are read (uproot). Every file is opened and every needed branch looked up
*before* any processing starts (:func:`check_inputs`); a missing branch is reported by name.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gammastar.errors import ConfigError, InputError

if TYPE_CHECKING:
    from gammastar.config import AnalysisConfig

LAYOUTS: dict[str, dict[str, str]] = {
    "jagged_cartesian": {
        "px": "muon_px",
        "py": "muon_py",
        "pz": "muon_pz",
        "E": "muon_E",
        "charge": "muon_charge",
    },
    "jagged_ptetaphi": {
        "pt": "Muon_pt",
        "eta": "Muon_eta",
        "phi": "Muon_phi",
        "charge": "Muon_charge",
    },
    "flat_pairs": {
        "E1": "E1",
        "px1": "px1",
        "py1": "py1",
        "pz1": "pz1",
        "Q1": "Q1",
        "E2": "E2",
        "px2": "px2",
        "py2": "py2",
        "pz2": "pz2",
        "Q2": "Q2",
    },
}
"""Required columns of each layout and their default branch names."""

OPTIONAL: dict[str, dict[str, str]] = {
    "jagged_cartesian": {
        "event": "event",
        "truth_channel": "truth_channel",
        "parent": "muon_parent",
    },
    "jagged_ptetaphi": {
        "mass": "Muon_mass",
        "event": "event",
        "truth_channel": "truth_channel",
        "parent": "Muon_parent",
    },
    "flat_pairs": {"event": "Event", "truth_channel": "truth_channel"},
}
"""Optional columns: used when present in every file (unless mapped explicitly, then required)."""


@dataclass(frozen=True)
class BranchMap:
    """Which branch feeds which column, for one layout."""

    layout: str
    required: dict[str, str]
    optional: dict[str, str] = field(default_factory=dict)
    lepton: str = "mu"
    """``input.lepton``: the flavour the default branch names were chosen for."""

    @property
    def all(self) -> dict[str, str]:
        """Required and available optional columns together."""
        return {**self.required, **self.optional}


FLAVOUR_PREFIX = {"mu": ("muon_", "Muon_"), "e": ("electron_", "Electron_")}
"""Default per-lepton branch prefixes of each ``input.lepton`` (cartesian, NanoAOD-like)."""


def _flavoured(name: str, lepton: str) -> str:
    """The default branch ``name`` (written for muons) for the flavour ``lepton``."""
    for mu, other in zip(FLAVOUR_PREFIX["mu"], FLAVOUR_PREFIX[lepton], strict=True):
        if name.startswith(mu):
            return other + name[len(mu) :]
    return name


def branch_map(
    layout: str, branches: Mapping[str, str] | None = None, lepton: str = "mu"
) -> BranchMap:
    """The branch mapping of a layout with the user's overrides applied.

    Arguments:
        layout: one of :data:`LAYOUTS`.
        branches: column → branch overrides (``input.branches``); an optional column named
            here becomes required.
        lepton: ``input.lepton`` (``mu`` or ``e``): the default per-lepton branches are
            ``muon_*``/``Muon_*`` or ``electron_*``/``Electron_*``.

    Returns:
        A :class:`BranchMap` whose ``optional`` part still has to be checked against files.

    Raises:
        ConfigError: unknown layout or a column the layout does not have.

    Example:
        >>> branch_map("flat_pairs", {"E1": "energy1"}).required["E1"]
        'energy1'
        >>> branch_map("jagged_cartesian", lepton="e").required["px"]
        'electron_px'
    """
    if lepton not in FLAVOUR_PREFIX:
        raise ConfigError(f"input.lepton: unknown flavour {lepton!r}; one of mu, e")
    if layout not in LAYOUTS:
        raise ConfigError(f"input.layout: unknown layout {layout!r}; one of {sorted(LAYOUTS)}")
    branches = dict(branches or {})
    known = set(LAYOUTS[layout]) | set(OPTIONAL[layout])
    unknown = sorted(set(branches) - known)
    if unknown:
        raise ConfigError(
            f"input.branches: unknown column(s) {unknown} for layout {layout!r}; "
            f"known: {sorted(known)}"
        )
    required = {k: branches.get(k, _flavoured(v, lepton)) for k, v in LAYOUTS[layout].items()}
    optional = {}
    for k, v in OPTIONAL[layout].items():
        if k in branches:
            required[k] = branches[k]
        else:
            optional[k] = _flavoured(v, lepton)
    return BranchMap(layout, required, optional, lepton)


def resolve_files(
    files: list[str] | Mapping[str, Any],
    tree: str,
    resolve: Any = None,
) -> dict[str, dict[str, Any]]:
    """Turn paths, globs or a coffea fileset into a coffea fileset ``{dataset: {files: {p: tree}}}``.

    Arguments:
        files: a list of paths/globs, or a fileset mapping ``dataset → {"files": ...}`` where
            ``files`` is a list of paths or a ``{path: tree}`` mapping.
        tree: the default tree (or RNTuple) name.
        resolve: optional callable turning a config path into an absolute path.

    A path matched twice within a list (overlapping globs) is read once; the same file in
    two datasets is an error (its chunks would be counted twice).

    Raises:
        InputError: a path or glob matches no file.
        ConfigError: a fileset entry without ``files``, or a file in two datasets.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "a.root").touch()
        >>> fs = resolve_files([str(d / "*.root")], "events")
        >>> list(fs["data"]["files"].values())
        ['events']
    """
    conv = resolve or (lambda p: Path(p).expanduser().absolute())

    def expand(pattern: str) -> list[str]:
        text = os.fspath(conv(pattern))
        if glob.has_magic(text):
            hits = sorted(glob.glob(text))
            if not hits:
                raise InputError(f"{pattern}: the glob matches no file")
            return hits
        return [text]

    out: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}  # file -> dataset (across datasets: a file once per run)
    if isinstance(files, Mapping):
        for dataset, spec in files.items():
            if isinstance(spec, Mapping):
                flist = spec.get("files")
                extra = {k: v for k, v in spec.items() if k != "files"}
            else:
                flist, extra = spec, {}
            if flist is None:
                raise ConfigError(f"input.files.{dataset}: a fileset entry needs 'files'")
            if isinstance(flist, str | os.PathLike):
                flist = [flist]
            entries: dict[str, str] = {}
            items = flist.items() if isinstance(flist, Mapping) else ((f, tree) for f in flist)
            for pattern, tname in items:
                for p in expand(str(pattern)):
                    if p in seen:
                        raise ConfigError(
                            f"input.files: {p} is listed twice (datasets {seen[p]!r} and "
                            f"{dataset!r}); a run reads each file once"
                        )
                    if entries.get(p, tname or tree) != (tname or tree):
                        raise ConfigError(
                            f"input.files.{dataset}: {p} is given with two trees "
                            f"({entries[p]!r}, {tname!r}); a run reads each file once"
                        )
                    entries[p] = tname or tree
            seen.update(dict.fromkeys(entries, str(dataset)))
            out[str(dataset)] = {"files": entries, **extra}
    else:
        if isinstance(files, str):
            files = [files]
        entries = {}
        for pattern in files:
            for p in expand(str(pattern)):
                entries[p] = tree
        out["data"] = {"files": entries}
    if not any(spec["files"] for spec in out.values()):
        raise InputError("input.files: no input file given")
    return out


def fileset_from_config(
    cfg: AnalysisConfig, inputs: Iterable[str | os.PathLike[str]] | None = None
) -> dict[str, dict[str, Any]]:
    """The coffea fileset of a config; ``inputs`` (``--input``) replaces ``input.files``."""
    if inputs:
        return resolve_files([os.fspath(p) for p in inputs], cfg.input.tree)
    return resolve_files(cfg.input.files, cfg.input.tree, resolve=cfg.resolve)


@dataclass
class CheckedInputs:
    """Result of :func:`check_inputs`."""

    fileset: dict[str, dict[str, Any]]
    """The readable files only."""
    branches: BranchMap
    """Required plus those optional columns present in every readable file."""
    bad_files: dict[str, str]
    """Skipped files and why (only with ``skip_bad_files``)."""
    entries: dict[str, int]
    """Entries per readable file."""
    truth_trees: list[str]
    """Readable files that also hold a ``truth`` TTree (mock data)."""
    uuids: dict[str, bytes] = field(default_factory=dict)
    """The ROOT file UUID of each readable file (with ``entries``, what coffea's chunking
    needs: :func:`gammastar.processor.run_processor` skips coffea's own pass over the files)."""

    @property
    def files(self) -> list[str]:
        """All readable files, in fileset order."""
        return [p for spec in self.fileset.values() for p in spec["files"]]


def _fields(obj: Any) -> set[str]:
    """Branch (TTree) or field (RNTuple) names, including nested ``a.b`` and ``b``."""
    keys = set(obj.keys(recursive=True) if hasattr(obj, "keys") else [])
    return keys | {k.rsplit(".", 1)[-1] for k in keys} | {k.rsplit("/", 1)[-1] for k in keys}


def open_tree(path: str, tree: str) -> tuple[Any, Any]:
    """Open ``path`` and return ``(file, tree)``; every failure an :class:`InputError`."""
    import uproot

    if not os.path.exists(path):
        raise InputError(f"{path}: input file not found")
    try:
        f = uproot.open(path)
    except Exception as err:  # noqa: BLE001
        raise InputError(
            f"{path}: not a readable ROOT file (truncated or not ROOT): {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}"
        ) from None
    try:
        t = f[tree]
    except Exception:  # noqa: BLE001
        keys = sorted({k.split(";")[0] for k in f.keys(recursive=False)})
        f.close()
        raise InputError(f"{path}: no tree {tree!r} in the file (it holds {keys})") from None
    if not (hasattr(t, "num_entries") and hasattr(t, "keys")):
        f.close()
        raise InputError(f"{path}: {tree!r} is a {type(t).__name__}, not a TTree or RNTuple")
    return f, t


PER_LEPTON = {"px", "py", "pz", "E", "charge", "parent", "pt", "eta", "phi", "mass"}
"""Columns that hold one value per lepton (jagged) in the jagged layouts."""


def _damaged(path: str, err: Exception, what: str) -> InputError:
    return InputError(
        f"{path}: cannot read {what} (truncated or damaged file): "
        f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:500]
    )


def _ttree_layout(path: str, tree: Any, names: list[str]) -> dict[str, bool] | None:
    """Check a TTree's needed branches from its metadata alone, without decompressing data.

    The file must be as long as its header says (``fEND``) and every basket of every needed
    branch must lie inside it (a truncated file fails here). Returns, per branch, whether it
    is jagged, from its uproot interpretation; ``None`` when an interpretation is neither a
    plain number nor a jagged array of numbers (then :func:`_probe` reads an entry instead).
    """
    import numpy as np
    from uproot.interpretation.jagged import AsJagged
    from uproot.interpretation.numerical import AsDtype

    size = os.path.getsize(path)
    fend = int(getattr(tree.file, "fEND", 0) or 0)
    if fend > size:
        raise InputError(f"{path}: truncated file ({size} bytes; its header says {fend})")
    jagged: dict[str, bool] = {}
    for name in names:
        try:
            branch = tree[name]
            n = int(branch.num_baskets) - len(branch.embedded_baskets)  # baskets on disk
            seek = np.asarray(branch.member("fBasketSeek")[:n], dtype=np.int64)
            nbytes = np.asarray(branch.member("fBasketBytes")[:n], dtype=np.int64)
            interp = branch.interpretation
        except Exception as err:  # noqa: BLE001 - uproot raises many types on damaged files
            raise _damaged(path, err, f"branch {name!r} of {tree.name!r}") from None
        if n and int((seek + nbytes).max()) > size:
            raise InputError(
                f"{path}: truncated file: baskets of branch {name!r} end beyond its {size} bytes"
            )
        if isinstance(interp, AsJagged) and isinstance(interp.content, AsDtype):
            jagged[name] = True
        elif isinstance(interp, AsDtype) and interp.inner_shape == ():
            jagged[name] = False
        else:
            return None
    return jagged


def _probe(path: str, tree: Any, columns: Mapping[str, str], layout: str) -> None:
    """Check that the needed branches are readable and that per-lepton branches are jagged
    (one value per event otherwise).

    TTrees are checked from their metadata (:func:`_ttree_layout`: file length, basket
    positions, interpretations; about 2 ms instead of the ~0.2 s that decompressing a basket
    of each branch takes on a 5e6-event file). RNTuples, and TTree branches of other types,
    are checked by reading their first and last entry. Damage inside a basket that these
    checks cannot see is reported by file name while processing
    (:func:`gammastar.processor.run_processor`).
    """
    n = int(tree.num_entries)
    if n == 0:
        return
    names = sorted(set(columns.values()))
    jagged = _ttree_layout(path, tree, names) if hasattr(tree, "branches") else None
    if jagged is None:
        try:
            for start in sorted({0, n - 1}):
                arrays = tree.arrays(names, entry_start=start, entry_stop=start + 1)
        except Exception as err:  # noqa: BLE001 - uproot raises many types on damaged files
            raise _damaged(path, err, f"branches of {tree.name!r}") from None
        jagged = {br: arrays[br].ndim > 1 for br in names}
    wrong = []
    for col, br in columns.items():
        want = layout != "flat_pairs" and col in PER_LEPTON
        if jagged[br] != want:
            wrong.append(f"{col} → {br!r} ({'jagged' if jagged[br] else 'one value per entry'})")
    if wrong:
        raise InputError(
            f"{path}: branch(es) {', '.join(wrong)} do not fit layout {layout} "
            "(per-lepton branches must be jagged in the jagged layouts, flat in flat_pairs)"
        )


def check_inputs(
    fileset: Mapping[str, Mapping[str, Any]],
    branches: BranchMap,
    *,
    skip_bad_files: bool = False,
) -> CheckedInputs:
    """Open every file and look up every needed branch before any processing.

    Arguments:
        fileset: as from :func:`resolve_files`.
        branches: the layout's mapping (:func:`branch_map`).
        skip_bad_files: skip unreadable files, missing trees or branches (reported in
            ``bad_files``) instead of stopping.

    Returns:
        A :class:`CheckedInputs`.

    Raises:
        InputError: a file is unreadable, lacks the tree or a branch (all missing branches are
            named), and ``skip_bad_files`` is false; or no readable file is left.
    """
    good: dict[str, dict[str, Any]] = {}
    bad: dict[str, str] = {}
    entries: dict[str, int] = {}
    uuids: dict[str, bytes] = {}
    truth: list[str] = []
    present_optional = dict(branches.optional)
    for dataset, spec in fileset.items():
        kept = {}
        for path, tree in spec["files"].items():
            try:
                f, t = open_tree(path, tree)
                try:
                    names = _fields(t)
                    missing = [
                        f"{col} → {br!r}"
                        for col, br in branches.required.items()
                        if br not in names
                    ]
                    if missing:
                        raise InputError(
                            f"{path}: tree {tree!r} lacks branch(es) {', '.join(missing)} "
                            f"(layout {branches.layout}; map them in input.branches)"
                            + _flavour_hint(branches, names)
                        )
                    for col, br in list(present_optional.items()):
                        if br not in names:
                            present_optional.pop(col)
                    entries[path] = int(t.num_entries)
                    uuids[path] = bytes(f.file.fUUID)
                    _probe(
                        path,
                        t,
                        {
                            **branches.required,
                            **{c: b for c, b in present_optional.items() if b in names},
                        },
                        branches.layout,
                    )
                    if "truth" in {k.split(";")[0] for k in f.keys(recursive=False)}:
                        truth.append(path)
                finally:
                    f.close()
            except InputError as err:
                if not skip_bad_files:
                    raise
                bad[path] = str(err)
                continue
            kept[path] = tree
        if kept:
            good[dataset] = {**spec, "files": kept}
    if not good:
        raise InputError(
            "no readable input file: " + "; ".join(f"{p}: {why}" for p, why in bad.items())[:2000]
        )
    return CheckedInputs(
        fileset=good,
        branches=BranchMap(branches.layout, branches.required, present_optional, branches.lepton),
        bad_files=bad,
        entries=entries,
        uuids=uuids,
        truth_trees=truth,
    )


def _flavour_hint(branches: BranchMap, names: set[str]) -> str:
    """A clause naming the other flavour when the file holds its branches instead."""
    other = "mu" if branches.lepton == "e" else "e"
    theirs = FLAVOUR_PREFIX[other]
    mine = FLAVOUR_PREFIX[branches.lepton]
    if any(n.startswith(theirs) for n in names) and not any(n.startswith(mine) for n in names):
        what = {"mu": "muon", "e": "electron"}
        return (
            f"; input.lepton is {branches.lepton!r} but the file holds only {what[other]} "
            f"branches ({theirs[0]}*/{theirs[1]}*): set input.lepton: {other}"
        )
    return ""


def read_truth(paths: Iterable[str], columns: Iterable[str] = ("channel", "m", "m_true")) -> Any:
    """Concatenate the ``truth`` trees of mock files into an awkward record array."""
    import awkward as ak
    import uproot

    parts = []
    for p in paths:
        try:
            with uproot.open(p) as f:
                parts.append(f["truth"].arrays(list(columns)))
        except Exception as err:  # noqa: BLE001
            raise InputError(f"{p}: cannot read the truth tree ({err})") from None
    if not parts:
        raise InputError("no input file holds a truth tree")
    return ak.concatenate(parts)
