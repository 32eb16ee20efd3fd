"""The yields stage: A′ yield per proton on target (Eq. 6 of Allison & Blinov) and χχ̄ yield
(Eq. 8) from the unfolded spectrum (:mod:`.stage`, the entry: its inputs :mod:`.inputs` and
N_POT :mod:`.npot`, the pure formulas :mod:`.formulas`, one flavour's yields :mod:`.compute`,
the document :mod:`.document`, the channels' combined keys :mod:`.combined`, the comparison
curves :mod:`.theory`), the stated model beyond the fiducial region (:mod:`.extrapolation`),
the named uncertainties (:mod:`.uncertainties`, the entry: the record :mod:`.nuisance`, the
sources :mod:`.sources` over :mod:`.variations` and :mod:`.lambda_theta`), the ee/μμ
combination (:mod:`.universality`), the standard generator-level recipe beside the
data-driven yield (:mod:`.standard_recipe`) and their figures (:mod:`.plots`)."""
