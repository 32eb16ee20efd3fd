"""Corrections of the selected pairs to the one stated phase space: the like-sign combinatorial
background (:mod:`.background`), efficiency and acceptance maps (:mod:`.unfold`), the per-lepton
and pair acceptance with the fiducial region (:mod:`.pair_acceptance`), the dilepton polarisation
(:mod:`.polarisation`, :mod:`.lambda_correction`) and the mass-resolution migration
(:mod:`.migration`)."""
