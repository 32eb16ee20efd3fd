"""The pairs' weights: the per-pair weight (:mod:`.pairs`: 1/ε, 1/A, like-sign and
conversion factors), the selection's weighting step on chunks or the whole table
(:mod:`.apply`) and the second pass of the factors that need every chunk
(:mod:`.second_pass`)."""
