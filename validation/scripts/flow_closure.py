"""The reach's flow closure over independent mock realisations.

Claim: inside the fiducial region the flow's A′ acceptance at the expected ε_low and ε_high is
that of the weighted pairs it was trained on, within the pairs' own statistics (per
realisation, the pulls of ``reach.json`` ``flow_closure`` are N(0, 1); over realisations, the
ratio of the means is the recipe's bias).

Command::

    python validation/scripts/flow_closure.py --realisations 15 --first-seed 3100 \\
        --workdir WORK [--variant '{"mass_flatten": 0.5}']

``--run RUN`` compares the config's recipe with ``--variant`` on one run's pairs; ``--merge OUT
…`` pools outputs. The method and the options: :mod:`gammastar_validation.flow_closure`. The
last line is one JSON object.
"""

from gammastar_validation.flow_closure import main

if __name__ == "__main__":
    main()
