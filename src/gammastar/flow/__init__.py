"""Conditional normalizing flow p(q_T, E | m) of γ* / A′ kinematics (paper Sec. III C, App. A).

A zuko masked-autoregressive rational-quadratic-spline flow on standardised (ln q_T, ln E)
with the standardised mass as context. The package, one module per concern (each name is
imported from the module that defines it):

* :mod:`~gammastar.flow.architecture`: the architecture record and the zuko flow it builds;
* :mod:`~gammastar.flow.data`: pairs table → weighted training rows, hold-out split,
  preprocessing;
* :mod:`~gammastar.flow.model`: :class:`~gammastar.flow.model.FlowModel` (density, sampling),
  save and :func:`~gammastar.flow.model.load`;
* :mod:`~gammastar.flow.training`: :func:`~gammastar.flow.training.fit` with checkpoints and early stopping;
* :mod:`~gammastar.flow.stage`: the ``gammastar train`` stage (:func:`~gammastar.flow.stage.train`);
* :mod:`~gammastar.flow.ensemble`: ensembles of seeds.

The compiled kernels live in :mod:`gammastar.flow._training_kernels` and
:mod:`gammastar.flow._sampling_kernels` (checked against zuko's own transforms); the millicharged
recipe on a flow is :func:`gammastar.source.mcp.sample_mcp`. Design and measurements: docs/explanation/flow.md.

References:
    Allison & Blinov, Sec. III C and App. A; docs/explanation/physics.md §5; Durkan et al. (2019), Neural Spline
    Flows; Papamakarios et al. (2017), MAF.
"""
