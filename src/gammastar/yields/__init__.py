"""The yields stage: A′ yield per proton on target (Eq. 6 of Allison & Blinov) and χχ̄ yield
(Eq. 8) from the unfolded spectrum (:mod:`.stage`), the stated model beyond the fiducial region
(:mod:`.extrapolation`), the named uncertainties (:mod:`.uncertainties`), the ee/μμ combination
(:mod:`.universality`) and their figures (:mod:`.plots`)."""
