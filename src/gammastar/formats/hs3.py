"""A pyhf workspace as an HS3 document: the HistFactory likelihood in the HEP Statistics
Serialization Standard, the JSON that RooFit's ``RooJSONFactoryWSTool`` imports.

The ``root`` wheel has no HistFactory XML reader, so ``pyhf json2xml`` does not reach ROOT users;
HS3 does. Each pyhf channel becomes one ``histfactory_dist`` (one axis ``obs_x_<channel>`` of
unit-width bins), its observations one ``binned`` data set, and the measurement one likelihood,
one analysis (the measurement's POI), a domain (every parameter's bounds) and the
``default_values`` parameter point (the inits; ``fixed`` parameters constant).

The modifiers keep pyhf's meaning (pyhf docs, "Modifiers"; HS3 standard, HistFactory part):

====================  =====================================================================
pyhf                   HS3
====================  =====================================================================
``normfactor``         ``normfactor`` (unconstrained)
``lumi``               ``normfactor`` on ``lumi`` with a ``gaussian_dist`` constraint around
                       the constant ``nominal_lumi`` (the measurement's auxdata and sigma)
``normsys``            ``normsys``, Gaussian constraint, RooFit interpolation code 4 for pyhf's
                       ``code4`` (its default: polynomial inside ±1σ, exponential outside),
                       1 for ``code1`` (piecewise exponential)
``histosys``           ``histosys`` (absolute ``hi``/``lo`` templates), Gaussian constraint,
                       RooFit code 4 for pyhf's ``code4p`` (its default: polynomial inside ±1σ,
                       linear outside; RooFit 6.40 reads no other code for histosys)
``staterror``          ``staterror`` with a Gaussian constraint of relative width
                       sqrt(Σ δ²) / Σ n over the channel's samples that carry it (the samples'
                       ``errors`` are pyhf's δ); no threshold below which a γ is dropped
``shapesys``           ``shapesys`` with Poisson constraints, ``vals`` the relative
                       uncertainties δ/n (τ = (n/δ)², pyhf's Barlow-Beeston form)
``shapefactor``        ``shapefactor`` (one free γ per bin)
====================  =====================================================================

Parameter names are pyhf's (γ parameters ``<modifier>_bin_<i>``); the nuisance parameters'
auxiliary measurements are RooFit's ``nom_<name>`` global observables. Interpolation codes are
RooFit's (``FlexibleInterpVar`` for normsys, ``PiecewiseInterpolation`` for histosys).

References:
    HEP Statistics Serialization Standard (HS3), v0.2,
    https://github.com/hep-statistics-serialization-standard;
    L. Heinrich, M. Feickert, G. Stark, "pyhf" (JOSS 6 (2021) 2823), its workspace schema;
    K. Cranmer et al., "HistFactory", CERN-OPEN-2012-016.

Example:
    >>> spec = {"channels": [{"name": "c", "samples": [{"name": "s", "data": [1.0],
    ...     "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
    ...     {"name": "b", "data": [2.0], "modifiers": []}]}],
    ...     "observations": [{"name": "c", "data": [3.0]}],
    ...     "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
    ...     "version": "1.0.0"}
    >>> doc = workspace_to_hs3(spec)
    >>> doc["distributions"][0]["type"], doc["analyses"][0]["parameters_of_interest"]
    ('histfactory_dist', ['mu'])
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gammastar._version import __version__
from gammastar.errors import EnvironmentFailure, InputError

HS3_VERSION = "0.2"
"""The HS3 version written (``metadata.hs3_version``)."""

INTERPOLATION: dict[str, dict[str, int]] = {
    "normsys": {"code4": 4, "code1": 1},
    "histosys": {"code4p": 4},
}
"""pyhf's interpolation codes and RooFit's of the same function (``FlexibleInterpVar`` for
normsys, ``PiecewiseInterpolation`` for histosys); the first of each is pyhf's default
(``pyhf.Model``'s ``modifier_settings``)."""

# pyhf's default bounds and inits per modifier type (pyhf.modifiers, v0.7)
_DEFAULTS: dict[str, tuple[float, float, float]] = {
    "normfactor": (0.0, 10.0, 1.0),
    "shapefactor": (0.0, 10.0, 1.0),
    "normsys": (-5.0, 5.0, 0.0),
    "histosys": (-5.0, 5.0, 0.0),
    "staterror": (1e-10, 10.0, 1.0),
    "shapesys": (1e-10, 10.0, 1.0),
    "lumi": (0.0, 10.0, 1.0),
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOMAINS = ("nuisance_parameters", "global_observables", "parameters_of_interest")
"""The analysis's domains, ``<likelihood>_<key>``, in the order the analysis lists them."""


def workspace_to_hs3(
    spec: Mapping[str, Any],
    *,
    measurement: str | None = None,
    name: str | None = None,
    description: str = "",
    interpolation: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The HS3 document of a pyhf workspace spec.

    Arguments:
        spec: the pyhf workspace (``channels``, ``observations``, ``measurements``).
        measurement: which measurement (default: the first).
        name: the likelihood's and analysis's name (default: the measurement's).
        description: a line for ``metadata.description``.
        interpolation: pyhf's interpolation code per modifier type, as ``pyhf.Model``'s
            ``modifier_settings`` give it (default: pyhf's, ``code4`` and ``code4p``).

    Returns:
        The HS3 document (JSON types), ``metadata.hs3_version`` :data:`HS3_VERSION`.

    Raises:
        InputError: a modifier type HS3 has no counterpart for here, a name RooFit cannot
            hold, several staterror modifiers in one channel, or a missing observation.
    """
    meas = _measurement(spec, measurement)
    config = meas.get("config", {})
    poi = str(config.get("poi", ""))
    settings = {str(p["name"]): p for p in config.get("parameters", [])}
    observations = {str(o["name"]): [float(x) for x in o["data"]] for o in spec["observations"]}
    label = name or str(meas["name"])
    _check_name(label, "measurement")
    codes = _interpolation_codes(interpolation)

    params: dict[str, tuple[str, int]] = {}  # name -> (modifier type, number of bins)
    distributions: list[dict[str, Any]] = []
    data: list[dict[str, Any]] = []
    for channel in spec["channels"]:
        dist, observed = _channel(channel, observations, params, codes)
        distributions.append(dist)
        data.append(observed)
    if poi and poi not in params:
        raise InputError(f"measurement {meas['name']!r}: POI {poi!r} is no parameter of the model")
    distributions.extend(_lumi_constraint(params, settings))

    poi_axes, nuisance_axes, values = _parameters(params, settings, poi)
    glob_axes, glob_values = _global_points(distributions, settings)
    axes = {
        "nuisance_parameters": nuisance_axes,
        "global_observables": glob_axes,
        "parameters_of_interest": poi_axes,
    }
    channels = [str(c["name"]) for c in spec["channels"]]
    hf = [d["name"] for d in distributions if d["type"] == "histfactory_dist"]
    return {
        "distributions": distributions,
        "data": data,
        "likelihoods": [{"name": label, "distributions": hf, "data": [d["name"] for d in data]}],
        "domains": _domains(label, axes),
        "parameter_points": [{"name": "default_values", "parameters": [*values, *glob_values]}],
        "analyses": [_analysis(label, poi)],
        "metadata": _metadata(description),
        "misc": _root_internal(label, hf, channels),
    }


def _interpolation_codes(interpolation: Mapping[str, str] | None) -> dict[str, str]:
    """pyhf's interpolation code per modifier type of :data:`INTERPOLATION`: ``interpolation``'s
    where given, pyhf's default otherwise.

    Raises:
        InputError: a modifier type or a code :data:`INTERPOLATION` does not know.
    """
    codes = {kind: next(iter(known)) for kind, known in INTERPOLATION.items()}
    for kind, code in (interpolation or {}).items():
        if kind not in INTERPOLATION:
            raise InputError(f"interpolation of {kind!r}: only of {', '.join(INTERPOLATION)}")
        if code not in INTERPOLATION[kind]:
            raise InputError(f"{kind} interpolation {code!r}: one of {list(INTERPOLATION[kind])}")
        codes[kind] = code
    return codes


def _channel(
    channel: Mapping[str, Any],
    observations: Mapping[str, list[float]],
    params: dict[str, tuple[str, int]],
    codes: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One pyhf channel's ``histfactory_dist`` (its samples with their modifiers, pyhf's
    staterror constraint when a sample carries one) and its ``binned`` data set, on the one
    axis ``obs_x_<channel>`` of unit-width bins; the channel's parameters added to ``params``.

    Raises:
        InputError: a name RooFit cannot hold, no observation of the channel, several
            staterror modifiers, or a sample :func:`_sample` refuses.
    """
    ch = str(channel["name"])
    _check_name(ch, "channel")
    if ch not in observations:
        raise InputError(f"channel {ch!r}: no observation in the workspace")
    nbins = len(channel["samples"][0]["data"])
    axes = [{"name": f"obs_x_{ch}", "min": 0.0, "max": float(nbins), "nbins": nbins}]
    samples = [_sample(s, ch, nbins, params, codes) for s in channel["samples"]]
    stat = {m["name"] for s in samples for m in s["modifiers"] if m["type"] == "staterror"}
    if len(stat) > 1:
        raise InputError(
            f"channel {ch!r}: staterror modifiers {', '.join(sorted(stat))}; HistFactory "
            "has one per channel"
        )
    dist: dict[str, Any] = {"name": f"model_{ch}", "type": "histfactory_dist", "axes": axes, "samples": samples}
    if any(m["type"] == "staterror" for s in samples for m in s["modifiers"]):
        # pyhf's staterror: Gaussian constraints, no γ dropped below a threshold
        # ("constraint_type" for newer RooFit, "constraint" for older)
        dist["staterror"] = {
            "constraint_type": "Gauss",
            "constraint": "Gauss",
            "relThreshold": 0.0,
        }
    observed = {
        "name": f"obsData_{ch}",
        "type": "binned",
        "axes": axes,
        "contents": observations[ch],
    }
    return dist, observed


def _lumi_constraint(
    params: Mapping[str, tuple[str, int]], settings: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The ``gaussian_dist`` constraint of ``lumi`` around ``nominal_lumi`` with the
    measurement's sigma, as a one-element list; empty when no sample has a lumi modifier.

    Raises:
        InputError: a lumi modifier without the measurement's ``sigmas`` for ``lumi``.
    """
    if "lumi" not in {kind for kind, _ in params.values()}:
        return []
    lumi = settings.get("lumi", {})
    sigma = float(_first(lumi.get("sigmas"), 0.0))
    if not sigma > 0:
        raise InputError("lumi modifier: the measurement gives no 'sigmas' for 'lumi'")
    return [
        {
            "name": "lumiConstraint",
            "type": "gaussian_dist",
            "x": "lumi",
            "mean": "nominal_lumi",
            "sigma": sigma,
        }
    ]


def _parameters(
    params: Mapping[str, tuple[str, int]], settings: Mapping[str, Mapping[str, Any]], poi: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The model's parameters, sorted by name: the POI's domain axis (none or one), the
    nuisance parameters' axes (pyhf's default bounds per modifier type, or the measurement's),
    and every parameter's point (the measurement's inits or pyhf's; ``const`` where the
    measurement fixes it).
    """
    nuisance_axes: list[dict[str, Any]] = []
    poi_axes: list[dict[str, Any]] = []
    values: list[dict[str, Any]] = []
    for pname, (kind, _) in sorted(params.items()):
        lo, hi, init = _DEFAULTS[kind]
        s = settings.get(_setting_name(pname, params), {})
        if s.get("bounds"):
            lo, hi = (float(x) for x in s["bounds"][_bin_index(pname, params)])
        if s.get("inits"):
            init = float(s["inits"][_bin_index(pname, params)])
        (poi_axes if pname == poi else nuisance_axes).append({"name": pname, "min": lo, "max": hi})
        point: dict[str, Any] = {"name": pname, "value": init}
        if s.get("fixed"):
            point["const"] = True
        values.append(point)
    return poi_axes, nuisance_axes, values


def _global_points(
    distributions: Sequence[Mapping[str, Any]], settings: Mapping[str, Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The global observables (:func:`_global_observables`), sorted by name: their domain axes
    and their constant points."""
    axes, values = [], []
    for gname, (value, lo, hi) in sorted(_global_observables(distributions, settings).items()):
        axes.append({"name": gname, "min": lo, "max": hi})
        values.append({"name": gname, "value": value, "const": True})
    return axes, values


def _domains(label: str, axes: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The ``product_domain``s: ``default_domain`` (every parameter: the POI, the nuisance
    parameters, the global observables) and one ``<label>_<key>`` per key of :data:`_DOMAINS`.
    """
    every = [
        *axes["parameters_of_interest"],
        *axes["nuisance_parameters"],
        *axes["global_observables"],
    ]
    return [
        {"name": "default_domain", "type": "product_domain", "axes": every},
        *(
            {"name": f"{label}_{key}", "type": "product_domain", "axes": axes[key]}
            for key in _DOMAINS
        ),
    ]


def _analysis(label: str, poi: str) -> dict[str, Any]:
    """The analysis of likelihood ``label``: its POI (none when the measurement names none)
    and its domains (:func:`_domains`)."""
    return {
        "name": label,
        "likelihood": label,
        "parameters_of_interest": [poi] if poi else [],
        "domains": [f"{label}_{key}" for key in _DOMAINS],
    }


def _metadata(description: str) -> dict[str, Any]:
    """The document's ``metadata``: :data:`HS3_VERSION`, gammastar's version and, when given,
    the description."""
    return {
        "hs3_version": HS3_VERSION,
        "packages": [{"name": "gammastar", "version": __version__}],
        **({"description": description} if description else {}),
    }


def _root_internal(label: str, hf: Sequence[str], channels: Sequence[str]) -> dict[str, Any]:
    """The document's ``misc``: RooFit's names for what it builds from the ``histfactory_dist``
    names ``hf`` of ``channels`` (hist2workspace's ModelConfig, simPdf, obsData, channelCat);
    other HS3 readers ignore misc."""
    return {
        "ROOT_internal": {
            "ModelConfigs": {label: {"mcName": "ModelConfig", "pdfName": "simPdf"}},
            "combined_distributions": {
                "simPdf": {
                    "distributions": list(hf),
                    "index_cat": "channelCat",
                    "indices": list(range(len(channels))),
                    "labels": list(channels),
                }
            },
            "combined_datasets": {
                "obsData": {
                    "index_cat": "channelCat",
                    "indices": list(range(len(channels))),
                    "labels": list(channels),
                }
            },
        }
    }


def _global_observables(
    distributions: Sequence[Mapping[str, Any]], settings: Mapping[str, Mapping[str, Any]]
) -> dict[str, tuple[float, float, float]]:
    """RooFit's global observables of the constraints: name -> (value, min, max).

    ``nom_<α>`` = 0 of a normsys or histosys (unit Gaussian), ``nom_<γ>`` = 1 of a staterror γ
    (Gaussian of relative width σ), ``nom_<γ>`` = τ of a shapesys γ (Poisson of mean γτ),
    ``nominal_lumi`` the measurement's lumi auxdata.
    """
    out: dict[str, tuple[float, float, float]] = {}
    for dist in distributions:
        for sample in dist.get("samples", []):
            for mod in sample["modifiers"]:
                kind = mod["type"]
                if kind in ("normsys", "histosys"):
                    out[f"nom_{mod['parameter']}"] = (0.0, -10.0, 10.0)
                elif kind == "staterror":
                    for g in mod["parameters"]:
                        out[f"nom_{g}"] = (1.0, 0.0, 10.0)
                elif kind == "shapesys":
                    for g, rel in zip(mod["parameters"], mod["data"]["vals"], strict=True):
                        tau = 1.0 / rel**2 if rel > 0 else 1.0
                        out[f"nom_{g}"] = (tau, 0.0, max(10.0, 10.0 * tau))
                elif kind == "normfactor" and mod.get("constraint_name") == "lumiConstraint":
                    aux = _first(settings.get("lumi", {}).get("auxdata"), 1.0)
                    out["nominal_lumi"] = (aux, 0.0, 10.0 * aux)
    return out


# --------------------------------------------------------------------------- RooStats
@dataclass(frozen=True)
class RooStatsCLs:
    """The asymptotic CLs RooStats gives at one POI value (:func:`roostats_cls`).

    Arguments:
        poi: the POI value tested.
        observed: CLs of the observed data.
        expected: the expected CLs at −2σ, −1σ, median, +1σ, +2σ of the background-only
            test statistic (pyhf's ``return_expected_set`` order).
    """

    poi: float
    observed: float
    expected: tuple[float, ...]


def roostats_cls(doc: Mapping[str, Any], poi_values: Sequence[float]) -> list[RooStatsCLs]:
    """The asymptotic CLs that RooStats computes on an HS3 document, as a ROOT user would:
    ``RooJSONFactoryWSTool`` imports it, ``AsymptoticCalculator`` (one-sided, q̃_μ; Cowan,
    Cranmer, Gross, Vitells, EPJC 71 (2011) 1554) tests each POI value against POI = 0 with the
    ModelConfig's global observables, Asimov data from the conditional fit at POI = 0: the
    calculation of ``pyhf.infer.hypotest(..., test_stat="qtilde", calctype="asymptotics")``.

    Arguments:
        doc: the HS3 document (:func:`workspace_to_hs3`).
        poi_values: the POI values to test.

    Returns:
        One :class:`RooStatsCLs` per POI value.

    Raises:
        EnvironmentFailure: PyROOT is not installed (the ``root`` extra).
    """
    import json

    root = _pyroot()
    msg = root.RooMsgService.instance()
    level = msg.globalKillBelow()
    msg.setGlobalKillBelow(root.RooFit.ERROR)
    calculator = root.RooStats.AsymptoticCalculator
    calculator.SetPrintLevel(-1)
    try:
        ws = root.RooWorkspace("hs3")
        root.RooJSONFactoryWSTool(ws).importJSONfromString(json.dumps(doc))
        mc, data = ws["ModelConfig"], ws["obsData"]
        poi = mc.GetParametersOfInterest().first()
        out = []
        for k, value in enumerate(poi_values):
            null, alt = mc.Clone(f"null_{k}"), mc.Clone(f"alt_{k}")
            poi.setVal(float(value))
            null.SetSnapshot(root.RooArgSet(poi))
            poi.setVal(0.0)
            alt.SetSnapshot(root.RooArgSet(poi))
            calc = calculator(data, alt, null)
            calc.SetOneSided(True)
            calc.SetQTilde(True)
            res = calc.GetHypoTest()
            res.SetBackgroundAsAlt(True)  # CLb from the alternate (POI = 0) p-value
            expected = tuple(
                float(
                    calculator.GetExpectedPValues(res.NullPValue(), res.AlternatePValue(), n, True)
                )
                for n in (-2, -1, 0, 1, 2)
            )
            out.append(RooStatsCLs(float(value), float(res.CLs()), expected))
        return out
    finally:
        msg.setGlobalKillBelow(level)


def _pyroot() -> Any:
    """PyROOT, imported without the warning its wheel prints."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import ROOT
    except ImportError:
        raise EnvironmentFailure("RooStats needs PyROOT: pip install 'gammastar[root]'") from None
    return ROOT


# --------------------------------------------------------------------------- helpers
def _measurement(spec: Mapping[str, Any], name: str | None) -> Mapping[str, Any]:
    measurements = spec.get("measurements") or []
    if not measurements:
        raise InputError("the workspace has no measurement")
    if name is None:
        return measurements[0]
    for m in measurements:
        if m["name"] == name:
            return m
    raise InputError(f"no measurement {name!r}; one of {[m['name'] for m in measurements]}")


def _check_name(name: str, what: str) -> None:
    if not _NAME.match(name):
        raise InputError(f"{what} name {name!r}: RooFit needs a C identifier (letters, digits, _)")


def _first(values: Sequence[Any] | None, default: float) -> float:
    return float(values[0]) if values else default


def _gammas(params: dict[str, tuple[str, int]], name: str, kind: str, nbins: int) -> list[str]:
    """The per-bin γ parameters of the modifier ``name``, registered in ``params``."""
    gammas = [f"{name}_bin_{i}" for i in range(nbins)]
    for g in gammas:
        _add_param(params, g, kind, nbins)
    return gammas


def _setting_name(pname: str, params: Mapping[str, tuple[str, int]]) -> str:
    """The measurement's parameter entry of ``pname`` (a γ's is its modifier's)."""
    kind, _ = params[pname]
    if kind in ("staterror", "shapesys", "shapefactor"):
        return pname.rsplit("_bin_", 1)[0]
    return pname


def _bin_index(pname: str, params: Mapping[str, tuple[str, int]]) -> int:
    kind, _ = params[pname]
    if kind in ("staterror", "shapesys", "shapefactor"):
        return int(pname.rsplit("_bin_", 1)[1])
    return 0


def _variations(kind: str, mdata: Any) -> dict[str, Any]:
    """The ``hi``/``lo`` of a normsys (factors) or histosys (absolute templates) modifier."""
    if kind == "normsys":
        return {"hi": float(mdata["hi"]), "lo": float(mdata["lo"])}
    hi, lo = [float(x) for x in mdata["hi_data"]], [float(x) for x in mdata["lo_data"]]
    return {"hi": {"contents": hi}, "lo": {"contents": lo}}


def _add_param(params: dict[str, tuple[str, int]], name: str, kind: str, nbins: int) -> None:
    _check_name(name, f"{kind} parameter")
    seen = params.get(name)
    if seen is not None and seen[0] != kind:
        raise InputError(f"parameter {name!r} is both a {seen[0]} and a {kind}")
    params[name] = (kind, nbins)


def _sample(
    sample: Mapping[str, Any],
    channel: str,
    nbins: int,
    params: dict[str, tuple[str, int]],
    codes: Mapping[str, str],
) -> dict[str, Any]:
    """One sample's HS3 form, its parameters added to ``params``."""
    name = str(sample["name"])
    _check_name(name, "sample")
    contents = [float(x) for x in sample["data"]]
    if len(contents) != nbins:
        raise InputError(f"channel {channel!r}, sample {name!r}: {len(contents)} bins, not {nbins}")
    out: dict[str, Any] = {"name": name, "data": {"contents": contents}, "modifiers": []}
    for mod in sample.get("modifiers", []):
        kind, mname, mdata = str(mod["type"]), str(mod["name"]), mod.get("data")
        where = f"channel {channel!r}, sample {name!r}, modifier {mname!r}"
        if kind == "normfactor":
            _add_param(params, mname, kind, 1)
            out["modifiers"].append({"type": kind, "name": mname, "parameter": mname})
        elif kind == "lumi":
            _add_param(params, "lumi", kind, 1)
            out["modifiers"].append(
                {
                    "type": "normfactor",
                    "name": "lumi",
                    "parameter": "lumi",
                    "constraint_name": "lumiConstraint",
                }
            )
        elif kind in ("normsys", "histosys"):
            _add_param(params, mname, kind, 1)
            out["modifiers"].append(
                {
                    "type": kind,
                    "name": mname,
                    "parameter": mname,
                    "constraint_type": "Gauss",
                    "interpolation": INTERPOLATION[kind][codes[kind]],
                    "data": _variations(kind, mdata),
                }
            )
        elif kind == "staterror":
            errors = [float(x) for x in mdata]
            if any(not math.isfinite(e) or e < 0 for e in errors):
                raise InputError(f"{where}: staterror uncertainties must be finite and >= 0")
            out["data"]["errors"] = errors
            gammas = _gammas(params, mname, kind, nbins)
            out["modifiers"].append(
                {
                    "type": kind,
                    "name": mname,
                    "parameters": gammas,
                    "constraint_type": "Gauss",
                }
            )
        elif kind == "shapesys":
            delta = [float(x) for x in mdata]
            rel = [d / n if n > 0 else 0.0 for d, n in zip(delta, contents, strict=True)]
            gammas = _gammas(params, mname, kind, nbins)
            out["modifiers"].append(
                {
                    "type": kind,
                    "name": mname,
                    "parameters": gammas,
                    "constraint_type": "Poisson",
                    "data": {"vals": rel},
                }
            )
        elif kind == "shapefactor":
            gammas = _gammas(params, mname, kind, nbins)
            out["modifiers"].append({"type": kind, "name": mname, "parameters": gammas})
        else:
            raise InputError(f"{where}: modifier type {kind!r} has no HS3 form here")
    return out


__all__ = ["HS3_VERSION", "INTERPOLATION", "RooStatsCLs", "roostats_cls", "workspace_to_hs3"]
