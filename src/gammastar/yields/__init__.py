"""The yields stage: A′ yield per proton on target (Eq. 6 of Allison & Blinov) and χχ̄ yield
(Eq. 8) from the unfolded spectrum (:mod:`.stage`), the stated model beyond the fiducial region
(:mod:`.extrapolation`), the named uncertainties (:mod:`.uncertainties`), the ee/μμ combination
(:mod:`.universality`), the standard generator-level recipe beside the data-driven yield
(:mod:`.standard_recipe`) and their figures (:mod:`.plots`)."""
