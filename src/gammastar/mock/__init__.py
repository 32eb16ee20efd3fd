"""NA60-like mock dimuon data (docs/explanation/physics.md §3, docs/reference/mock.md).

Public API (each name imported from its module):

* :func:`gammastar.mock.generate.generate_file` (``gammastar generate``): write the mock ROOT ntuple and return a
  :class:`~gammastar.mock.generate.GenerateResult`;
* :class:`gammastar.mock.generator.MockGenerator`: the in-memory generator (chunks of sources
  with their detector view);
* the file's pieces: :mod:`gammastar.mock.ntuple` (the trees and their writer),
  :mod:`gammastar.mock.acceptance` (the γ* acceptance and truth maps),
  :mod:`gammastar.mock.ee_maps` (the electron arm's conversion template and single-electron
  acceptance);
* :mod:`gammastar.mock.plots`: the Fig. 1 analogue (OS/SS mass spectra by channel, pT spectra).
"""
