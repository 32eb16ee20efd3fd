r"""Beyond the fiducial region: a stated kinematic model fitted to the fiducial data.

The data determine d σ/dm dq only where the spectrometer sees the γ* (the fiducial region F
of :mod:`gammastar.corrections.pair_acceptance`). The part outside F is estimated with a model of the γ*
kinematics, fitted per mass range to the acceptance-corrected pairs inside F:

.. math:: \frac{1}{p_T}\frac{dN}{dp_T\,dy} \propto e^{-m_T/T}\;
          \exp\!\Big[-\frac{(y - \bar y)^2}{2\sigma_y^2}\Big],

the m_T-scaling thermal spectrum with a Gaussian lab rapidity used for hadron production in
fixed-target collisions (NA60, Eur. Phys. J. C 59 (2009) 607; docs/explanation/physics.md §3.2) — or, with
``pt_power``, its family m_T^a e^{−m_T/T} with the power a fixed or fitted per mass range
(:func:`_log_pt_power`; a = 1 the Boltzmann form) —, with ȳ fixed
at the beam–nucleon c.m. rapidity when the caller gives it, or fitted where the data constrain
it (``yields.extrapolation_y_mean``: the fiducial data see ±0.5 units around the peak, the
slope of dN/dy there rather than its curvature;
:attr:`~gammastar.yields.extrapolation.fitting.FitSettings.y_mean_auto`). The fit
maximises the weighted likelihood of the model truncated to F,
Σ_i w_i [ln p(x_i) − ln P_F], with P_F = ∫_F p by importance sampling on a fixed broad reference
sample (smooth in the parameters). It gives the fiducial fraction f_F(m) = P_F, so that the full-phase-space
yield is Y_F / f_F, and the model samples outside F for the extrapolated part of a reach
(:class:`ExtrapolatedSampler`, every such sample labelled).

The 1σ error of f_F is that of the weighted fit, from the sandwich (robust) covariance
H⁻¹ J H⁻¹ of the weighted likelihood (:func:`sandwich_covariance`; Langenbruch, Eur. Phys. J. C
82 (2022) 393), propagated linearly to f_F. The alternative error, the profile likelihood in
σ_y with the weighted NLL scaled to the Kish effective size, is available for comparison
(``error_method="kish_profile"``): it assumes every pair carries the average information, which
is wrong where the large weights 1/A sit where the pairs constrain σ_y most or least (it comes
out low on the toys of ``tests/test_extrapolation.py``). The fit's error reaches the reach's
signal through :func:`nsig_relative_error`: the model's acceptance outside F moves with f_F, so
N_sig moves far less than the yield Y_F/f_F (docs/validation/uncertainties-and-coverage.md).

The package, one module per concern (import from the module that defines a name):

* :mod:`~gammastar.yields.extrapolation.model`: the densities, the model forms and variations,
  the fiducial fraction;
* :mod:`~gammastar.yields.extrapolation.reference`: the importance-sampling reference sample;
* :mod:`~gammastar.yields.extrapolation.layout`: the order of the fit's parameters;
* :mod:`~gammastar.yields.extrapolation.likelihood`: the weighted likelihood, the joint fit, the
  sandwich covariance;
* :mod:`~gammastar.yields.extrapolation.errors`: the profile, external-constraint and
  model-variation errors;
* :mod:`~gammastar.yields.extrapolation.fitting`: :class:`FitSettings` and
  :func:`fit_extrapolation`, the entry point;
* :mod:`~gammastar.yields.extrapolation.result`: the fitted :class:`Extrapolation`;
* :mod:`~gammastar.yields.extrapolation.refits`: refits to moved pairs;
* :mod:`~gammastar.yields.extrapolation.nsig`: the error on a reach's N_sig (a package);
* :mod:`~gammastar.yields.extrapolation.samplers`: labelled samples outside F;
* :mod:`~gammastar.yields.extrapolation.template`: a generator's rapidity shape as a model form.
"""
