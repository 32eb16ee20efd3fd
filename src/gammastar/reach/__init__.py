"""Sensitivity: the long-lived-particle acceptance of a detector (:mod:`.acceptance`), exact and
asymptotic CLs (:mod:`.stats`), pyhf workspaces and the (m, ε) scan (:mod:`.stage`), the
millicharged and inelastic-dark-matter reaches (:mod:`.mcp`, :mod:`.idm`) and the flow's
acceptance closure (:mod:`.flow_closure`)."""
