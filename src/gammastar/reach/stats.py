"""Likelihoods and CLs limits for the reach, as pyhf workspaces (docs/explanation/physics.md §10; docs/explanation/reach.md §3).

Offers the statistical model (:class:`Channel`, :class:`Model`, :func:`make_model`: per decay
channel a count or mass bins, a signal template normalised to one expected event, the NA62
nuisance parameters and the yield's named signal nuisances of :mod:`gammastar.yields.uncertainties`), its pyhf spec (:func:`build_spec`, :func:`validate_spec`,
:func:`load_workspace`), and the limit calculations (:func:`upper_limit`, :func:`cls`) of the
registered methods (:data:`METHODS`: ``exact`` hybrid CLs, pyhf ``toys`` and ``asymptotic``;
``auto`` picks the first whose rule accepts the model). Why which method, and the numbers
they give: docs/explanation/reach.md "Which CLs calculation, and why".
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special, stats

from gammastar.errors import GammastarError

__all__ = [
    "BANDS",
    "METHODS",
    "Channel",
    "LimitResult",
    "Method",
    "Model",
    "Request",
    "build_spec",
    "cls",
    "gaussian_template",
    "load_workspace",
    "upper_limit",
    "validate_spec",
]

BANDS = ("-2", "-1", "0", "+1", "+2")
"""Expected-limit quantiles in σ of the background-only distribution (pyhf order)."""
POI = "n_signal"
_MAX_CONFIGS = 200_000


# --------------------------------------------------------------------------- model
@dataclass
class Channel:
    """One decay channel: signal and background per bin, optional observed counts.

    Attributes:
        name: ``"ee"`` or ``"mumu"`` (any identifier).
        signal: expected signal per bin at n_signal = 1 (the template).
        background: expected background per bin.
        observed: observed counts per bin, or None.
        bkg_kappa: log-normal shape of the background yield (1 = exact).
        eff_unc: relative signal-efficiency uncertainty.
        mc_stat: relative MC-statistics uncertainty r of the signal template (scalar or per bin);
            the exact method integrates it as a log-normal of shape 1 + r (σ = ln(1 + r)).
    """

    name: str
    signal: ArrayLike
    background: ArrayLike
    observed: ArrayLike | None = None
    bkg_kappa: float = 1.0
    eff_unc: float = 0.0
    mc_stat: float | ArrayLike = 0.0

    def __post_init__(self) -> None:
        self.signal = np.atleast_1d(np.asarray(self.signal, dtype=np.float64))
        self.background = np.atleast_1d(np.asarray(self.background, dtype=np.float64))
        if self.signal.shape != self.background.shape:
            raise GammastarError(
                f"channel {self.name}: signal has {self.signal.size} bins, "
                f"background {self.background.size}"
            )
        if np.any(~np.isfinite(self.signal)) or np.any(self.signal < 0):
            raise GammastarError(f"channel {self.name}: signal must be finite and >= 0")
        if np.any(~np.isfinite(self.background)) or np.any(self.background < 0):
            raise GammastarError(f"channel {self.name}: background must be finite and >= 0")
        if self.observed is not None:
            obs = np.atleast_1d(np.asarray(self.observed, dtype=np.float64))
            if obs.shape != self.signal.shape or np.any(obs < 0):
                raise GammastarError(f"channel {self.name}: observed counts must match the bins")
            self.observed = obs
        if self.bkg_kappa < 1.0 or self.eff_unc < 0:
            raise GammastarError(
                f"channel {self.name}: need bkg_kappa >= 1 and eff_unc >= 0 "
                f"(got {self.bkg_kappa}, {self.eff_unc})"
            )
        self.mc_stat = np.broadcast_to(
            np.asarray(self.mc_stat, dtype=np.float64), self.signal.shape
        ).copy()
        if np.any(~np.isfinite(self.mc_stat)) or np.any(self.mc_stat < 0):
            raise GammastarError(f"channel {self.name}: mc_stat must be finite and >= 0")


@dataclass
class Model:
    """A (multi-channel) reach likelihood. ``n_pot_unc`` is the relative N_POT uncertainty."""

    channels: list[Channel]
    n_pot_unc: float = 0.2
    poi_max: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    signal_nuisances: dict[str, float] = field(default_factory=dict)
    """Named relative signal-rate uncertainties r (log-normal, ``normsys`` hi = 1 + r,
    lo = 1/(1 + r)), each one parameter shared by every channel, like ``n_pot``
    (:mod:`gammastar.yields.uncertainties`: the yield's own sources)."""

    def __post_init__(self) -> None:
        if not self.channels:
            raise GammastarError("statistical model needs at least one channel")
        names = [c.name for c in self.channels]
        if len(set(names)) != len(names):
            raise GammastarError(f"duplicate channel names {names}")
        total = sum(float(c.signal.sum()) for c in self.channels)
        if total <= 0:
            raise GammastarError("signal template is empty (zero expected signal in all channels)")
        if self.n_pot_unc < 0:
            raise GammastarError(f"n_pot_unc must be >= 0, not {self.n_pot_unc}")
        for name, r in self.signal_nuisances.items():
            if name == POI or name == "n_pot" or name.startswith(("eff_", "bkg_", "mcstat_")):
                raise GammastarError(f"signal nuisance {name!r}: the name is reserved")
            if not (np.isfinite(r) and r >= 0):
                raise GammastarError(f"signal nuisance {name!r}: size must be >= 0, not {r}")

    @property
    def signal_log_width(self) -> float:
        """Width of ln(signal scale) from the shared nuisances: √(Σ ln²(1 + r)) over
        ``n_pot`` and :attr:`signal_nuisances` (independent log-normals multiply into one)."""
        terms = [self.n_pot_unc, *self.signal_nuisances.values()]
        return math.sqrt(sum(math.log1p(r) ** 2 for r in terms))

    @property
    def has_observed(self) -> bool:
        return all(c.observed is not None for c in self.channels)

    def normalised(self) -> Model:
        """A copy whose signal template sums to one event over all channels."""
        total = sum(float(c.signal.sum()) for c in self.channels)
        new = copy.deepcopy(self)
        for c in new.channels:
            c.signal = c.signal / total
        return new


def gaussian_template(mass: float, sigma: float, edges: ArrayLike) -> NDArray[np.float64]:
    """Fractions of a Gaussian (mean ``mass``, width ``sigma``) in the bins ``edges``.

    Example:
        >>> f = gaussian_template(0.5, 0.01, [0.47, 0.49, 0.51, 0.53])
        >>> round(float(f[1]), 4)
        0.6827
    """
    edges = np.asarray(edges, dtype=np.float64)
    cdf = stats.norm.cdf((edges - mass) / sigma)
    return np.diff(cdf)


# --------------------------------------------------------------------------- pyhf specs
def build_spec(model: Model, *, observed: bool | None = None) -> dict[str, Any]:
    """The pyhf workspace spec (JSON-able dict) for ``model``.

    Observations: the observed counts if every channel has them (or ``observed=True``),
    else the background expectation (an Asimov background-only data set; the written
    ``meta`` says so).
    """
    use_obs = model.has_observed if observed is None else observed
    if use_obs and not model.has_observed:
        raise GammastarError("observed counts requested but not given for every channel")
    kpot = 1.0 + model.n_pot_unc
    channels, observations = [], []
    for c in model.channels:
        smods: list[dict[str, Any]] = [{"name": POI, "type": "normfactor", "data": None}]
        if model.n_pot_unc > 0:
            smods.append(
                {"name": "n_pot", "type": "normsys", "data": {"hi": kpot, "lo": 1.0 / kpot}}
            )
        for name, r in model.signal_nuisances.items():
            if r > 0:
                smods.append(
                    {
                        "name": name,
                        "type": "normsys",
                        "data": {"hi": 1.0 + r, "lo": 1.0 / (1.0 + r)},
                    }
                )
        if c.eff_unc > 0:
            smods.append(
                {
                    "name": f"eff_{c.name}",
                    "type": "normsys",
                    "data": {"hi": 1.0 + c.eff_unc, "lo": 1.0 / (1.0 + c.eff_unc)},
                }
            )
        if np.any(c.mc_stat > 0):
            smods.append(
                {
                    "name": f"mcstat_{c.name}",
                    "type": "staterror",
                    "data": (np.asarray(c.mc_stat) * c.signal).tolist(),
                }
            )
        bmods: list[dict[str, Any]] = []
        if c.bkg_kappa > 1.0:
            bmods.append(
                {
                    "name": f"bkg_{c.name}",
                    "type": "normsys",
                    "data": {"hi": c.bkg_kappa, "lo": 1.0 / c.bkg_kappa},
                }
            )
        # pyhf needs a strictly positive total expectation in each bin
        bkg = np.maximum(c.background, 1e-9)
        channels.append(
            {
                "name": c.name,
                "samples": [
                    {"name": "signal", "data": c.signal.tolist(), "modifiers": smods},
                    {"name": "background", "data": bkg.tolist(), "modifiers": bmods},
                ],
            }
        )
        obs = c.observed if use_obs else c.background
        observations.append({"name": c.name, "data": np.asarray(obs, dtype=float).tolist()})
    poi_max = max(model.poi_max or _default_poi_max(model), 10.0)
    return {
        "channels": channels,
        "observations": observations,
        "measurements": [
            {
                "name": "reach",
                "config": {
                    "poi": POI,
                    "parameters": [{"name": POI, "bounds": [[0.0, poi_max]], "inits": [1.0]}],
                },
            }
        ],
        "version": "1.0.0",
    }


def _default_poi_max(model: Model) -> float:
    total_s = sum(float(c.signal.sum()) for c in model.channels)
    total_b = sum(float(c.background.sum()) for c in model.channels)
    return float(max(50.0, 20.0 * (1.0 + math.sqrt(total_b)))) / total_s


def validate_spec(spec: Mapping[str, Any], *, source: str = "workspace") -> Any:
    """Validate a spec against the pyhf JSON schema; return the :class:`pyhf.Workspace`.

    Raises:
        GammastarError: the spec is not a valid pyhf workspace (message names ``source``).
    """
    import pyhf

    try:
        with quiet_pyhf():
            pyhf.schema.validate(dict(spec), "workspace.json")
            return pyhf.Workspace(dict(spec))
    except (pyhf.exceptions.InvalidSpecification, pyhf.exceptions.InvalidWorkspaceOperation) as e:
        raise GammastarError(f"{source}: invalid pyhf workspace: {_short(e)}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise GammastarError(f"{source}: invalid pyhf workspace: {e}") from None


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def load_workspace(path: str) -> Any:
    """Read and validate a pyhf workspace JSON file."""
    import json

    try:
        with open(path) as f:
            spec = json.load(f)
    except FileNotFoundError:
        raise GammastarError(f"{path}: workspace not found") from None
    except (OSError, ValueError) as err:
        raise GammastarError(f"{path}: not a readable JSON workspace ({err})") from None
    spec = {k: v for k, v in spec.items() if k != "meta"} if isinstance(spec, dict) else spec
    return validate_spec(spec, source=str(path))


def _pyhf_model_data(spec_or_ws: Any) -> tuple[Any, Any]:
    import pyhf

    ws = spec_or_ws if isinstance(spec_or_ws, pyhf.Workspace) else validate_spec(spec_or_ws)
    with quiet_pyhf():
        model = ws.model()
        data = ws.data(model)
    return model, data


@contextlib.contextmanager
def quiet_pyhf() -> Iterator[None]:
    """Silence the jsonschema deprecation that pyhf 0.7.6 triggers (``RefResolver``)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"jsonschema\.RefResolver is deprecated", category=DeprecationWarning
        )
        yield


@contextlib.contextmanager
def _numpy_seed(seed: int | None) -> Iterator[None]:
    """pyhf's numpy backend samples toys from numpy's global RNG: seed it, then restore it."""
    state = np.random.get_state()  # noqa: NPY002
    if seed is not None:
        np.random.seed(seed % 2**32)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


# --------------------------------------------------------------------------- results
@dataclass
class LimitResult:
    """Upper limits on n_signal (events, when the template sums to one)."""

    cl: float
    method: str
    expected: dict[str, float]
    observed: float | None = None
    ntoys: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cl": self.cl,
            "method": self.method,
            "expected": dict(self.expected),
            "observed": self.observed,
            "ntoys": self.ntoys,
        }


@dataclass
class Request:
    """One limit or CLs calculation, what a :class:`Method` gets: the normalised model (or a
    bare workspace ``spec``), the settings, and what methods build from the model once (the
    exact construction, pyhf's model and data)."""

    model: Model | None
    spec: Any = None
    cl: float = 0.9
    ntoys: int = 500
    seed: int | None = None
    hint: float | None = None
    _exact: Any = None
    _pyhf: Any = None

    @property
    def alpha(self) -> float:
        return 1.0 - self.cl

    @property
    def exact(self) -> _Exact:
        if self._exact is None:
            if self.model is None:
                raise GammastarError("exact CLs needs a gammastar Model, not a bare workspace")
            self._exact = _Exact(self.model)
        return self._exact

    @property
    def pyhf(self) -> tuple[Any, Any, Any]:
        """``(spec, pyhf model, data)``."""
        if self._pyhf is None:
            spec = self.spec if self.spec is not None else build_spec(self.model)
            self._pyhf = (spec, *_pyhf_model_data(spec))
        return self._pyhf


@dataclass(frozen=True)
class Method:
    """One CLs calculation (pyhf's ``infer.utils.create_calculator`` is the model): adding a
    method is one entry of :data:`METHODS`; ``reach.method``, ``--method``, :func:`upper_limit`
    and :func:`cls` take it from there.

    Attributes:
        name: the ``method`` value (``reach.method``).
        doc: one line.
        limit: ``Request → LimitResult``: expected (and observed) upper limits on n_signal.
        cls: ``(Request, n_signal) → (CLs_obs or None, [CLs_exp −2σ … +2σ])``.
        auto: ``Request → bool``: whether ``"auto"`` may pick it (first accepted in registry
            order wins; the last entry should accept every model).
    """

    name: str
    doc: str
    limit: Callable[[Request], LimitResult]
    cls: Callable[[Request, float], tuple[float | None, list[float]]]
    auto: Callable[[Request], bool]


def _exact_limit(req: Request) -> LimitResult:
    ex, model = req.exact, req.model
    assert model is not None
    if not ex.feasible:
        raise GammastarError(
            "exact CLs: too many count configurations to enumerate; use method 'toys' "
            "or 'asymptotic'"
        )
    exp: dict[str, float] = {}
    zero_limit: float | None = None
    prev: float | None = req.hint
    for b in BANDS:  # bands whose reference outcome is "no event" share one limit
        if zero_limit is not None and ex.zero_class(b):
            exp[b] = zero_limit
            continue
        exp[b] = prev = ex.limit(req.alpha, band=b, hint=prev)
        if ex.zero_class(b):
            zero_limit = exp[b]
    obs = None
    if model.has_observed:
        obs = (
            zero_limit
            if (zero_limit is not None and ex.zero_class(None))
            else (ex.limit(req.alpha, band=None, hint=exp["0"]))
        )
    return LimitResult(cl=req.cl, method="exact", expected=exp, observed=obs)


def _exact_cls(req: Request, n_signal: float) -> tuple[float | None, list[float]]:
    ex, model = req.exact, req.model
    assert model is not None
    return (
        ex.cls(n_signal, None) if model.has_observed else None,
        [ex.cls(n_signal, b) for b in BANDS],
    )


def _asymptotic_limit(req: Request) -> LimitResult:
    from pyhf.infer.intervals.upper_limits import toms748_scan

    assert req.model is not None
    _, pmodel, data = req.pyhf
    # TOMS 748 root finding on the POI bounds (observed and each band). Called directly:
    # pyhf 0.7.6's upper_limit(scan=None) does not pass `level` on (always 95% CL).
    lo, hi = pmodel.config.suggested_bounds()[pmodel.config.poi_index]
    with quiet_pyhf():
        obs, exp = toms748_scan(data, pmodel, lo, hi, level=req.alpha, rtol=1e-5)
    expd = {b: float(v) for b, v in zip(BANDS, exp, strict=True)}
    return LimitResult(
        cl=req.cl,
        method="asymptotic",
        expected=expd,
        observed=float(obs) if req.model.has_observed else None,
    )


def _asymptotic_cls(req: Request, n_signal: float) -> tuple[float | None, list[float]]:
    import pyhf

    _, pmodel, data = req.pyhf
    with quiet_pyhf():
        r = pyhf.infer.hypotest(float(n_signal), data, pmodel, return_expected_set=True)
    return float(r[0]), [float(x) for x in r[1]]


def _toys_limit(req: Request) -> LimitResult:
    assert req.model is not None
    spec, pmodel, data = req.pyhf
    return _toy_limit(req.model, spec, pmodel, data, req.alpha, req.cl, req.ntoys, req.seed)


def _toys_cls(req: Request, n_signal: float) -> tuple[float | None, list[float]]:
    _, pmodel, data = req.pyhf
    with _numpy_seed(req.seed), quiet_pyhf():
        return _toy_cls(pmodel, data, float(n_signal), req.ntoys)


def _large_background(req: Request) -> bool:
    # a bare workspace: asymptotic (what `pyhf cls` computes)
    return req.model is None or all(np.all(c.background >= 10) for c in req.model.channels)


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "exact",
            "hybrid CLs computed exactly (enumerated counts, quadrature over the nuisances)",
            _exact_limit,
            _exact_cls,
            # (cheap: the constructor only sizes the count grid)
            auto=lambda req: req.model is not None and req.exact.feasible,
        ),
        Method(
            "asymptotic",
            "pyhf asymptotic formulae (large counts only)",
            _asymptotic_limit,
            _asymptotic_cls,
            auto=_large_background,
        ),
        Method(
            "toys",
            "pyhf toy calculator (pseudo-experiments)",
            _toys_limit,
            _toys_cls,
            auto=lambda req: True,
        ),
    )
}
"""The statistical methods (the registry); ``"auto"`` picks among them (:func:`choose_method`)."""


def _resolve(req: Request, method: str) -> Method:
    if method != "auto" and method not in METHODS:
        raise GammastarError(
            f"unknown statistics method {method!r}; use one of {('auto', *METHODS)}"
        )
    if method != "auto":
        return METHODS[method]
    return next(m for m in METHODS.values() if m.auto(req))


def choose_method(model: Model, method: str = "auto") -> str:
    """Resolve ``"auto"`` (see module docstring)."""
    return _resolve(Request(model.normalised()), method).name


def upper_limit(
    model: Model,
    *,
    cl: float = 0.9,
    method: str = "auto",
    ntoys: int = 500,
    seed: int | None = None,
    hint: float | None = None,
) -> LimitResult:
    """Expected (±1σ, ±2σ) and, with observed counts, observed upper limits on n_signal.

    The template is normalised to one event, so the limits are event counts.

    Arguments:
        model: the :class:`Model`.
        cl: confidence level (0.9, 0.95, …).
        method: ``"auto"`` or a key of :data:`METHODS` (``"exact"``, ``"toys"``,
            ``"asymptotic"``).
        ntoys: pseudo-experiments per hypothesis for ``"toys"``.
        seed: seed for the toys.
        hint: an approximate limit (e.g. from the neighbouring mass) to start the exact root
            search from; the result does not depend on it.

    Returns:
        A :class:`LimitResult` (``method`` is the one used).

    Example:
        >>> m = Model([Channel("mumu", [1.0], [1e-9], observed=[0])], n_pot_unc=0.0)
        >>> round(upper_limit(m, cl=0.9, method="exact").observed, 3)
        2.303
    """
    if not (0 < cl < 1):
        raise GammastarError(f"confidence level must be in (0, 1), not {cl}")
    req = Request(model.normalised(), cl=cl, ntoys=ntoys, seed=seed, hint=hint)
    used = _resolve(req, method)
    if method == "auto" and used.name == "toys":
        import logging

        logging.getLogger(__name__).warning(
            "exact CLs: too many count configurations; using pyhf toys (slow: set "
            "reach.method or use fewer bins)"
        )
    return used.limit(req)


def _toy_limit(
    model: Model, spec: Any, pmodel: Any, data: Any, alpha: float, cl: float, ntoys: int, seed: Any
) -> LimitResult:
    total_b = sum(float(c.background.sum()) for c in model.channels)
    hi = max(8.0, 4.0 * (2.0 + total_b + 3 * math.sqrt(total_b)))
    scan = np.geomspace(0.5, hi, 12)
    obs_v, exp_v = [], []
    with _numpy_seed(seed), quiet_pyhf():
        for mu in scan:
            o, e = _toy_cls(pmodel, data, float(mu), ntoys)
            obs_v.append(o)
            exp_v.append(e)
    obs_a, exp_a = np.array(obs_v), np.array(exp_v)
    expd = {b: _crossing(scan, exp_a[:, i], alpha) for i, b in enumerate(BANDS)}
    obs = _crossing(scan, obs_a, alpha) if model.has_observed else None
    return LimitResult(cl=cl, method="toys", expected=expd, observed=obs, ntoys=ntoys)


def _crossing(mu: NDArray, cls_v: NDArray, alpha: float) -> float:
    """First μ where CLs drops below α (log-linear interpolation); NaN if never."""
    below = np.nonzero(cls_v < alpha)[0]
    if below.size == 0:
        return float("nan")
    i = int(below[0])
    if i == 0:
        return float(mu[0])
    x0, x1 = math.log(mu[i - 1]), math.log(mu[i])
    y0, y1 = math.log(max(cls_v[i - 1], 1e-300)), math.log(max(cls_v[i], 1e-300))
    la = math.log(alpha)
    return float(math.exp(x0 + (la - y0) * (x1 - x0) / (y1 - y0))) if y1 != y0 else float(mu[i])


def cls(
    model_or_spec: Model | Mapping[str, Any] | Any,
    n_signal: float,
    *,
    method: str = "asymptotic",
    ntoys: int = 500,
    seed: int | None = None,
) -> dict[str, Any]:
    """CLs at ``n_signal`` (the POI): ``{"CLs_obs", "CLs_exp" (5 values, −2σ…+2σ), "method"}``.

    ``model_or_spec`` may be a :class:`Model` (normalised to one signal event), a workspace spec
    or a :class:`pyhf.Workspace`. With a spec, only ``"asymptotic"`` and ``"toys"`` apply;
    ``"asymptotic"`` is what ``pyhf cls --test-poi n_signal`` computes.
    """
    if isinstance(model_or_spec, Model):
        req = Request(model_or_spec.normalised(), ntoys=ntoys, seed=seed)
    else:
        req = Request(None, spec=model_or_spec, ntoys=ntoys, seed=seed)
    used = _resolve(req, method)
    obs, exp = used.cls(req, n_signal)
    return {"CLs_obs": obs, "CLs_exp": exp, "method": used.name}


def _toy_cls(pmodel: Any, data: Any, mu: float, ntoys: int) -> tuple[float, list[float]]:
    """Observed and expected (−2σ…+2σ) CLs from pyhf's toy calculator.

    The expected band is computed here (numpy ≥ 2 removed the ``interpolation`` keyword that
    pyhf 0.7.6's ``ToyCalculator.expected_pvalues`` passes to ``np.percentile``).
    """
    from pyhf.infer.calculators import ToyCalculator

    calc = ToyCalculator(data, pmodel, ntoys=ntoys, track_progress=False)
    t_obs = calc.teststatistic(mu)
    sb, b = calc.distributions(mu)
    obs = float(calc.pvalues(t_obs, sb, b)[2])
    tb_samples = np.asarray(b.samples, dtype=float)
    sb_samples = np.sort(np.asarray(sb.samples, dtype=float))
    b_sorted = np.sort(tb_samples)
    # p-values of each background-only toy: P(q >= q_toy) under s+b and under b
    clsb = 1.0 - np.searchsorted(sb_samples, tb_samples, side="left") / sb_samples.size
    clb = 1.0 - np.searchsorted(b_sorted, tb_samples, side="left") / b_sorted.size
    with np.errstate(divide="ignore", invalid="ignore"):
        cls_v = np.where(clb > 0, clsb / clb, 1.0)
    pct = 100 * stats.norm.cdf([-2.0, -1.0, 0.0, 1.0, 2.0])
    # pyhf orders the band by the percentiles of CLs itself
    exp = [float(x) for x in np.percentile(cls_v, pct, method="linear")]
    return obs, exp


# --------------------------------------------------------------------------- exact CLs
_Z = {"-2": -2.0, "-1": -1.0, "0": 0.0, "+1": 1.0, "+2": 2.0}
_Q = {b: float(stats.norm.cdf(z)) for b, z in _Z.items()}


class _Exact:
    """Exact hybrid CLs for a normalised :class:`Model` (see module docstring)."""

    def __init__(self, model: Model, nodes: tuple[int, int, int] = (20, 5, 20)) -> None:
        self.model = model
        self.s = np.concatenate([c.signal for c in model.channels])
        self.b = np.concatenate([c.background for c in model.channels])
        self.ch = np.concatenate([np.full(c.signal.size, i) for i, c in enumerate(model.channels)])
        self.obs = (
            np.concatenate([np.asarray(c.observed) for c in model.channels]).astype(int)
            if model.has_observed
            else None
        )
        x, w = np.polynomial.hermite_e.hermegauss(nodes[0])
        w = w / w.sum()
        # the shared nuisances (n_pot and the named signal ones): independent log-normals of
        # the common signal scale multiply into one log-normal, integrated at the outer node
        s0 = model.signal_log_width
        self.k0 = np.exp(s0 * x) if s0 > 0 else np.ones(1)
        self.w0 = w if s0 > 0 else np.ones(1)
        self.kc, self.wc, self.kb, self.wb = [], [], [], []
        for c in model.channels:
            # log-normal shapes 1 + u (as the normsys of eff_unc): ln(1 + r) stays finite for
            # the huge relative errors r of yields consistent with zero (r = 500: 6.2, where
            # r itself overflowed exp() at the quadrature nodes and gave NaN CLs)
            sig_s = math.sqrt(
                math.log1p(c.eff_unc) ** 2 + math.log1p(float(np.mean(c.mc_stat))) ** 2
            )
            xs, ws = np.polynomial.hermite_e.hermegauss(nodes[1])
            self.kc.append(np.exp(sig_s * xs) if sig_s > 0 else np.ones(1))
            self.wc.append(ws / ws.sum() if sig_s > 0 else np.ones(1))
            xb, wb = np.polynomial.hermite_e.hermegauss(nodes[2])
            lb = math.log(c.bkg_kappa)
            self.kb.append(np.exp(lb * xb) if lb > 0 else np.ones(1))
            self.wb.append(wb / wb.sum() if lb > 0 else np.ones(1))

        # count range: where the background-only distribution, marginalised over the same
        # quadrature nodes that the integrals use, leaves a tail below 1e-8 (per bin, and in
        # total over all bins); plus the observation
        def tail_k(lam_nodes: NDArray, w_nodes: NDArray) -> int:
            k = 0
            while k < 1000:
                if float(w_nodes @ stats.poisson.sf(k, np.maximum(lam_nodes, 1e-300))) < 1e-8:
                    return k
                k += 1
            return k

        kmax = np.array(
            [
                tail_k(self.b[i] * self.kb[self.ch[i]], self.wb[self.ch[i]])
                for i in range(self.b.size)
            ]
        )
        if self.obs is not None:
            kmax = np.maximum(kmax, self.obs)
        self.kmax = np.maximum(kmax, 1)
        # total: channels' background nuisances independent; bound with a common node index
        nodes = max(k.size for k in self.kb)
        lam_tot = np.zeros(nodes)
        w_tot = np.ones(nodes) / nodes
        for ci, c in enumerate(self.model.channels):
            kb = self.kb[ci] if self.kb[ci].size == nodes else np.full(nodes, self.kb[ci][0])
            w_tot = self.wb[ci] if self.kb[ci].size == nodes else w_tot
            lam_tot = lam_tot + float(c.background.sum()) * kb
        k_tot = tail_k(lam_tot, w_tot) + 1
        if self.obs is not None:
            k_tot = max(k_tot, int(self.obs.sum()) + 1)
        self.k_total = k_tot
        self.n = _configurations(self.kmax, self.k_total)
        self.n_configs = 0 if self.n is None else int(self.n.shape[0])
        self.feasible = self.n is not None
        self._p0_cache: NDArray | None = None
        self._p_zero: float | None = None

    @property
    def p0(self) -> NDArray:
        """Background-only probability of each configuration of the count grid."""
        if self._p0_cache is None:
            self._p0_cache = self._prob(0.0, self.n)
        return self._p0_cache

    # probability of each count configuration at signal strength mu
    def _prob(self, mu: float, n: NDArray) -> NDArray:
        joint = np.ones((self.k0.size, n.shape[0]))
        for ci, _ in enumerate(self.model.channels):
            sel = self.ch == ci
            s, b = self.s[sel], self.b[sel]
            if sel.sum() == 1:  # one bin: the distinct rows are 0..max
                col = n[:, sel][:, 0].astype(np.int64)
                rows, inv = np.arange(int(col.max()) + 1)[:, None], col
            else:
                rows, inv = np.unique(n[:, sel], axis=0, return_inverse=True)  # (nu, nbins)
                inv = inv.ravel()
            lam = b[None, None, None, :] * self.kb[ci][None, None, :, None]  # (1, 1, nkb, nbins)
            if mu > 0:  # (at mu = 0 no signal term: 0 × a huge node would be NaN)
                lam = (
                    mu
                    * s[None, None, None, :]
                    * self.k0[:, None, None, None]
                    * self.kc[ci][None, :, None, None]
                    + lam
                )  # (n0, nkc, nkb, nbins)
            lam = np.broadcast_to(lam, (self.k0.size, self.kc[ci].size, self.kb[ci].size, b.size))
            loglam = np.log(np.maximum(lam, 1e-300))
            # log P(rows | lam) summed over bins: (nu, n0, nkc, nkb)
            logp = np.einsum("ub,aijb->uaij", rows.astype(float), loglam) - lam.sum(-1)[None]
            logp -= special.gammaln(rows + 1.0).sum(-1)[:, None, None, None]
            p = np.einsum("uaij,i,j->au", np.exp(logp), self.wc[ci], self.wb[ci])
            joint *= p[:, inv]
        return self.w0 @ joint

    def _w(self, mu: float) -> NDArray:
        """ln(1 + μ s_i/b_i) per bin, finite for b_i = 0 (floored at 1e-300) and any μ.

        For b_i = 0 the ratio overflows at μ s_i > 1.8e8 (1.8e308 × 1e-300): then ln(μ s_i) − ln b_i
        (the same to double precision), never inf (0 counts × inf was NaN).
        """
        b = np.maximum(self.b, 1e-300)
        with np.errstate(over="ignore"):
            r = mu * self.s / b
        big = ~np.isfinite(r)
        if np.any(big):
            r = np.where(big, 0.0, r)
            return np.where(big, np.log(mu * np.where(big, self.s, 1.0)) - np.log(b), np.log1p(r))
        return np.log1p(r)

    def _t(self, mu: float, n: NDArray) -> NDArray:
        return n @ self._w(mu)

    def zero_class(self, band: str | None) -> bool:
        """Whether the band's reference outcome is "no event anywhere" (t = 0) for every μ.

        t = 0 only for the all-zero configuration (all s_i > 0), whose background-only
        probability does not depend on μ: a quantile below it, or an observation of zero
        counts, is that configuration at every μ, so such bands share one limit.
        """
        if band is None:
            return self.obs is not None and not np.any(self.obs[self.s > 0])
        if np.any(self.s <= 0):
            return False
        if self._p_zero is None:
            self._p_zero = float(self.p0[~self.n.any(axis=1)].sum()) / float(self.p0.sum())
        return _Q[band] <= self._p_zero * (1 - 1e-12)

    def _t_ref(self, mu: float, band: str | None) -> float:
        if band is None:
            return float(self._t(mu, self.obs[None, :])[0])  # type: ignore[index]
        t = self._t(mu, self.n)
        order = np.argsort(t, kind="stable")
        cdf = np.cumsum(self.p0[order])
        q = _Q[band]
        i = int(np.searchsorted(cdf, q * cdf[-1] * (1 - 1e-12)))
        return float(t[order][min(i, t.size - 1)])

    def _cls_zero(self, mu: float) -> float:
        """CLs when the reference outcome is "no event": P_μ(0)/P_0(0) in closed form.

        The background factors cancel (independent nuisances), leaving
        Σ_a w_a Π_c Σ_i w_i exp(−μ s_c k0_a kc_i), s_c the channel's total signal.
        """
        out = np.ones(self.k0.size)
        for ci, c in enumerate(self.model.channels):
            s_c = float(c.signal.sum())
            e = np.exp(-mu * s_c * self.k0[:, None] * self.kc[ci][None, :])  # (n0, nkc)
            out *= e @ self.wc[ci]
        return float(self.w0 @ out)

    def cls(self, mu: float, band: str | None) -> float:
        if mu <= 0:
            return 1.0
        if self.zero_class(band):
            return self._cls_zero(mu)
        t_ref = self._t_ref(mu, band)
        t = self._t(mu, self.n)
        tol = 1e-9 * max(1.0, abs(t_ref))
        sel = t <= t_ref + tol
        clb = float(self.p0[sel].sum())
        clsb = self._clsb(mu, t_ref + tol)
        if not (math.isfinite(clb) and math.isfinite(clsb)):
            raise GammastarError(
                f"exact CLs: non-finite probabilities at n_signal = {mu:g} (CLb {clb}, "
                f"CLs+b {clsb}); use method 'toys'"
            )
        return clsb / clb if clb > 0 else 1.0

    def _clsb(self, mu: float, t_max: float) -> float:
        # configurations with t <= t_max; each count bounded by t_max / w_i
        w = self._w(mu)
        lim = np.where(w > 0, np.floor(t_max / np.where(w > 0, w, 1.0) + 1e-12), self.kmax)
        lim = np.minimum(lim, 400).astype(int)
        w_min = float(w[w > 0].min()) if np.any(w > 0) else 0.0
        total = int(min(np.floor(t_max / w_min + 1e-12), 400)) if w_min > 0 else int(lim.sum())
        n = _configurations(lim, total)
        if n is None:  # fall back to the background-range grid (complete for the usual cases)
            n = self.n
        n = n[(n @ w) <= t_max]
        return float(self._prob(mu, n).sum()) if n.size else 0.0

    def limit(self, alpha: float, band: str | None, hint: float | None = None) -> float:
        def f(lmu: float) -> float:
            return math.log(max(self.cls(math.exp(lmu), band), 1e-300)) - math.log(alpha)

        if hint is not None and np.isfinite(hint) and hint > 0:
            # warm start: a narrow bracket around a nearby solution (a neighbouring band/mass)
            lo, hi = math.log(hint) - 0.05, math.log(hint) + 0.05
            if f(lo) > 0 > f(hi):
                return float(math.exp(optimize.brentq(f, lo, hi, xtol=1e-6, rtol=1e-7)))
        lo, hi = math.log(1e-3), math.log(10.0)
        if f(lo) < 0:
            return float(math.exp(lo))
        for _ in range(40):
            if f(hi) < 0:
                break
            lo, hi = hi, hi + math.log(4.0)
        else:
            return float("nan")
        return float(math.exp(optimize.brentq(f, lo, hi, xtol=1e-6, rtol=1e-7)))


def _configurations(kmax: NDArray, k_total: int) -> NDArray | None:
    """All count vectors n with 0 ≤ n_i ≤ kmax_i and Σ n_i ≤ k_total (None if too many)."""
    kmax = np.asarray(kmax, dtype=int)
    nb = kmax.size
    if float(np.prod(kmax.astype(float) + 1)) <= _MAX_CONFIGS:
        grids = np.meshgrid(*[np.arange(k + 1) for k in kmax], indexing="ij")
        n = np.stack([g.ravel() for g in grids], axis=1)
        return n[n.sum(axis=1) <= k_total]
    k_total = int(min(k_total, kmax.sum()))
    if math.comb(k_total + nb, nb) > _MAX_CONFIGS:
        return None
    import itertools

    rows = [np.zeros(nb, dtype=int)]
    for k in range(1, k_total + 1):
        for combo in itertools.combinations_with_replacement(range(nb), k):
            rows.append(np.bincount(combo, minlength=nb))
    n = np.array(rows)
    return n[np.all(n <= kmax, axis=1)]


def expected_bands_to_list(res: LimitResult) -> list[float]:
    """Expected limits in pyhf order (−2σ … +2σ)."""
    return [res.expected[b] for b in BANDS]


def make_model(channels: Sequence[Channel], n_pot_unc: float = 0.2, **meta: Any) -> Model:
    """Convenience constructor."""
    return Model(list(channels), n_pot_unc=n_pot_unc, meta=dict(meta))
