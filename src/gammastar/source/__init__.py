"""Signal sources: A′ and χχ̄ kinematics and decays drawn from the yields and the kinematic
model, for the acceptance, the reach and the event files: decays, decay vertices and detector
verdicts (:mod:`.eventgen`), the χχ̄ pair recipe (:mod:`.mcp`) and the one set-up path from a
config to a labelled sampler (:mod:`.setup`)."""
