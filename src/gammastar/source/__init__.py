"""Signal sources: the A′ (γ*) production at a mass, :class:`gammastar.source.source.Source` (the yield per POT per ε²
and the kinematics, labelled where extrapolated), which the acceptance, the reach, the event
files and the iDM reach draw from; decays, decay vertices and detector verdicts
(:mod:`.eventgen`), the χχ̄ pair recipe (:mod:`.mcp`) and the events' set-up from a config
(:mod:`.setup`)."""
