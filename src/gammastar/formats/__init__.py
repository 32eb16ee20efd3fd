"""The field's exchange formats: a run's reach and yields as a HEPData submission with its
likelihoods (:mod:`.export`, ``gammastar export``), pyhf workspaces as HS3 (:mod:`.hs3`), and
the published bounds read from HEPData, CSV, DarkCast and FORESEE files (:mod:`.bounds`)."""
