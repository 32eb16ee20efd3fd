"""The dark-sector analyses beyond the A′ reach, each on the data-driven source: the
millicharged-particle reach in a scintillator detector (:mod:`.mcp`, ``gammastar reach-mcp``)
and the inelastic-dark-matter reach (:mod:`.idm`, ``gammastar reach-idm``); they use the A′
reach's statistics and acceptance (:mod:`gammastar.reach`)."""
