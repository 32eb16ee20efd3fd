"""Rules between the keys of different config sections, checked when a config is validated.

Each rule says, in one line naming the key, why a value that its own section accepts cannot
work with the rest of the config (a validation window wider than the selection's mass range,
a validation or reach mass outside it), so that the mistake is refused before any stage runs
instead of when the stage that reads the key is reached. The rules take the validated
sections and plain numbers and import nothing: :class:`gammastar.config.AnalysisConfig` calls
:func:`mass_range_problems` from its own validation.

:func:`experiment_problems` reads the config as written: outside the mock the experiment's keys
(:data:`DATA_KEYS`, :data:`DETECTOR_KEYS`) have no default, nor have the reach's statistics
inputs (:data:`REACH_KEYS`, :func:`reach_missing`) anywhere; every one left out is a line of
the one refusal (:func:`gammastar.config.config_from_dict`, ``gammastar reach``, ``gammastar
run``), with what to write. :func:`mock_only_problems` adds, outside the mock, every key that
points at the mock's own files or settings (a copied mock config), and :data:`ASSUMED_KEYS`
are the selection's choices that, left out, are printed and recorded as assumed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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


# --------------------------------------------------------------------------- experiment keys
_STATE = "no default outside the mock"

DATA_KEYS: dict[tuple[str, str], str] = {
    ("beam", "energy"): "the beam's proton energy: `beam: {energy: <GeV>}`",
    ("beam", "interaction_lengths"): (
        "the data's target thickness L in nuclear interaction lengths (P_int = 1 - e^-L): "
        "`beam: {interaction_lengths: <L>}`"
    ),
    ("unfold", "efficiency_map"): (
        "the data's pair efficiency eps(m, pT): `unfold: {efficiency_map: <file.root>}`, or "
        "`unfold: {efficiency_map: null}` on purpose (eps = 1)"
    ),
}
"""The keys of the data's experiment that the selection and the yields read, each with what to
write: outside the mock every one is stated (the mock's values describe only the mock)."""

DETECTOR_KEYS: dict[str, str] = {
    "l1": "the start of the decay volume in m: `detector: {l1: <m>}` (or a `detector.volume`)",
    "theta_min": (
        "the lower edge of the polar-angle window in rad: `detector: {theta_min: <rad>}` "
        "(0 on purpose for none; or a `detector.volume`)"
    ),
    "theta_max": (
        "the upper edge of the polar-angle window in rad: `detector: {theta_max: <rad>}` "
        "(or a `detector.volume`)"
    ),
}
"""The long-lived-particle detector's keys without a default outside the mock (the mock's are
the paper's detector); a ``volume`` shape implies them, ``daughters: {require: both}`` the
polar window (:class:`gammastar.config.detector.DetectorConfig`)."""

_ANALYSIS_SECTIONS = (
    "input", "selection", "background", "unfold", "yields", "flow", "validate", "reach",
    "detector", "events", "idm",
)  # fmt: skip


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    sec = data.get(name)
    return sec if isinstance(sec, Mapping) else {}


def _given(data: Mapping[str, Any], name: str) -> bool:
    return data.get(name) is not None


REACH_KEYS: dict[str, str] = {
    "background": (
        "expected background events per channel: `background: {mumu: <events>}`, 0 on "
        "purpose for a background-free search"
    ),
    "background_kappa": (
        "log-normal shape of each channel's background: `background_kappa: {mumu: <kappa>}`, "
        "1 for an exactly known one"
    ),
    "efficiency_uncertainty": (
        "relative signal-efficiency uncertainty: `efficiency_uncertainty: <fraction>`, 0 on "
        "purpose"
    ),
    "n_pot_rel_uncertainty": (
        "relative N_POT uncertainty: `n_pot_rel_uncertainty: <fraction>`, 0 on purpose"
    ),
    "target_interaction_lengths": (
        "the facility target's thickness: `target_interaction_lengths: <L>` (nuclear "
        "interaction lengths), `dump` or `data`, or an explicit `yield_scale`"
    ),
    "mass_resolution": "the dilepton mass resolution: `mass_resolution: <GeV>`",
}
"""The reach's statistics inputs, none with a default, each with what to write."""


def reach_missing(reach: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The statistics inputs of ``reach`` (as written, or a dump of the section) that are not
    given: ``(key, what it is and what to write)``, every one (:data:`REACH_KEYS`).
    ``mass_resolution`` is needed with ``template: mass`` or observed masses only, the
    thickness unless an explicit ``yield_scale`` is given.

    Example:
        >>> [k for k, _ in reach_missing({"background": {"mumu": 0}, "yield_scale": 1.0})]
        ['background_kappa', 'efficiency_uncertainty', 'n_pot_rel_uncertainty']
    """
    observed = reach.get("observed")
    masses = isinstance(observed, Mapping) and any(
        isinstance(o, Mapping) for o in observed.values()
    )
    needed = {
        "target_interaction_lengths": reach.get("yield_scale") is None,
        "mass_resolution": reach.get("template", "counting") == "mass" or masses,
    }
    return [
        (key, what)
        for key, what in REACH_KEYS.items()
        if reach.get(key) is None and needed.get(key, True)
    ]


def experiment_problems(data: Mapping[str, Any], *, reach: bool | None = False) -> list[str]:
    """The experiment's keys a config leaves to a default outside the mock, and the reach's
    missing statistics inputs: one line per key, naming it and what to write.

    Outside the mock (no ``mock:`` section) nothing describes the experiment but the config:
    the data's keys (:data:`DATA_KEYS`) must be stated when the config makes its own yields
    (it has analysis sections and ``reach.yields`` is not another run's; a config of ``mcp:``
    only reads none of them); the detector's (:data:`DETECTOR_KEYS`) when it has a ``reach``,
    ``events`` or ``idm`` section or runs the reach. With the mock, the mock's values are the
    defaults. The reach's statistics inputs (:func:`reach_missing`) have no default anywhere.

    Arguments:
        data: the config as written (sections as mappings; a section that is not a mapping is
            left to its own validation), or a dump of the set keys of a validated config.
        reach: whether the reach runs, so that its statistics inputs are checked too;
            ``None``: when the config has a ``reach:`` section (``gammastar run``'s rule).

    Returns:
        One line per missing key, ``section.key: not given (...)``.

    Example:
        >>> print(*experiment_problems({"input": {"files": ["a.root"]}}), sep="\\n")
        ... # doctest: +ELLIPSIS
        beam.energy: not given (no default outside the mock): the beam's proton energy: ...
        beam.interaction_lengths: not given ...
        unfold.efficiency_map: not given ... `unfold: {efficiency_map: null}` on purpose (eps = 1)
        >>> experiment_problems({"mock": {}, "input": {}})
        []
    """
    runs_reach = _given(data, "reach") if reach is None else reach
    out = []
    if not _given(data, "mock"):
        analysis = any(_given(data, s) for s in _ANALYSIS_SECTIONS)
        own_yields = _section(data, "reach").get("yields") is None or _given(data, "input")
        if (analysis or not _given(data, "mcp")) and own_yields:
            for (sec, key), what in DATA_KEYS.items():
                if key not in _section(data, sec) and not _per_flavour(data, sec, key):
                    out.append(f"{sec}.{key}: not given ({_STATE}): {what}")
        if runs_reach or any(_given(data, s) for s in ("reach", "events", "idm")):
            det = _section(data, "detector")
            shapes = det.get("volume") is not None
            daughters = det.get("daughters")
            both = isinstance(daughters, Mapping) and daughters.get("require") == "both"
            for key, what in DETECTOR_KEYS.items():
                implied = shapes or (both and key != "l1")
                if key not in det and not implied:
                    out.append(f"detector.{key}: not given ({_STATE}): {what}")
    if runs_reach:
        rc = _section(data, "reach")
        out += [f"reach.{key}: not given ({what})" for key, what in reach_missing(rc)]
    return out


# --------------------------------------------------------------------------- the mock's own
MOCK_OUTPUT = "${output}/mock.root"
"""The file the mock writes (``rundir.MOCK`` in the run directory)."""

_TRUTH_COLUMNS = ("truth_channel", "parent")
"""The layouts' columns that only the mock's truth fills (``gammastar.io.LAYOUTS`` optional)."""


def _strings(value: Any, key: str) -> list[tuple[str, str]]:
    """``(key, string)`` of every string in ``value`` (mappings and lists walked)."""
    if isinstance(value, str):
        return [(key, value)]
    if isinstance(value, Mapping):
        return [kv for k, v in value.items() for kv in _strings(v, f"{key}.{k}")]
    if isinstance(value, list | tuple):
        return [kv for v in value for kv in _strings(v, key)]
    return []


def _flavoured(data: Mapping[str, Any], sec: str) -> list[tuple[str, Mapping[str, Any]]]:
    """``(key prefix, section)`` of ``sec`` and of each of its ``per_flavour`` overrides."""
    top = _section(data, sec)
    per = top.get("per_flavour")
    out = [(sec, top)]
    if isinstance(per, Mapping):
        out += [(f"{sec}.per_flavour.{f}", o) for f, o in per.items() if isinstance(o, Mapping)]
    return out


def mock_only_problems(data: Mapping[str, Any], shipped: Callable[[str], str | None]) -> list[str]:
    """The keys of a config without ``mock:`` that point at the mock's own files or settings,
    one line each with what to write instead: a file shipped with gammastar for the mock
    (``shipped(value)`` names it, e.g. the NA60-like pair efficiency), the file the mock
    writes (:data:`MOCK_OUTPUT`), the mock's truth branches (``truth_*``, ``*_parent``),
    ``background.remove_eta_mumu: truth`` and, where the config makes its own yields,
    ``beam.n_pot: from_input`` (both read what only the generator records). A copied mock
    config without its ``mock:`` is refused on them all at once. None with ``mock:`` or
    ``input.mock_files: true`` (the files are the mock's).

    Arguments:
        data: the config as written (sections as mappings).
        shipped: the name of the shipped file a config value names (resolved as the config
            resolves paths), ``None`` for any other value.

    Example:
        >>> print(*mock_only_problems({"background": {"remove_eta_mumu": "truth"}},
        ...                           lambda v: None))  # doctest: +ELLIPSIS
        background.remove_eta_mumu: truth removes η → μμ pairs by the mock's truth tag, ...
        >>> mock_only_problems({"mock": {}, "beam": {"n_pot": "from_input"}}, lambda v: None)
        []
    """
    if _given(data, "mock") or _section(data, "input").get("mock_files") is True:
        return []
    out = []
    for sec in data:
        if sec == "mock" or not isinstance(data[sec], Mapping | list):
            continue
        for key, value in _strings(data[sec], str(sec)):
            name = shipped(value)
            if name is None:
                continue
            if key.endswith("efficiency_map"):
                what = (
                    "is the mock's pair efficiency (shipped with gammastar), not your "
                    "detector's: your experiment's map, `efficiency_map: <file.root>`, or "
                    "`efficiency_map: null` on purpose (eps = 1)"
                )
            else:
                what = f"is {name}, shipped with gammastar for the mock: give your experiment's"
            out.append(f"{key}: {value} {what}")
    for key, inp in _flavoured(data, "input"):
        files = inp.get("files")
        if MOCK_OUTPUT in [v for _, v in _strings(files, "")]:
            out.append(
                f"{key}.files: {MOCK_OUTPUT} is the file the mock writes, and without "
                "`mock:` nothing writes it: name your ntuples, `input: {files: [<your files>]}`"
            )
        branches = inp.get("branches")
        for col, br in branches.items() if isinstance(branches, Mapping) else ():
            truth = str(br).startswith("truth_") or str(br).endswith("_parent")
            if col in _TRUTH_COLUMNS or truth:
                out.append(
                    f"{key}.branches.{col}: {br} is the mock's truth branch (the generator's "
                    "record, which data has not): drop it"
                )
    for key, bg in _flavoured(data, "background"):
        if bg.get("remove_eta_mumu") == "truth":
            out.append(
                f"{key}.remove_eta_mumu: truth removes η → μμ pairs by the mock's truth tag, "
                "which data has not: `remove_eta_mumu: rate` (the peak predicted from the "
                "η → γμμ yield) or `none`"
            )
    own_yields = _section(data, "reach").get("yields") is None or _given(data, "input")
    if _section(data, "beam").get("n_pot") == "from_input" and own_yields:
        # (a facility's config reading another run's yields: their N_POT, as it should)
        out.append(
            "beam.n_pot: from_input reads the N_POT the mock generator records in its files, "
            "which data files lack: your data's protons on target, `beam: {n_pot: <POT>}`"
        )
    order = {str(sec): i for i, sec in enumerate(data)}  # as the config lists its sections
    return sorted(out, key=lambda line: order.get(line.split(".", 1)[0], len(order)))


ASSUMED_KEYS: dict[tuple[str, str], tuple[str, str]] = {
    ("input", "tree"): ("", "the tree it writes"),
    ("input", "layout"): ("", "per-event jagged muon_px, ..., muon_charge"),
    ("selection", "lepton_min_energy"): ("GeV", "the NA60-like absorber's range-out"),
    ("selection", "mass_min"): ("GeV", "2 m_μ"),
    ("selection", "mass_max"): ("GeV", "above the φ"),
    ("selection", "qt_max"): ("GeV", "the q_T axis of the 3-D histograms"),
    ("selection", "energy_max"): ("GeV", "the E axis of the 3-D histograms"),
    ("beam", "target"): ("", "a label"),
    ("beam", "sigma_inel_mb"): ("mb", "inelastic p + Pb"),
}
"""The experiment's selection choices whose defaults are the mock's, each with its unit and
what the default is: outside the mock one left out is assumed, printed once at the top of the
run (``assumed: key = value (...)``) and recorded in ``select.json`` ``meta.assumed``."""


def assumed_line(key: str, value: Any) -> str:
    """The line printed for an assumed key (:data:`ASSUMED_KEYS`).

    Example:
        >>> print(assumed_line("selection.mass_min", 0.2113))
        assumed: selection.mass_min = 0.2113 GeV (the mock's: 2 m_μ)
    """
    sec, name = key.split(".")
    unit, why = ASSUMED_KEYS[(sec, name)]
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"assumed: {key} = {shown}{' ' + unit if unit else ''} (the mock's: {why})"


def _per_flavour(data: Mapping[str, Any], sec: str, key: str) -> bool:
    """``key`` given for every flavour in ``sec.per_flavour`` of a both-channels run."""
    lepton = _section(data, "input").get("lepton")
    per = _section(data, sec).get("per_flavour")
    if not isinstance(lepton, list) or not lepton or not isinstance(per, Mapping):
        return False
    return all(isinstance(per.get(f), Mapping) and key in per[f] for f in lepton)
