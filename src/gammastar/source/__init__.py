"""Signal sources: the A′ (γ*) production at a mass, :class:`gammastar.source.source.Source` (the yield per POT per ε²
and the kinematics, labelled where extrapolated), which the acceptance, the reach, the event
files and the iDM reach draw from; the detector geometry (:mod:`.geometry`), the A′ decays
(:mod:`.decays`) and kinematics (:mod:`.aprime`), production and decay vertices
(:mod:`.vertices`), the detector's verdict (:mod:`.hits`), the visible A′ events
(:mod:`.eventgen`), the dark-fermion chains (:mod:`.dark_decays`) and their events
(:mod:`.dark_events`), the χχ̄ pair recipe (:mod:`.mcp`) and the events' set-up from a config
(:mod:`.setup`)."""
