"""Validation of gammastar against the mock generator's truth: the helpers of the studies in
``validation/scripts`` (not part of the gammastar wheel).

* :mod:`gammastar_validation.truth`: the generator's full-phase-space γ*, its mass response
  and its true polarisation;
* :mod:`gammastar_validation.closure`: the reach inputs (𝓔, N_sig) against that truth;
* :mod:`gammastar_validation.coverage`, :mod:`gammastar_validation.coverage_flows`: the
  coverage of the quoted N_sig uncertainty over mock realisations;
* :mod:`gammastar_validation.flow_closure`: the reach's flow closure over realisations;
* :mod:`gammastar_validation.real_data`: measured forward spectra (``validation/data``) against
  the extrapolation's forms.
"""
