"""NA60-like mock dimuon data (docs/explanation/physics.md §3, docs/reference/mock.md).

Public API:

* :func:`generate_file` (``gammastar generate``): write the mock ROOT ntuple and return a
  :class:`GenerateResult`;
* :class:`MockGenerator`: the in-memory generator (chunks of sources with their detector view);
* :mod:`gammastar.mock.plots`: the Fig. 1 analogue (OS/SS mass spectra by channel, pT spectra).
"""

from __future__ import annotations

from gammastar.mock.generate import GenerateResult, MockGenerator, generate_file, read_meta

__all__ = ["GenerateResult", "MockGenerator", "generate_file", "read_meta"]
