"""The run directory: the name, kind and producing stage of every artifact, and their typed
readers and writers.

:data:`ARTIFACTS` is the one table of the files of a run directory (the public contracts of
docs/reference/outputs.md, DEVELOPERS.md "Internal contracts"); the pipeline's stage outputs
(:func:`stage_outputs`) and every stage's file names come from it. JSON artifacts are checked
against a versioned JSON Schema (``gammastar/schemas/<version>/``, pyhf's ``schemas/`` is the
model) when written and when read; a file of an unknown ``meta.schema_version`` or one that
breaks its schema is one :class:`~gammastar.errors.ArtifactError` naming the file and the
failing key. ``histograms.root`` is checked through its description
(:func:`describe_histograms`), ``pairs.parquet`` through its contract columns.

Example:
    >>> rd = RunDir("/data/run")
    >>> rd.path(SELECT).as_posix()
    '/data/run/select.json'
    >>> stage_outputs("select")
    ('pairs.parquet', 'histograms.root', 'select.json')
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gammastar.core import urls
from gammastar.core.artifacts import SCHEMA_VERSION, atomic_path, json_text, load_json
from gammastar.core.parquet import read_schema
from gammastar.errors import ArtifactError, InputError

# --------------------------------------------------------------------------- names
MOCK = "mock.root"
PAIRS = "pairs.parquet"
HISTOGRAMS = "histograms.root"
SELECT = "select.json"
YIELDS = "yields.json"
YIELDS_APRIME_CSV = "yields_aprime.csv"
YIELDS_MCP_CSV = "yields_mcp.csv"
FLOW_DIR = "flow"
MODEL_FILE = "model.pt"
"""The flow's weights inside a model directory (``flow/``, ``flow/ensemble/<i>/``)."""
MODEL_META_FILE = "meta.json"
"""The flow's metadata inside a model directory."""
HISTORY_FILE = "history.json"
ENSEMBLE_DIR = "ensemble"
"""Members 1.. of a flow ensemble: ``flow/ensemble/<i>/`` (model directories of their own)."""
CHECKPOINT_FILE = "checkpoint.pt"
FLOW_MODEL = f"{FLOW_DIR}/{MODEL_FILE}"
FLOW_META = f"{FLOW_DIR}/{MODEL_META_FILE}"
FLOW_HISTORY = f"{FLOW_DIR}/{HISTORY_FILE}"
FLOW_CHECKPOINT = f"{FLOW_DIR}/{CHECKPOINT_FILE}"
FLOW_LOSS_PNG = f"{FLOW_DIR}/loss.png"
VALIDATION = "validation.json"
ACCEPTANCE = "acceptance.npz"
REACH = "reach.json"
RECIPE_DIR = "standard_recipe"
"""The reach of ``reach.production: standard_recipe``: a run directory of its own inside this
one (its ``reach.json``, ``acceptance.npz``, ``workspaces/``, ``figures/``), beside the
data-driven reach."""
WORKSPACES_DIR = "workspaces"
WORKSPACES_INDEX = f"{WORKSPACES_DIR}/index.json"
ACCEPTANCE_CTAU = "acceptance_ctau.npz"
ACCEPTANCE_CTAU_JSON = "acceptance_ctau.json"
REACH_MCP = "reach_mcp.json"
REACH_IDM = "reach_idm.json"
REPORT = "report.html"
FIGURES_DIR = "figures"
STATE_DIR = ".gammastar"
"""The pipeline's state: ``.gammastar/<stage>.json`` (and the writer lock, :mod:`gammastar.core.runlock`)."""


STAGE_ORDER = ("generate", "select", "yields", "train", "validate", "reach")
"""The pipeline's stages in run order (``gammastar.pipeline.STAGES`` follows it; readers of a
run directory such as the report order by it without importing the pipeline)."""


def workspace_name(mass: float) -> str:
    """The pyhf workspace of one mass point, relative to the run directory.

    Example:
        >>> workspace_name(0.2262837)
        'workspaces/m_0.22628.json'
    """
    return f"{WORKSPACES_DIR}/m_{mass:.5f}.json"


def state_name(stage: str) -> str:
    """The pipeline's record of ``stage`` (``.gammastar/<stage>.json``)."""
    return f"{STATE_DIR}/{stage}.json"


# --------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Artifact:
    """One file of the run directory.

    Arguments:
        name: path relative to the run directory (POSIX separators); the artifact's key.
        kind: ``json``, ``root``, ``parquet``, ``csv``, ``npz``, ``pt``, ``png`` or ``html``.
        stage: the pipeline stage (or command: ``acceptance``) that writes it (``None``:
            the report).
        schema: JSON Schema file under ``schemas/<version>/`` (JSON artifacts, and
            ``histograms.root`` through its description).
        tracked: one of the stage's outputs in the pipeline's up-to-date check
            (figures, checkpoints and histories are not: they are by-products).
        doc: what it holds, one line.
    """

    name: str
    kind: str
    stage: str | None
    schema: str | None = None
    tracked: bool = True
    doc: str = ""


ARTIFACTS: dict[str, Artifact] = {
    a.name: a
    for a in (
        Artifact(MOCK, "root", "generate", doc="mock ntuple (DEVELOPERS.md)"),
        # select: select.json (the mark of a finished run) is renamed into place last
        Artifact(PAIRS, "parquet", "select", doc="one row per selected lepton pair"),
        Artifact(HISTOGRAMS, "root", "select", "histograms.json", doc="mass histograms"),
        Artifact(SELECT, "json", "select", "select.json", doc="counts, cut flow, settings"),
        Artifact(YIELDS, "json", "yields", "yields.json", doc="A′ and χχ̄ yields per POT"),
        Artifact(
            YIELDS_APRIME_CSV,
            "csv",
            "yields",
            doc="A′ yields as a table: yields.json aprime's columns, then total_err and "
            "err_<part>, the error's named parts, absolute (gammastar.yields.error_parts)",
        ),
        Artifact(YIELDS_MCP_CSV, "csv", "yields", doc="χχ̄ yields as a table"),
        Artifact("figures/yields_aprime.png", "png", "yields", tracked=False),
        Artifact("figures/yields_mcp.png", "png", "yields", tracked=False),
        Artifact("figures/yields_standard_recipe.png", "png", "yields", tracked=False),
        Artifact(FLOW_MODEL, "pt", "train", doc="flow weights (state_dict)"),
        Artifact(FLOW_META, "json", "train", "flow_meta.json", doc="flow architecture, meta"),
        Artifact(FLOW_HISTORY, "json", "train", "flow_history.json", tracked=False),
        Artifact(FLOW_LOSS_PNG, "png", "train", tracked=False),
        Artifact(FLOW_CHECKPOINT, "pt", "train", tracked=False, doc="training checkpoint"),
        Artifact(VALIDATION, "json", "validate", "validation.json", doc="flow KL validation"),
        Artifact("figures/flow_kl.png", "png", "validate", tracked=False),
        Artifact("figures/flow_kinematics.png", "png", "validate", tracked=False),
        # reach: the workspaces, their index and acceptance.npz before reach.json (the mark)
        Artifact(WORKSPACES_INDEX, "json", "reach", "workspaces_index.json"),
        Artifact(ACCEPTANCE, "npz", "reach", doc="A′ acceptance and signal per (m, ε)"),
        Artifact(REACH, "json", "reach", "reach.json", doc="expected exclusion and bands"),
        Artifact("figures/reach.png", "png", "reach", tracked=False),
        Artifact("figures/aprime_decays.png", "png", "reach", tracked=False),
        Artifact("figures/reach_impact.png", "png", "reach", tracked=False),
        Artifact("figures/reach_flow_closure.png", "png", "reach", tracked=False),
        Artifact("figures/reach_productions.png", "png", "reach", tracked=False),
        # `gammastar acceptance` (a command of its own, not a pipeline stage)
        Artifact(ACCEPTANCE_CTAU, "npz", "acceptance", doc="acceptance per (mass, cτ)"),
        Artifact(ACCEPTANCE_CTAU_JSON, "json", "acceptance", "acceptance_ctau.json"),
        Artifact("figures/acceptance_ctau.png", "png", "acceptance", tracked=False),
        Artifact("figures/acceptance_reldiff.png", "png", "acceptance", tracked=False),
        # `gammastar reach-mcp` (a command of its own, not a pipeline stage)
        Artifact(REACH_MCP, "json", "reach-mcp", "reach_mcp.json", doc="χ detection reach"),
        Artifact("figures/reach_mcp.png", "png", "reach-mcp", tracked=False),
        # `gammastar reach-idm` (a command of its own, not a pipeline stage)
        Artifact(REACH_IDM, "json", "reach-idm", "reach_idm.json", doc="iDM reach in (m1, y)"),
        Artifact("figures/reach_idm.png", "png", "reach-idm", tracked=False),
        Artifact(REPORT, "html", None, doc="the run report, one file: its figures inside it"),
    )
}
"""Every artifact of a run directory, in the order the stages write them. Adding an
artifact is one entry here (plus its schema file for JSON)."""

SCHEMA_OF_PATTERN: dict[str, str] = {
    f"{STATE_DIR}/*.json": "state.json",
    f"{FLOW_DIR}/{ENSEMBLE_DIR}/*/{MODEL_META_FILE}": "flow_meta.json",
    f"{FLOW_DIR}/{ENSEMBLE_DIR}/*/{HISTORY_FILE}": "flow_history.json",
}
"""Schemas of files whose names vary (a stage's state, ensemble members). The pyhf
workspaces (:func:`workspace_name`) are validated by pyhf's own schema."""

SUPPORTED_SCHEMA_VERSIONS: tuple[int, ...] = (SCHEMA_VERSION,)
"""The ``meta.schema_version`` values this gammastar reads (a directory under ``schemas/``)."""


def stage_outputs(stage: str, *, tracked: bool = True) -> tuple[str, ...]:
    """The files ``stage`` writes, in :data:`ARTIFACTS` order (the last one is written last).

    Arguments:
        stage: a pipeline stage name.
        tracked: only those of the pipeline's up-to-date check (``False``: all, figures too).

    Example:
        >>> stage_outputs("reach")
        ('workspaces/index.json', 'acceptance.npz', 'reach.json')
    """
    return tuple(
        a.name for a in ARTIFACTS.values() if a.stage == stage and (a.tracked or not tracked)
    )


def stage_figures(stage: str) -> tuple[str, ...]:
    """The figures (``png``) ``stage`` writes under the run directory.

    Example:
        >>> stage_figures("yields")[:2]
        ('figures/yields_aprime.png', 'figures/yields_mcp.png')
    """
    return tuple(a.name for a in ARTIFACTS.values() if a.stage == stage and a.kind == "png")


# --------------------------------------------------------------------------- schemas
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


@functools.cache
def _validator(version: int, schema: str) -> Any:
    """A ``jsonschema`` validator of ``schemas/<version>/<schema>`` (``$ref`` to the other
    files of the version resolved locally)."""
    import jsonschema

    registry, contents = _registry(version)
    root = contents[schema]
    cls = jsonschema.validators.validator_for(root)
    return cls(root, registry=registry)


@functools.cache
def _registry(version: int) -> tuple[Any, dict[str, Any]]:
    """The ``referencing`` registry of every schema file of ``version`` and their parsed
    contents by file name: read once for all of the version's validators."""
    from referencing import Registry, Resource

    contents = {
        f.name: json.loads(f.read_text())
        for f in sorted((SCHEMA_DIR / str(version)).glob("*.json"))
    }
    resources = [(c["$id"], Resource.from_contents(c)) for c in contents.values()]
    return Registry().with_resources(resources), contents


def schema_of(name: str) -> str | None:
    """The schema file of the artifact ``name`` (relative to the run directory), if any.

    Example:
        >>> schema_of("flow/ensemble/2/meta.json"), schema_of("figures/reach.png")
        ('flow_meta.json', None)
    """
    if name in ARTIFACTS:
        return ARTIFACTS[name].schema
    from fnmatch import fnmatchcase

    for pattern, schema in SCHEMA_OF_PATTERN.items():
        if fnmatchcase(name, pattern):
            return schema
    return None


def _key(path: Sequence[Any]) -> str:
    """``counts.os``, ``aprime.mass[3]``: where in a document a schema error is."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def validate(doc: Any, schema: str, *, where: str, version: int | None = None) -> None:
    """Check ``doc`` (JSON types) against ``schemas/<version>/<schema>``.

    Arguments:
        doc: the parsed document.
        schema: the schema file name (e.g. ``"select.json"``).
        where: the file (or artifact) named in the error.
        version: schema version (default: the document's ``meta.schema_version`` where it
            has one, else this gammastar's).

    Raises:
        ArtifactError: unknown schema version, or the first failing key and why.

    Example:
        >>> validate({"meta": {}}, "yields.json", where="y.json", version=1)
        Traceback (most recent call last):
        ...
        gammastar.errors.ArtifactError: y.json: invalid yields.json (schema version 1) at 'aprime': 'aprime' is a required property
    """
    if version is None:
        version = schema_version_of(doc, where=where)
    import jsonschema

    # the shallowest failing key first (ties: alphabetical, so the message is reproducible)
    errors = sorted(
        _validator(version, schema).iter_errors(doc),
        key=lambda e: (len(e.absolute_path), [str(p) for p in e.absolute_path]),
    )
    if errors:
        err = errors[0]
        if err.context:  # anyOf / oneOf: the most relevant alternative's reason
            err = jsonschema.exceptions.best_match(err.context)
        path = list(err.absolute_path)
        if err.validator == "required":  # name the missing key itself
            missing = str(err.message).split("'")[1] if "'" in err.message else ""
            path = [*path, missing] if missing else path
        raise ArtifactError(
            f"{where}: invalid {schema} (schema version {version}) at '{_key(path)}': "
            f"{_short(err.message)}"
        )


def _short(text: str, n: int = 160) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def schema_version_of(doc: Any, *, where: str) -> int:
    """The document's ``meta.schema_version`` (top-level ``schema_version`` for state files;
    absent there: this gammastar's).

    Raises:
        ArtifactError: a version this gammastar does not read.
    """
    meta = doc.get("meta") if isinstance(doc, dict) else None
    if isinstance(meta, dict):
        version = meta.get("schema_version")
    elif isinstance(doc, dict) and "meta" not in doc:
        version = doc.get("schema_version", SCHEMA_VERSION)
    else:
        version = None
    if version not in SUPPORTED_SCHEMA_VERSIONS or isinstance(version, bool):
        raise ArtifactError(
            f"{where}: unknown schema version {version!r} at 'meta.schema_version'; this "
            f"gammastar reads {', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))}"
        )
    return int(version)


# --------------------------------------------------------------------------- histograms
HISTOGRAMS_META = "meta"
"""The JSON string in ``histograms.root`` that carries the selection's ``meta`` (schema
version); files written before it existed have none and are read by their contents alone."""


def describe_histograms(file: Any) -> dict[str, Any]:
    """The description of an open ``histograms.root`` that ``schemas/<v>/histograms.json``
    checks: each object's class and dimension, the distinct mass axes of the contract
    histograms, ``phase_space`` and ``meta`` (when present).

    Arguments:
        file: an ``uproot`` directory (``uproot.open(path)``).
    """
    objects: dict[str, Any] = {}
    axes = set()
    contract = ("os_m", "pp_m", "mm_m", "comb_m", "signal_m", "unfolded_m")
    out: dict[str, Any] = {}
    for key, cls in file.classnames(cycle=False).items():
        entry: dict[str, Any] = {"class": cls}
        if cls[:3] in ("TH1", "TH2", "TH3"):
            entry["ndim"] = int(cls[2])  # from the class: the 3-D ones are not read here
            if key in contract and entry["ndim"] == 1:
                edges = file[key].axis(0).edges()
                axes.add(hashlib.sha256(edges.tobytes()).hexdigest()[:16])
        elif cls == "TObjString":
            text = str(file[key])
            if key == "phase_space":
                out["phase_space"] = text
            elif key == HISTOGRAMS_META:
                try:
                    out["meta"] = json.loads(text)
                except ValueError:
                    out["meta"] = text
        objects[key] = entry
    out["objects"] = objects
    if axes:
        out["mass_axes"] = sorted(axes)
    return out


# --------------------------------------------------------------------------- pairs
PAIRS_COLUMNS: dict[str, str] = {
    "event": "integer",
    "m": "floating",
    "qT": "floating",
    "E": "floating",
    "y": "floating",
    "pT": "floating",
    "charge": "integer",
    "weight_raw": "floating",
    "weight": "floating",
}
"""The design contract's columns of ``pairs.parquet`` and their type families."""


def check_pairs_schema(path: Path | str, require: Sequence[str] | None = None) -> None:
    """Check the parquet schema of ``path`` (or of the dataset at a URL): the columns
    ``require`` (default: the contract's, :data:`PAIRS_COLUMNS`) exist, those of the contract
    with their type family.

    Raises:
        InputError: unreadable file; ArtifactError: a column missing or of the wrong type.
    """
    import pyarrow as pa

    try:
        # a file, or a directory of parts (a parallel select), here or at a URL
        schema = urls.read_schema(str(path)) if urls.is_url(path) else read_schema(path)
    except FileNotFoundError:
        raise InputError(f"{path}: pairs table not found; run `gammastar select` first") from None
    except Exception as err:  # noqa: BLE001 - reported with the file name
        raise InputError(f"{path}: unreadable pairs table ({err})") from None
    test = {"integer": pa.types.is_integer, "floating": pa.types.is_floating}
    for col in PAIRS_COLUMNS if require is None else require:
        if col not in schema.names:
            raise ArtifactError(f"{path}: invalid pairs table at '{col}': column missing")
        family = PAIRS_COLUMNS.get(col)
        if family is not None and not test[family](schema.field(col).type):
            raise ArtifactError(
                f"{path}: invalid pairs table at '{col}': {schema.field(col).type}, "
                f"expected {family}"
            )


# --------------------------------------------------------------------------- the object
class HasOutputDir(Protocol):
    """What :meth:`RunDir.of` reads of a config: its run directory
    (:class:`gammastar.config.AnalysisConfig` is one; the config package is a layer above)."""

    @property
    def output_dir(self) -> Path: ...


class RunDir:
    """A run directory: paths and typed, schema-checked readers/writers of its artifacts.

    Arguments:
        root: the run directory (the config's ``output``).

    Example:
        >>> import tempfile
        >>> rd = RunDir(tempfile.mkdtemp())
        >>> meta = {"gammastar_version": "0", "config_sha256": None, "seed": None,
        ...         "schema_version": 1}
        >>> doc = {"workspaces": [{"mass": 0.5, "file": workspace_name(0.5)}], "meta": meta}
        >>> _ = rd.write_json(WORKSPACES_INDEX, doc)
        >>> rd.read_json(WORKSPACES_INDEX)["workspaces"][0]["file"]
        'workspaces/m_0.50000.json'
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    @classmethod
    def of(cls, config: HasOutputDir) -> RunDir:
        """The run directory of an analysis config (its ``output_dir``)."""
        return cls(config.output_dir)

    def path(self, name: str) -> Path:
        """The absolute path of artifact ``name`` (a key of :data:`ARTIFACTS`, or a
        run-directory-relative name such as :func:`workspace_name`)."""
        return self.root / name

    def outputs(self, stage: str, *, tracked: bool = True) -> list[Path]:
        """Paths of :func:`stage_outputs`."""
        return [self.root / n for n in stage_outputs(stage, tracked=tracked)]

    # ----------------------------------------------------------------- JSON
    def json_text(self, name: str, doc: Mapping[str, Any]) -> str:
        """``doc`` as the JSON text :meth:`write_json` writes, checked against its schema
        first (for writes of sets of files, :func:`gammastar.core.artifacts.atomic_paths`).

        Raises:
            ArtifactError: ``doc`` breaks the schema of ``name`` (a bug of the writer).
        """
        text = json_text(doc)
        schema = schema_of(name)
        if schema is not None:
            validate(json.loads(text), schema, where=str(self.path(name)))
        return text

    def write_json(self, name: str, doc: Mapping[str, Any], force: bool = False) -> Path:
        """Write JSON artifact ``name`` atomically, checked against its schema."""
        return write_artifact(self.path(name), doc, schema_of(name), force)

    def read_json(self, name: str, *, what: str | None = None) -> dict[str, Any]:
        """Read JSON artifact ``name``: parsed, schema version known, schema valid.

        Raises:
            GammastarError: missing or not JSON; ArtifactError: unknown schema version or
            invalid (naming the file and the failing key).
        """
        return read_artifact(self.path(name), schema_of(name), what=what or name)

    def read_optional(
        self, name: str, *, invalid: Callable[[ArtifactError], None] | None = None
    ) -> dict[str, Any] | None:
        """Read JSON artifact ``name`` if it is there: the quiet read of the readers of
        whatever a run directory holds (the report, the run's summary), for which an absent
        artifact is a stage not run, not an error.

        Arguments:
            name: the artifact.
            invalid: where given, a JSON object of an unknown schema version or one that
                breaks its schema is returned after ``invalid`` is called with the error (a
                reader that shows what it can, such as the report); otherwise the error is
                raised.

        Returns:
            The document as :meth:`read_json` reads it, or ``None`` when the file is absent.

        Raises:
            GammastarError: one line naming the file when it is there but unreadable or not
            JSON; ArtifactError: not a JSON object, or (without ``invalid``) of an unknown
            schema version or invalid.

        Example:
            >>> import tempfile
            >>> rd = RunDir(tempfile.mkdtemp())
            >>> rd.read_optional(REACH) is None
            True
            >>> _ = rd.path(REACH).write_text("{not json")
            >>> rd.read_optional(REACH)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            gammastar.errors.GammastarError: .../reach.json: not a readable JSON reach.json (...)
        """
        if not self.path(name).exists():
            return None
        return read_artifact(self.path(name), schema_of(name), what=name, invalid=invalid)

    def read_root_meta(self, name: str = MOCK) -> dict[str, Any]:
        """The ``meta`` JSON object stored in ROOT artifact ``name`` (the mock's generator
        settings and counts, :mod:`gammastar.mock.generate`).

        Raises:
            InputError: one line naming the file when it is missing, unreadable, or its
            ``meta`` is absent or not a JSON object.
        """
        import uproot

        path = self.path(name)
        if not path.exists():
            raise InputError(f"{path}: {name} not found")
        try:
            with uproot.open(path) as f:
                text = str(f["meta"])
            data = json.loads(text)
        except Exception as err:  # noqa: BLE001 - reported with the file name
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise InputError(
                f"{path}: cannot read its meta JSON ({type(err).__name__}: {_short(first)})"
            ) from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: its meta is not a JSON object")
        return data

    # ----------------------------------------------------------------- ROOT, parquet
    def check_histograms(self, file: Any | None = None) -> dict[str, Any]:
        """Check ``histograms.root`` against its schema (:func:`describe_histograms`).

        Arguments:
            file: the open file (default: opened here).

        Returns:
            The description (``phase_space``, ``meta``, ``objects``).
        """
        path = self.path(HISTOGRAMS)
        if file is None:
            import uproot

            if not path.exists():
                raise InputError(f"{path}: {HISTOGRAMS} not found; run `gammastar select` first")
            try:
                with uproot.open(path) as f:
                    return self.check_histograms(f)
            except InputError:
                raise
            except Exception as err:  # noqa: BLE001 - reported with the file name
                raise InputError(f"{path}: cannot read histograms ({err})") from None
        desc = describe_histograms(file)
        schema = ARTIFACTS[HISTOGRAMS].schema
        assert schema is not None
        version = schema_version_of(desc, where=str(path)) if "meta" in desc else SCHEMA_VERSION
        validate(desc, schema, where=str(path), version=version)
        return desc

    def read_histograms(self, names: Sequence[str] | None = None) -> dict[str, Any]:
        """The histograms of ``histograms.root`` as ``hist`` objects, after the schema check.

        Arguments:
            names: which ones (default: every histogram in the file); those absent are left out.
        """
        import uproot

        path = self.path(HISTOGRAMS)
        self.check_histograms()
        out = {}
        try:
            with uproot.open(path) as f:
                keys = f.keys(cycle=False) if names is None else [n for n in names if n in f]
                for key in keys:
                    if f.classnames(cycle=False).get(key, "").startswith("TH"):
                        out[key] = f[key].to_hist()
        except Exception as err:  # noqa: BLE001 - reported with the file name
            raise InputError(f"{path}: cannot read histograms ({err})") from None
        return out

    def pairs_location(self) -> Path | str:
        """Where the pairs table is: ``select.json`` ``pairs_url`` (the dataset a parallel
        selection wrote at an fsspec URL, ``selection.pairs_url``), else ``pairs.parquet``
        here."""
        try:
            url = json.loads(self.path(SELECT).read_text()).get("pairs_url")
        except (OSError, ValueError, AttributeError):
            url = None
        return url if isinstance(url, str) else self.path(PAIRS)

    def has_pairs(self) -> bool:
        """Whether the pairs table exists (:meth:`pairs_location`)."""
        loc = self.pairs_location()
        if urls.is_url(loc):
            try:
                return urls.exists(str(loc))
            except Exception:  # noqa: BLE001 - unreachable counts as absent; read_pairs says why
                return False
        return Path(loc).exists()

    def read_pairs(
        self, columns: Sequence[str] | None = None, *, require: Sequence[str] | None = None
    ) -> Any:
        """``pairs.parquet`` (or the dataset at ``select.json`` ``pairs_url``:
        :meth:`pairs_location`) as a pandas DataFrame, after the column check
        (:func:`check_pairs_schema`).

        Arguments:
            columns: the columns to read (default: all).
            require: the columns that must be there (default: ``columns``, or with
                ``columns=None`` the contract's).
        """
        import pandas as pd

        path = self.pairs_location()
        check_pairs_schema(path, require if require is not None else columns)
        try:
            if urls.is_url(path):
                return urls.read_table(str(path), columns).to_pandas()
            return pd.read_parquet(path, columns=list(columns) if columns is not None else None)
        except Exception as err:  # noqa: BLE001 - reported with the file name
            cols = f"columns {', '.join(columns)} " if columns is not None else ""
            raise InputError(f"{path}: cannot read {cols}of the pairs table ({err})") from None

    def read_acceptance(self) -> dict[str, Any]:
        """``acceptance.npz`` as a dict of arrays (``mass``, ``eps``, ``acceptance``,
        ``nsig``, ``ctau``, ``acceptance_extrapolated``), shapes checked."""
        import numpy as np

        path = self.path(ACCEPTANCE)
        try:
            with np.load(path) as z:
                data = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise InputError(f"{path}: not found; run `gammastar reach` first") from None
        except Exception as err:  # noqa: BLE001 - reported with the file name
            raise InputError(f"{path}: unreadable acceptance table ({err})") from None
        for key in ("mass", "eps", "acceptance", "nsig"):
            if key not in data:
                raise ArtifactError(f"{path}: invalid acceptance table at '{key}': array missing")
        shape = (data["mass"].size, data["eps"].size)
        for key in ("acceptance", "nsig", "ctau", "acceptance_extrapolated"):
            if key in data and data[key].shape != shape:
                raise ArtifactError(
                    f"{path}: invalid acceptance table at '{key}': shape {data[key].shape}, "
                    f"expected (mass, eps) = {shape}"
                )
        return data

    # ----------------------------------------------------------------- all
    def present(self) -> Iterator[str]:
        """Names of the schema-checked artifacts present (ensemble members and states too)."""
        for name, art in ARTIFACTS.items():
            if art.schema is not None and self.path(name).exists():
                yield name
        for pattern in SCHEMA_OF_PATTERN:
            for p in sorted(self.root.glob(pattern)):
                yield p.relative_to(self.root).as_posix()

    def check(self) -> list[str]:
        """Check every schema-checked artifact present (:meth:`present`); returns their names.

        Raises:
            ArtifactError: the first invalid one.
        """
        names = list(self.present())
        for name in names:
            if name == HISTOGRAMS:
                self.check_histograms()
            else:
                self.read_json(name)
        return names


def write_artifact(
    path: str | os.PathLike[str], doc: Mapping[str, Any], schema: str | None, force: bool = False
) -> Path:
    """Write a JSON artifact anywhere (a flow ensemble member's ``meta.json``) atomically,
    checked against ``schema`` first (when given).

    Raises:
        ArtifactError: ``doc`` breaks the schema (a bug of the writer); nothing is written.
    """
    path = Path(path)
    text = json_text(doc)
    if schema is not None:
        validate(json.loads(text), schema, where=str(path))
    with atomic_path(path, force) as tmp:
        tmp.write_text(text)
    return path


def read_artifact(
    path: str | os.PathLike[str],
    schema: str | None,
    *,
    what: str,
    invalid: Callable[[ArtifactError], None] | None = None,
) -> dict[str, Any]:
    """Read a JSON artifact anywhere (``reach.yields`` may point outside the run directory):
    parsed, of a known schema version and valid against ``schema`` (when given).

    Arguments:
        path: the file.
        schema: its schema file (``None``: the version check only).
        what: the artifact as named in the errors.
        invalid: where given, called with the error of a JSON object of an unknown schema
            version or invalid, which is then returned (:meth:`RunDir.read_optional`).

    Raises:
        GammastarError: missing or not JSON; ArtifactError: unknown version or invalid.
    """
    path = Path(path)
    data = load_json(path, what=what)
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: invalid {what}: a JSON object expected")
    try:
        version = schema_version_of(data, where=str(path))
        if schema is not None:
            validate(data, schema, where=str(path), version=version)
    except ArtifactError as err:
        if invalid is None:
            raise
        invalid(err)
    return data


__all__ = [
    "ARTIFACTS",
    "Artifact",
    "RunDir",
    "check_pairs_schema",
    "describe_histograms",
    "read_artifact",
    "schema_of",
    "stage_figures",
    "stage_outputs",
    "validate",
    "workspace_name",
    "write_artifact",
]
