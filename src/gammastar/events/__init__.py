"""Signal events for detector simulations: A′, χχ̄ and dark-sector decay chains
(:mod:`.stage`) written as HepMC3 (:mod:`.hepmc`) and the other output formats (:mod:`.io`)."""
