"""The extrapolation's error on a reach's signal N_sig (:func:`nsig_relative_error`,
:func:`nsig_error_parts`, :func:`nsig_lambda_theta`, :func:`nsig_reach_error`): the model's
acceptance outside F moves with f_F, so N_sig moves far less than Y_F/f_F
(docs/validation/uncertainties-and-coverage.md).

One module per concern (import from the module that defines a name; the public functions are
also here):

* :mod:`~gammastar.yields.extrapolation.nsig.draw`: the draw, its acceptance, the reweighting;
* :mod:`~gammastar.yields.extrapolation.nsig.steps`: the fit's parameters: gradient and steps;
* :mod:`~gammastar.yields.extrapolation.nsig.forms`: the model's alternative forms;
* :mod:`~gammastar.yields.extrapolation.nsig.direct`: direct draws where reweighting fails;
* :mod:`~gammastar.yields.extrapolation.nsig.lambda_theta`: the measured λ_θ's part;
* :mod:`~gammastar.yields.extrapolation.nsig.parts`: the parts and their sum;
* :mod:`~gammastar.yields.extrapolation.nsig.arm`: below the seam, the arm's model, the reach's
  entry point.
"""

from gammastar.yields.extrapolation.nsig.arm import (
    arm_in_fiducial,
    nsig_full_space_error,
    nsig_reach_error,
)
from gammastar.yields.extrapolation.nsig.direct import TILT_SIGMAS
from gammastar.yields.extrapolation.nsig.draw import (
    KISH_MIN,
    Redraw,
    kish_size,
    per_sample_acceptance,
)
from gammastar.yields.extrapolation.nsig.lambda_theta import nsig_lambda_theta
from gammastar.yields.extrapolation.nsig.parts import (
    NsigErrorSettings,
    nsig_error_parts,
    nsig_relative_error,
)

__all__ = ["KISH_MIN", "TILT_SIGMAS", "NsigErrorSettings", "Redraw", "arm_in_fiducial", "kish_size", "nsig_error_parts", "nsig_full_space_error", "nsig_lambda_theta", "nsig_reach_error", "nsig_relative_error", "per_sample_acceptance"]
