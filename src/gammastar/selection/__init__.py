"""The selection stage: leptons read in columnar chunks (:mod:`gammastar.io` layouts), checked
(:mod:`.plausibility`), paired and weighted (:mod:`.chunk`, :mod:`.flavour_check`,
:mod:`.weights`), run chunk by chunk by one of the executors (:mod:`.executors`: this process,
a process pool, a Dask cluster); :func:`gammastar.selection.stage.select` writes
``pairs.parquet``, ``histograms.root`` and ``select.json``."""
