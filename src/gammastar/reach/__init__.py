"""Sensitivity: the long-lived-particle acceptance of a detector (:mod:`.acceptance`), exact and
asymptotic CLs (:mod:`.stats`), pyhf workspaces and the (m, ε) scan (:mod:`.stage`) and the
flow's acceptance closure (:mod:`.flow_closure`). The dark-sector reaches are in
:mod:`gammastar.darksector`, the export formats and published bounds in
:mod:`gammastar.formats`."""
