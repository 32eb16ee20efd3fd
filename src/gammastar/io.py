"""Reading dilepton ntuples: input layouts, files, branch mappings and up-front checks.

The layouts (:data:`LAYOUTS`, a registry of :class:`Layout`, one entry each: the mock's
``jagged_cartesian``, NanoAOD-like ``jagged_ptetaphi``, pre-paired ``flat_pairs``, ...) map an
experiment's branches onto the package's columns and say how leptons are built from them
(docs/tutorial/02-your-data.md).

The config's ``input.branches`` overrides a layout's default branches, key by key. Both TTrees and
RNTuples are read (uproot), from local paths or URLs (``root://``, ``http(s)://``, ``s3://``, ...:
:mod:`gammastar.core.remote`). Every file is opened and every needed branch looked up
*before* any processing starts (:func:`check_inputs`); a missing branch is reported by name.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from gammastar.core import remote
from gammastar.core.artifacts import os_error_text
from gammastar.core.urls import is_url, redact
from gammastar.errors import ConfigError, InputError


class InputConfig(Protocol):
    """What :func:`fileset_from_config` reads of a config (``gammastar.config.AnalysisConfig``
    has it; this layer sits below the config and does not import it)."""

    @property
    def input(self) -> Any: ...

    def resolve(self, path: str | os.PathLike[str], *, substitute: bool = ...) -> Path: ...


EVENT_COLUMNS = frozenset({"event", "truth_channel"})
"""Columns that hold one value per entry in every layout (the others: one per lepton)."""

Check = tuple[str, Any, str]
"""One plausibility finding of :attr:`Layout.checks`: ``(column, bad mask, what)``."""

Checks = Callable[[Mapping[str, Any], float, Callable[[Any], float]], list[Check]]
"""A layout's plausibility checks of its own coordinates (:attr:`Layout.checks`)."""


@dataclass(frozen=True)
class Layout:
    """One input layout: its columns, their default branches and how leptons are built.

    Adding a layout is one :class:`Layout` in :data:`LAYOUTS`: the config's ``input.layout``,
    the branch checks (:func:`branch_map`, :func:`check_inputs`), the lepton construction
    (:func:`gammastar.selection.chunk.make_leptons`), the plausibility checks
    (:mod:`gammastar.selection.plausibility`) and the processor's warm-up all take it from there.

    Attributes:
        name: the ``input.layout`` value.
        doc: one line on what an entry of the file is.
        required: column → default branch; every one must be in every file.
        optional: column → default branch; used when every file has it (when mapped in
            ``input.branches``, required).
        leptons: ``(col, lepton_mass) → {field: array}``, ``col(name)`` giving a column as an
            awkward array (``None`` when the input lacks it): the four coordinates of every
            entry's leptons in one of ``vector``'s Momentum4D coordinate systems, jagged
            (entries × leptons); ``charge`` (and ``parent``, when the input has it) are added
            from their columns unless returned (a paired layout returns ``charge``).
        from_vectors: the inverse, ``(p4, charge) → columns``: the columns of this layout that
            hold the leptons ``p4`` (jagged Momentum4D, one entry per event) with charges
            ``charge`` (the processor's warm-up; the round-trip test of every layout).
        paired: one pre-made pair per entry (lepton columns suffixed ``1`` and ``2``, none
            jagged); otherwise every column but :data:`EVENT_COLUMNS` is jagged.
        charge: the charge column (its stem, for a paired layout).
        checks: plausibility of non-Cartesian coordinates, ``(values, bound, tol) → [(column,
            bad mask, what)]`` in order of report, on the flat per-lepton values of the finite
            leptons (``bound``: the largest plausible momentum, GeV; ``tol(a)``: the relative
            storage precision of ``a``); ``None``: the Cartesian checks (``px, py, pz, E``:
            E ≥ |p|, mass shell) of :mod:`gammastar.selection.plausibility`.
    """

    name: str
    doc: str
    required: Mapping[str, str]
    optional: Mapping[str, str]
    leptons: Callable[[Callable[[str], Any], float], dict[str, Any]]
    from_vectors: Callable[[Any, Any], dict[str, Any]]
    paired: bool = False
    charge: str = "charge"
    checks: Checks | None = None

    @property
    def columns(self) -> frozenset[str]:
        """Every column the layout knows (required and optional)."""
        return frozenset(self.required) | frozenset(self.optional)

    @property
    def per_lepton(self) -> frozenset[str]:
        """Columns with one value per lepton (jagged); none in a paired layout."""
        return frozenset() if self.paired else self.columns - EVENT_COLUMNS

    @property
    def coordinates(self) -> tuple[str, ...]:
        """The per-lepton momentum columns (neither charge nor parent), in declaration order
        (of an unpaired layout: what :attr:`checks` and the finiteness checks look at)."""
        return tuple(
            c
            for c in {**self.required, **self.optional}
            if c not in EVENT_COLUMNS and c not in (self.charge, "parent")
        )


def _jagged_cartesian(col: Callable[[str], Any], lepton_mass: float) -> dict[str, Any]:
    return {k: col(k) for k in ("px", "py", "pz", "E")}


def _jagged_ptetaphi(col: Callable[[str], Any], lepton_mass: float) -> dict[str, Any]:
    import awkward as ak

    fields = {k: col(k) for k in ("pt", "eta", "phi")}
    mass = col("mass")
    fields["mass"] = mass if mass is not None else ak.ones_like(fields["pt"]) * lepton_mass
    return fields


def _ptetaphi_checks(v: Mapping[str, Any], bound: float, tol: Callable[[Any], float]) -> list:
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"):
        p = np.abs(v["pt"].astype(np.float64)) * np.cosh(v["eta"].astype(np.float64))
    out = [
        ("pt", v["pt"] < 0, "pt < 0"),
        ("pt", p > bound, f"|p| above {bound:.1f} GeV"),
        ("phi", np.abs(v["phi"]) > np.pi * (1 + tol(v["phi"])), "|phi| > π"),
    ]
    if "mass" in v:
        out.append(("mass", (v["mass"] < 0) | (v["mass"] > bound), "mass outside [0, E_max]"))
    return out


def _jagged_pthetaphi(col: Callable[[str], Any], lepton_mass: float) -> dict[str, Any]:
    import awkward as ak
    import numpy as np

    # (px, py, pz, mass): vector's theta coordinate would give pz = pt/tan θ, 0/0 on the axis
    p, theta, phi = col("p"), col("theta"), col("phi")
    pt = p * np.sin(theta)
    return {
        "px": pt * np.cos(phi),
        "py": pt * np.sin(phi),
        "pz": p * np.cos(theta),
        "mass": ak.ones_like(p) * lepton_mass,
    }


def _pthetaphi_checks(v: Mapping[str, Any], bound: float, tol: Callable[[Any], float]) -> list:
    import numpy as np

    return [
        ("p", v["p"] < 0, "p < 0"),
        ("p", v["p"] > bound, f"|p| above {bound:.1f} GeV"),
        ("theta", (v["theta"] < 0) | (v["theta"] > np.pi * (1 + tol(v["theta"]))), "θ ∉ [0, π]"),
        ("phi", np.abs(v["phi"]) > np.pi * (1 + tol(v["phi"])), "|phi| > π"),
    ]


def _flat_pairs(col: Callable[[str], Any], lepton_mass: float) -> dict[str, Any]:
    import awkward as ak
    import numpy as np

    def two(a: str, b: str) -> Any:
        x, y = np.asarray(col(a)), np.asarray(col(b))
        flat = np.stack([x, y], axis=1).ravel()
        return ak.unflatten(flat, np.full(len(x), 2, dtype=np.int64))

    fields = {k: two(f"{k}1", f"{k}2") for k in ("px", "py", "pz", "E")}
    fields["charge"] = two("Q1", "Q2")
    return fields


def _to_flat_pairs(p4: Any, charge: Any) -> dict[str, Any]:
    import numpy as np

    cols = {}
    for j in (0, 1):
        for k in ("px", "py", "pz", "E"):
            cols[f"{k}{j + 1}"] = np.asarray(getattr(p4, k)[:, j])
        cols[f"Q{j + 1}"] = np.asarray(charge[:, j])
    return cols


LAYOUTS: dict[str, Layout] = {
    lay.name: lay
    for lay in (
        Layout(
            "jagged_cartesian",
            "one event, per-lepton jagged px, py, pz, E, charge (the mock ntuple)",
            required={
                "px": "muon_px",
                "py": "muon_py",
                "pz": "muon_pz",
                "E": "muon_E",
                "charge": "muon_charge",
            },
            optional={"event": "event", "truth_channel": "truth_channel", "parent": "muon_parent"},
            leptons=_jagged_cartesian,
            from_vectors=lambda p4, q: {
                "px": p4.px,
                "py": p4.py,
                "pz": p4.pz,
                "E": p4.E,
                "charge": q,
            },
        ),
        Layout(
            "jagged_ptetaphi",
            "one event, per-lepton jagged collider-style pt, eta, phi, mass, charge (NanoAOD)",
            required={
                "pt": "Muon_pt",
                "eta": "Muon_eta",
                "phi": "Muon_phi",
                "charge": "Muon_charge",
            },
            optional={
                "mass": "Muon_mass",
                "event": "event",
                "truth_channel": "truth_channel",
                "parent": "Muon_parent",
            },
            leptons=_jagged_ptetaphi,
            from_vectors=lambda p4, q: {
                "pt": p4.pt,
                "eta": p4.eta,
                "phi": p4.phi,
                "mass": p4.mass,
                "charge": q,
            },
            checks=_ptetaphi_checks,
        ),
        Layout(
            "jagged_pthetaphi",
            "one event, per-lepton jagged momentum p, polar angle theta, azimuth phi, charge",
            required={"p": "lep_p", "theta": "lep_theta", "phi": "lep_phi", "charge": "lep_charge"},
            optional={"event": "event", "truth_channel": "truth_channel", "parent": "lep_parent"},
            leptons=_jagged_pthetaphi,
            from_vectors=lambda p4, q: {"p": p4.p, "theta": p4.theta, "phi": p4.phi, "charge": q},
            checks=_pthetaphi_checks,
        ),
        Layout(
            "flat_pairs",
            "one pre-made pair, E1, px1, py1, pz1, Q1, E2, px2, py2, pz2, Q2",
            required={
                k: k for k in ("E1", "px1", "py1", "pz1", "Q1", "E2", "px2", "py2", "pz2", "Q2")
            },
            optional={"event": "Event", "truth_channel": "truth_channel"},
            leptons=_flat_pairs,
            from_vectors=_to_flat_pairs,
            paired=True,
            charge="Q",
        ),
    )
}
"""The input layouts (the registry: one :class:`Layout` each, keyed by ``input.layout``)."""


def get_layout(name: str) -> Layout:
    """The registered :class:`Layout` called ``name``.

    Raises:
        ConfigError: no such layout (naming ``input.layout`` and the known ones).

    Example:
        >>> sorted(get_layout("flat_pairs").per_lepton)
        []
    """
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ConfigError(
            f"input.layout: unknown layout {name!r}; one of {sorted(LAYOUTS)}"
        ) from None


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
    lay = get_layout(layout)
    branches = dict(branches or {})
    known = set(lay.columns)
    unknown = sorted(set(branches) - known)
    if unknown:
        raise ConfigError(
            f"input.branches: unknown column(s) {unknown} for layout {layout!r}; "
            f"known: {sorted(known)}"
        )
    required = {k: branches.get(k, _flavoured(v, lepton)) for k, v in lay.required.items()}
    optional = {}
    for k, v in lay.optional.items():
        if k in branches:
            required[k] = branches[k]
        else:
            optional[k] = _flavoured(v, lepton)
    return BranchMap(layout, required, optional, lepton)


MOCK_LAYOUT = "jagged_cartesian"
"""The layout of the mock's ``events`` tree (``gammastar generate``)."""

_MOCK_EVENT_BRANCHES = (
    "event",
    "truth_channel",
    "truth_parent_pdgid",
    *(f"truth_gstar_{c}" for c in ("px", "py", "pz", "E", "m")),
)


def mock_branches(leptons: Iterable[str]) -> frozenset[str]:
    """The branches of the mock's ``events`` tree when it holds the flavours ``leptons``
    (DEVELOPERS.md "Mock ntuple"): per flavour its counter (``nmuon``) and the default
    per-lepton branches of :data:`MOCK_LAYOUT` (``muon_px``, ..., ``muon_parent``).

    Example:
        >>> sorted(b for b in mock_branches(["e"]) if b.startswith("electron"))[:2]
        ['electron_E', 'electron_charge']
    """
    lay = LAYOUTS[MOCK_LAYOUT]
    out = set(_MOCK_EVENT_BRANCHES)
    for lep in leptons:
        stem = FLAVOUR_PREFIX[lep][0]
        out.add(f"n{stem[:-1]}")
        out.update(_flavoured(b, lep) for b in {**lay.required, **lay.optional}.values())
    return frozenset(out)


def mock_branch_problem(
    layout: str, branches: Mapping[str, str], lepton: str, mock_leptons: Iterable[str]
) -> str | None:
    """Why ``input.layout``/``input.branches`` of flavour ``lepton`` cannot read the mock's
    ``events`` tree with ``mock_leptons`` (``None``: they can), checked without the file.

    Example:
        >>> mock_branch_problem("jagged_cartesian", {"px": "muon_pxx"}, "mu", ["mu"])
        "input.branches.px: the mock's events tree has no branch 'muon_pxx' (it writes muon_px)"
    """
    if layout != MOCK_LAYOUT:
        return f"input.layout: the mock's events tree is {MOCK_LAYOUT!r}, not {layout!r}"
    have = mock_branches(mock_leptons)
    bm = branch_map(layout, branches, lepton)
    for col, br in bm.required.items():
        if br not in have:
            key = f"input.branches.{col}" if col in branches else "input.lepton"
            default = _flavoured(
                {**LAYOUTS[layout].required, **LAYOUTS[layout].optional}[col], lepton
            )
            made = ", ".join(sorted(mock_leptons))
            why = (
                f"it writes {default}"
                if default in have
                else f"mock.leptons is [{made}]: no {lepton!r} branches"
            )
            return f"{key}: the mock's events tree has no branch {br!r} ({why})"
    return None


def resolve_files(
    files: list[str] | Mapping[str, Any],
    tree: str,
    resolve: Any = None,
) -> dict[str, dict[str, Any]]:
    """Turn paths, globs or a coffea fileset into a coffea fileset ``{dataset: {files: {p: tree}}}``.

    Arguments:
        files: a list of paths/globs, or a fileset mapping ``dataset → {"files": ...}`` where
            ``files`` is a list of paths or a ``{path: tree}`` mapping. A path may be a URL
            (``root://``, ``https://``, ``s3://``, ...), kept as given; its globs are listed
            where the protocol lists (:func:`gammastar.core.remote.expand`).
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
        if is_url(pattern):
            return remote.expand(pattern)
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
    cfg: InputConfig, inputs: Iterable[str | os.PathLike[str]] | None = None
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
    """The ROOT file UUID of each readable file (with ``entries``, what the chunking needs:
    :func:`gammastar.selection.executors.processor.run_processor` opens no file again for it)."""
    probes: dict[str, Any] = field(default_factory=dict)
    """What ``check_inputs``' ``probe`` found in each readable file (none without it)."""

    @property
    def files(self) -> list[str]:
        """All readable files, in fileset order."""
        return [p for spec in self.fileset.values() for p in spec["files"]]


def _fields(obj: Any) -> set[str]:
    """Branch (TTree) or field (RNTuple) names, including nested ``a.b`` and ``b``."""
    keys = set(obj.keys(recursive=True) if hasattr(obj, "keys") else [])
    return keys | {k.rsplit(".", 1)[-1] for k in keys} | {k.rsplit("/", 1)[-1] for k in keys}


def open_tree(path: str, tree: str) -> tuple[Any, Any]:
    """Open ``path`` (a local path or a URL) and return ``(file, tree)``; every failure an
    :class:`InputError` (at a URL: one line naming it, after retries of a transient failure,
    :func:`gammastar.core.remote.open_root`)."""
    import uproot

    if is_url(path):
        try:
            return _open_url(path, tree)
        except InputError as err:  # the URL said without its credentials
            raise InputError(redact(str(err))) from None
    if not os.path.exists(path):
        raise InputError(f"{path}: input file not found")
    if os.path.isdir(path):
        raise InputError(f"{path}: a directory, not a ROOT file (input.files names files or globs)")
    try:
        f = uproot.open(path)
    except Exception as err:  # noqa: BLE001
        if isinstance(err, OSError) and err.errno is not None:  # access (permission), not
            # the contents (a short file is an OSError without errno)
            raise InputError(f"{path}: cannot read the input file ({os_error_text(err)})") from None
        raise _not_root(path, err) from None
    return f, _tree_of(path, f, tree)


def _not_root(path: str, err: Exception) -> InputError:
    return InputError(
        f"{path}: not a readable ROOT file (truncated or not ROOT): {type(err).__name__}: "
        f"{str(err).splitlines()[0] if str(err) else ''}"
    )


def _open_url(url: str, tree: str) -> tuple[Any, Any]:
    """:func:`open_tree` of a URL: the network and access failures one line each, a lost
    connection while reading the header or the tree's metadata tried again
    (:func:`gammastar.core.remote.retrying`); the rest as for a local file."""

    def attempt() -> Any:
        try:
            f = remote.open_root(url)
        except InputError:
            raise
        except Exception as err:  # noqa: BLE001 - the contents: as a local file's
            raise _not_root(url, err) from None
        try:
            f[tree]  # the tree's metadata (uproot keeps it: _tree_of reads it from memory)
        except Exception as err:
            if remote.failure(url, err) is not None:
                f.close()
                raise  # the network's: tried again
        return f

    f = remote.retrying(url, attempt)
    return f, _tree_of(url, f, tree)


def _tree_of(path: str, f: Any, tree: str) -> Any:
    """The TTree or RNTuple ``tree`` of the open file ``f`` (closed when it has none)."""
    try:
        t = f[tree]
    except Exception:  # noqa: BLE001
        keys = sorted({k.split(";")[0] for k in f.keys(recursive=False)})
        f.close()
        raise InputError(f"{path}: no tree {tree!r} in the file (it holds {keys})") from None
    if not (hasattr(t, "num_entries") and hasattr(t, "keys")):
        f.close()
        raise InputError(f"{path}: {tree!r} is a {type(t).__name__}, not a TTree or RNTuple")
    return t


def _damaged(path: str, err: Exception, what: str) -> InputError:
    lost = remote.failure(path, err) if is_url(path) else None  # the network, not the file
    if lost is not None:
        return InputError(lost.text)
    return InputError(redact(
        f"{path}: cannot read {what} (truncated or damaged file): "
        f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:500]
    ))  # fmt: skip


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

    size = remote.size(tree.file) if is_url(path) else os.path.getsize(path)
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
    (:func:`gammastar.selection.executors.processor.run_processor`).
    """
    n = int(tree.num_entries)
    if n == 0:
        return
    per_lepton = LAYOUTS[layout].per_lepton
    names = sorted(set(columns.values()))
    jagged = _ttree_layout(path, tree, names) if hasattr(tree, "branches") else None
    arrays = None  # the last entry read, where the metadata did not tell
    if jagged is None:
        try:
            ends = [
                tree.arrays(names, entry_start=start, entry_stop=start + 1)
                for start in sorted({0, n - 1})
            ]
        except Exception as err:  # noqa: BLE001 - uproot raises many types on damaged files
            raise _damaged(path, err, f"branches of {tree.name!r}") from None
        arrays = ends[-1]
        jagged = {br: arrays[br].ndim > 1 for br in names}
    wrong = []
    for col, br in columns.items():
        want = col in per_lepton
        if jagged[br] != want:
            wrong.append(f"{col} → {br!r} ({'jagged' if jagged[br] else 'one value per entry'})")
    if wrong:
        raise InputError(
            f"{path}: branch(es) {', '.join(wrong)} do not fit layout {layout} "
            "(per-lepton branches must be jagged in the jagged layouts, flat in flat_pairs)"
        )
    lay = LAYOUTS[layout]
    momenta = {c for c in lay.coordinates if not (lay.paired and c.startswith(lay.charge))}
    for col, br in columns.items():
        if col in momenta and _dtype_kind(tree, br, arrays) in ("i", "u", "b"):
            raise InputError(
                f"{path}: branch {br!r} ({col}) holds integers, not a momentum coordinate "
                "(floating point, GeV): map the right branch in input.branches"
            )


def _dtype_kind(tree: Any, branch: str, arrays: Any = None) -> str | None:
    """The numpy kind of a branch's values: from a TTree's interpretation, else from
    ``arrays`` (an entry read by :func:`_probe`); ``None``: not known."""
    import numpy as np

    try:
        if arrays is not None:
            import awkward as ak

            return str(np.asarray(ak.flatten(arrays[branch], axis=None)).dtype.kind)
        interp = tree[branch].interpretation
        return str(getattr(interp, "content", interp).to_dtype.kind)
    except Exception:  # noqa: BLE001 - other interpretations: not known
        return None


@dataclass(frozen=True)
class FileCheck:
    """One readable input file's facts (:func:`check_file`)."""

    entries: int
    uuid: bytes
    optional: frozenset[str]
    """The layout's optional columns whose branch the file holds."""
    truth: bool
    """The file has a ``truth`` tree."""
    probe: Any = None
    """``probe(path, tree, columns)`` of :func:`check_inputs` (``None`` without one)."""


def check_file(
    branches: BranchMap,
    path_tree: tuple[str, str],
    probe: Callable[[str, str, dict[str, str]], Any] | None = None,
) -> FileCheck | InputError:
    """Open one file, look up its tree's branches and probe them (the per-file part of
    :func:`check_inputs`, run on the executor's workers for a parallel check): its
    :class:`FileCheck`, or the :class:`InputError` that names it (returned, not raised, so
    that a worker's answer travels back and the merge reports the first bad file in order).
    A readable file then gets ``probe(path, tree, columns)`` (its required and present
    optional columns → branches) in the same task."""
    path, tree = path_tree
    checked = _check_file(branches, path, tree)
    if probe is None or isinstance(checked, InputError):
        return checked
    cols = {**branches.required, **{c: branches.optional[c] for c in checked.optional}}
    return replace(checked, probe=probe(path, tree, cols))


def _check_file(branches: BranchMap, path: str, tree: str) -> FileCheck | InputError:
    try:
        f, t = open_tree(path, tree)
        try:
            names = _fields(t)
            missing = [f"{col} → {br!r}" for col, br in branches.required.items()
                       if br not in names]  # fmt: skip
            if missing:
                raise InputError(
                    f"{path}: tree {tree!r} lacks branch(es) {', '.join(missing)} "
                    f"(layout {branches.layout}; map them in input.branches)"
                    + _flavour_hint(branches, names)
                )
            optional = {c: b for c, b in branches.optional.items() if b in names}
            _probe(path, t, {**branches.required, **optional}, branches.layout)
            truth = "truth" in {k.split(";")[0] for k in f.keys(recursive=False)}
            return FileCheck(int(t.num_entries), bytes(f.file.fUUID), frozenset(optional), truth)
        finally:
            f.close()
    except InputError as err:
        return InputError(redact(str(err)))  # a URL's credentials never said


def check_inputs(
    fileset: Mapping[str, Mapping[str, Any]],
    branches: BranchMap,
    *,
    skip_bad_files: bool = False,
    map_files: Callable[..., Iterable[FileCheck | InputError]] = map,
    probe: Callable[[str, str, dict[str, str]], Any] | None = None,
) -> CheckedInputs:
    """Open every file and look up every needed branch before any processing.

    Arguments:
        fileset: as from :func:`resolve_files`.
        branches: the layout's mapping (:func:`branch_map`).
        skip_bad_files: skip unreadable files, missing trees or branches (reported in
            ``bad_files``) instead of stopping.
        map_files: ``map_files(func, items)`` applies :func:`check_file` to the
            ``(path, tree)`` items, its answers in their order (default: ``map``, lazily, in
            this process; the selection passes its executor's, a file per task).
        probe: run on each readable file in its task (``probe(path, tree, columns)``, a
            picklable function; the selection's flavour probe), its answers in ``probes``.

    Returns:
        A :class:`CheckedInputs`: the optional branches are those every readable file holds.

    Raises:
        InputError: a file is unreadable, lacks the tree or a branch (all missing branches are
            named), and ``skip_bad_files`` is false; or no readable file is left.
    """
    items = [(p, t) for spec in fileset.values() for p, t in spec["files"].items()]
    answers = iter(map_files(partial(check_file, branches, probe=probe), items))
    good: dict[str, dict[str, Any]] = {}
    bad: dict[str, str] = {}
    entries: dict[str, int] = {}
    uuids: dict[str, bytes] = {}
    truth: list[str] = []
    probes: dict[str, Any] = {}
    present_optional = dict(branches.optional)
    for dataset, spec in fileset.items():
        kept = {}
        for path, tree in spec["files"].items():
            one = next(answers)
            if isinstance(one, InputError):
                if not skip_bad_files:
                    raise one
                bad[path] = str(one)
                continue
            present_optional = {c: b for c, b in present_optional.items() if c in one.optional}
            entries[path], uuids[path] = one.entries, one.uuid
            if probe is not None:
                probes[path] = one.probe
            if one.truth:
                truth.append(path)
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
        probes=probes,
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
            with remote.open_root(p) if is_url(p) else uproot.open(p) as f:
                parts.append(f["truth"].arrays(list(columns)))
        except InputError:  # a URL's network or access failure, one line already
            raise
        except Exception as err:  # noqa: BLE001
            raise InputError(f"{p}: cannot read the truth tree ({err})") from None
    if not parts:
        raise InputError("no input file holds a truth tree")
    return ak.concatenate(parts)
