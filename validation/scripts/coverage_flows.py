"""The fiducial flows that the N_sig coverage study takes (``nsig_coverage.py --flow``,
``--form-flow A DIR``): one realisation per mock p_T form, its flow trained like the closure
run's (the nominal form's a bootstrapped ensemble, the source of the quoted
``kinematic_model``).

Command::

    python validation/scripts/coverage_flows.py --workdir WORK [--powers A ...] [--ensemble 4]

The method and the options: :mod:`gammastar_validation.coverage_flows`. The last line is one
JSON object.
"""

from gammastar_validation.coverage_flows import main

if __name__ == "__main__":
    main()
