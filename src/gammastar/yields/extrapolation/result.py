"""The fitted model per mass bin (:class:`Extrapolation`): parameters, covariances, the fiducial
fraction and its errors, interpolation in mass, and the ``yields.json`` record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.yields.extrapolation.layout import Layout
from gammastar.yields.extrapolation.model import MODEL_NAME, NOMINAL, ModelForm

__all__ = ["ERROR_METHODS", "ERROR_REFERENCES", "OTHER_METHOD", "Extrapolation", "none_nan"]


@dataclass(frozen=True)
class Extrapolation:
    """Per mass bin: the fitted model and the fiducial fraction (``yields.json``
    ``extrapolation``)."""

    mass: NDArray[np.float64]
    edges: NDArray[np.float64]
    fiducial_fraction: NDArray[np.float64]
    temperature: NDArray[np.float64]
    y_mean: NDArray[np.float64]
    y_sigma: NDArray[np.float64]
    n_eff: NDArray[np.float64]
    """Kish effective pairs of the fit group that fixed each bin's parameters."""
    fiducial: dict[str, Any]
    fiducial_fraction_err: NDArray[np.float64] | None = None
    """1σ of f_F (statistical, of the fit), by :attr:`error_method`."""
    y_sigma_err: float | None = None
    y_mean_fixed: bool = False
    """ȳ fixed (to the beam's c.m. rapidity, :func:`gammastar.physics.kinematics.cm_rapidity`)
    rather than fitted."""
    error_method: str = "kish_profile"
    """How :attr:`fiducial_fraction_err` was made: ``sandwich`` (the robust covariance of the
    weighted fit) or ``kish_profile`` (the profile in σ_y, Kish-scaled; files written before
    the sandwich have no field and were made so)."""
    fiducial_fraction_err_alt: NDArray[np.float64] | None = None
    """The other method's 1σ of f_F, for comparison (``None``: not computed)."""
    y_sigma_err_alt: float | None = None
    covariance: NDArray[np.float64] | None = None
    """Sandwich covariance of the free fit parameters ([ȳ], σ_y, T_0, T_1, ...; ȳ only when
    fitted), ``None`` when not computed (:func:`nsig_relative_error` propagates it)."""
    bin_group: NDArray[np.int64] | None = None
    """Per mass bin, the fit group whose T_g it took (index into the T's of
    :attr:`covariance`)."""
    covariance_stat: NDArray[np.float64] | None = None
    """The sandwich covariance alone (the fit's statistical part of :attr:`covariance`, with an
    external σ_y's error when σ_y is not fitted; ``None``: no model-form variations were
    added, :attr:`covariance` is that part)."""
    fiducial_fraction_err_stat: NDArray[np.float64] | None = None
    """1σ of f_F from :attr:`covariance_stat` (``None``: as :attr:`fiducial_fraction_err`)."""
    model_variations: dict[str, Any] | None = None
    """Per alternative form (:data:`MODEL_VARIATIONS`): its fit's f_F per bin and the shift of
    the nominal parameters that reproduces it (added to :attr:`covariance` as δδᵀ)."""
    y_sigma_external: dict[str, Any] | None = None
    """``{value, error, source, parameter_shift, parameter_sides}`` when σ_y was fixed to an
    external value rather than fitted (:func:`fit_extrapolation` ``y_sigma``): its error is in
    :attr:`covariance` and :attr:`covariance_stat` as δδᵀ, δ = ``parameter_shift`` (the free
    parameters' shift at σ_y ± error, the T_g's response included, half the difference of the
    two fits); ``parameter_sides`` each fit's own shift from the nominal ([+error, −error]; absent
    from older records), at which :func:`nsig_error_parts` evaluates N_sig's response itself."""
    pt_power: NDArray[np.float64] | None = None
    """Per mass bin, the m_T power a of the model's p_T form m_T^a e^{−m_T/T} (``None``: 0, files
    written before the power)."""
    pt_power_fitted: bool = False
    """The powers were fitted (one per fit group, after the T_g in :attr:`covariance`) rather
    than fixed (``yields.extrapolation_pt_power``)."""
    yield_covariance: NDArray[np.float64] | None = None
    """(n_bins, k): per mass bin b, the covariance of the free parameters (the order of
    :attr:`covariance`) with ln S_b, S_b the bin's weighted pair sum inside F (the fiducial
    yield's statistics): the fit and the yield use the same pairs, so their errors are
    correlated (:func:`sandwich_and_cross`); ``None``: not computed (older files,
    or without the sandwich). :func:`nsig_error_parts` carries it to N_sig."""

    y_mean_rule: dict[str, Any] | None = None
    """With ``yields.extrapolation_y_mean: auto``, the rule's decision ``{rule, y_mean_fitted,
    y_mean_fitted_err, y_mean_fixed, threshold, decision}`` (``fitted``: ȳ from the data,
    ``fixed``: at the c.m. rapidity with the stated error); ``None`` without the rule."""
    falloff: dict[str, Any] | None = None
    """The model's fall-off towards x_F → 1, ``{n, error, beam_energy, source}`` and, where
    the γ* falls with n + 1 below a mass, ``dalitz_mass``: its density × (1 − E/E_beam)^n
    (:attr:`form`); ``None``: none."""

    @property
    def form(self) -> ModelForm:
        """The fitted form: the nominal × the fall-off where it has one
        (:meth:`~gammastar.yields.extrapolation.model.ModelForm.with_falloff`)."""
        if not self.falloff:
            return NOMINAL
        fo = self.falloff
        return NOMINAL.with_falloff(float(fo["n"]), float(fo["beam_energy"]), fo.get("dalitz_mass"))

    def layout(self) -> Layout:
        """The order of the free parameters in :attr:`covariance`
        (:class:`~gammastar.yields.extrapolation.layout.Layout`): ``y_mean`` (when fitted),
        ``y_sigma``, the fit groups' ``T`` and, with fitted powers, their ``a``."""
        if self.covariance is None:
            raise ValueError("the extrapolation has no covariance")
        n_t = self.covariance.shape[0] - (1 if self.y_mean_fixed else 2)
        n_groups = n_t // 2 if self.pt_power_fitted else n_t
        return Layout(n_groups, y_mean=not self.y_mean_fixed, power=self.pt_power_fitted)

    def parameter_index(self, name: str, group: int = 0) -> int:
        """The index of a free parameter in :attr:`covariance`: ``y_mean`` (when fitted),
        ``y_sigma``, or fit group ``group``'s ``T`` or ``a`` (the fitted powers follow the T_g)."""
        return self.layout().index(name, group)

    def bin_weights(self, m: float) -> list[tuple[int, float]]:
        """The mass bins whose values :meth:`at` interpolates at ``m``, with their weights:
        ``[(bin, 1 − t), (bin + 1, t)]`` between two bin centres, ``[(bin, 1.0)]`` at or
        beyond an end (np.interp's rule)."""
        xp = np.asarray(self.mass, dtype=np.float64)
        if m <= xp[0] or xp.size == 1:
            return [(0, 1.0)]
        if m >= xp[-1]:
            return [(xp.size - 1, 1.0)]
        j = int(np.searchsorted(xp, m, side="right"))
        t = float((m - xp[j - 1]) / (xp[j] - xp[j - 1]))
        return [(j - 1, 1.0 - t), (j, t)]

    def group_weights(self, m: float) -> dict[int, float]:
        """The fit groups whose parameters set the model at mass ``m``, with their weights:
        :meth:`at` and :meth:`power_at` interpolate T and a linearly between the two bin
        centres around ``m`` (constant beyond the ends), so a parameter of the model at ``m``
        is Σ_g w_g θ_g over these groups (the weights sum to 1; one group with weight 1 where
        both bins share it). What carries a group's covariance to a quantity at ``m``
        (:func:`nsig_error_parts`); giving the nearest bin's group the whole gradient instead
        would overstate the error between two independently fitted groups by up to √2.

        Example:
            >>> ex = Extrapolation(np.array([0.25, 0.35]), np.array([0.2, 0.3, 0.4]),
            ...     np.full(2, 0.2), np.full(2, 0.2), np.zeros(2), np.ones(2), np.ones(2), {},
            ...     bin_group=np.array([0, 1]))
            >>> {g: round(w, 3) for g, w in ex.group_weights(0.32).items()}
            {0: 0.3, 1: 0.7}
        """
        if self.bin_group is None:
            raise ValueError("this extrapolation has no fit groups (no covariance)")
        out: dict[int, float] = {}
        for b, w in self.bin_weights(m):
            g = int(self.bin_group[b])
            out[g] = out.get(g, 0.0) + w
        return {g: w for g, w in out.items() if w > 0}

    def power_at(self, m: ArrayLike) -> NDArray[np.float64]:
        """The m_T power a at masses ``m`` (as :meth:`at`; 0 without :attr:`pt_power`)."""
        m = np.asarray(m, dtype=np.float64)
        if self.pt_power is None:
            return np.zeros(m.shape)
        return np.interp(m, self.mass, self.pt_power)

    def full_fraction(self, m: ArrayLike, seam: float | None = None) -> NDArray[np.float64]:
        """f_F at masses ``m`` (:meth:`at`), and 1 below ``seam`` (a both-channels run's
        ``extrapolation.seam``: there the yields are full phase space already)."""
        m = np.asarray(m, dtype=np.float64)
        f = self.at(m)[0]
        return f if seam is None else np.where(m < float(seam), 1.0, f)

    def at(self, m: ArrayLike) -> tuple[NDArray, NDArray, NDArray, NDArray]:
        """(f_F, T, ȳ, σ_y) at masses ``m`` (linear between bin centres, constant beyond)."""
        m = np.asarray(m, dtype=np.float64)
        return tuple(
            np.interp(m, self.mass, a)
            for a in (self.fiducial_fraction, self.temperature, self.y_mean, self.y_sigma)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": MODEL_NAME,
            "mass": self.mass.tolist(),
            "bin_edges": self.edges.tolist(),
            "fiducial_fraction": self.fiducial_fraction.tolist(),
            "temperature": self.temperature.tolist(),
            "y_mean": self.y_mean.tolist(),
            "y_sigma": self.y_sigma.tolist(),
            "n_eff": self.n_eff.tolist(),
            "fiducial_fraction_err": (
                None if self.fiducial_fraction_err is None else self.fiducial_fraction_err.tolist()
            ),
            "y_sigma_err": self.y_sigma_err,
            **(
                {}
                if self.fiducial_fraction_err_stat is None
                else {"fiducial_fraction_err_stat": none_nan(self.fiducial_fraction_err_stat)}
            ),
            **(
                {} if self.model_variations is None else {"model_variations": self.model_variations}
            ),
            "error_method": self.error_method,
            "error_method_reference": ERROR_REFERENCES[self.error_method],
            **self._alt_dict(),
            **self._cov_dict(),
            "y_mean_source": "beam c.m. rapidity (fixed)" if self.y_mean_fixed else "fitted",
            **({} if self.y_mean_rule is None else {"y_mean_rule": dict(self.y_mean_rule)}),
            "y_sigma_source": (
                "fitted"
                if self.y_sigma_external is None
                else f"external (fixed): {self.y_sigma_external['source']}"
            ),
            **(
                {}
                if self.y_sigma_external is None
                else {"y_sigma_external": dict(self.y_sigma_external)}
            ),
            "pt_power": (
                [0.0] * len(self.mass) if self.pt_power is None else self.pt_power.tolist()
            ),
            "pt_power_source": (
                "fitted: one m_T power per fit group" if self.pt_power_fitted else "fixed"
            ),
            **({} if self.falloff is None else {"falloff": dict(self.falloff)}),
            "fiducial": self.fiducial,
            "reference": "docs/explanation/method.md#7-beyond-the-fiducial-region-the-labelled-extrapolation",
        }

    def _cov_dict(self) -> dict[str, Any]:
        if self.covariance is None or self.bin_group is None:
            return {}
        out = {
            "parameters": list(self.layout().names),
            "matrix": self.covariance.tolist(),
            "bin_group": self.bin_group.tolist(),
            "method": "sandwich",
        }
        if self.covariance_stat is not None:
            out["matrix_stat"] = self.covariance_stat.tolist()
            out["method"] = "sandwich + model-form variations (sum of their shifts' outer products)"
        if self.yield_covariance is not None:
            out["yield_covariance"] = self.yield_covariance.tolist()
            out["yield_covariance_meaning"] = (
                "per mass bin b: Cov(parameters, ln S_b), S_b the bin's weighted pair sum "
                "inside the fiducial region (the fit and the fiducial yield share the pairs)"
            )
        return {"parameter_covariance": out}

    def _alt_dict(self) -> dict[str, Any]:
        if self.fiducial_fraction_err_alt is None:
            return {}
        alt = OTHER_METHOD[self.error_method]
        return {
            f"fiducial_fraction_err_{alt}": self.fiducial_fraction_err_alt.tolist(),
            f"y_sigma_err_{alt}": self.y_sigma_err_alt,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Extrapolation:
        arr = {k: np.asarray(d[k], dtype=np.float64) for k in (
            "mass", "bin_edges", "fiducial_fraction", "temperature", "y_mean", "y_sigma",
            "n_eff")}  # fmt: skip
        err = d.get("fiducial_fraction_err")
        method = d.get("error_method", "kish_profile")
        alt = d.get(f"fiducial_fraction_err_{OTHER_METHOD.get(method, '')}")
        cov = d.get("parameter_covariance")
        return cls(arr["mass"], arr["bin_edges"], arr["fiducial_fraction"], arr["temperature"],
                   arr["y_mean"], arr["y_sigma"], arr["n_eff"], d["fiducial"],
                   None if err is None else np.asarray(err, dtype=np.float64),
                   d.get("y_sigma_err"),
                   d.get("y_mean_source", "fitted") != "fitted", method,
                   None if alt is None else np.asarray(alt, dtype=np.float64),
                   d.get(f"y_sigma_err_{OTHER_METHOD.get(method, '')}"),
                   None if cov is None else np.asarray(cov["matrix"], dtype=np.float64),
                   None if cov is None else np.asarray(cov["bin_group"], dtype=np.int64),
                   None if cov is None or "matrix_stat" not in cov
                   else np.asarray(cov["matrix_stat"], dtype=np.float64),
                   None if d.get("fiducial_fraction_err_stat") is None
                   else np.array([np.nan if v is None else v
                                  for v in d["fiducial_fraction_err_stat"]], dtype=np.float64),
                   d.get("model_variations"), d.get("y_sigma_external"),
                   None if d.get("pt_power") is None
                   else np.asarray(d["pt_power"], dtype=np.float64),
                   str(d.get("pt_power_source", "fixed")).startswith("fitted"),
                   None if cov is None or "yield_covariance" not in cov
                   else np.asarray(cov["yield_covariance"], dtype=np.float64),
                   d.get("y_mean_rule"), d.get("falloff"))  # fmt: skip


ERROR_METHODS = ("sandwich", "kish_profile")
"""The f_F error's methods (:func:`fit_extrapolation` ``error_method``)."""
OTHER_METHOD = {"sandwich": "kish_profile", "kish_profile": "sandwich"}
ERROR_REFERENCES = {
    "sandwich": "sandwich covariance H^-1 J H^-1 of the weighted likelihood fit, propagated "
    "linearly to f_F (C. Langenbruch, Eur. Phys. J. C 82 (2022) 393)",
    "kish_profile": "profile likelihood in sigma_y, the weighted NLL scaled to the Kish "
    "effective size (sum w)^2 / sum w^2",
}


def none_nan(a: ArrayLike) -> list:
    """A JSON list: NaN as ``None``."""
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, dtype=np.float64)]
