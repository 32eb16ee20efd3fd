"""Coverage of the quoted N_sig uncertainty on mock realisations.

Claim: the ±1σ (±2σ) interval that the reach quotes for N_sig = Y(m)·𝓔(m, cτ) holds the
generator's truth in 68% (95%) of independent mock realisations, the truths behind the named
systematics drawn from their priors (a joint 5% test of the table's fractions).

Command (each realisation through the whole chain, its own flow)::

    python validation/scripts/coverage_flows.py --workdir WORK
    python validation/scripts/nsig_coverage.py --flow WORK/flow_a+0.0000/flow \\
        --own-flow --draw-pt-form --arms full --realisations 30 --workdir WORK

``--merge OUT …`` pools outputs. The method, the options and the output:
:mod:`gammastar_validation.coverage`. The last line is one JSON object.
"""

from gammastar_validation.coverage import main

if __name__ == "__main__":
    main()
