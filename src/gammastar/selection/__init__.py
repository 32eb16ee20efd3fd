"""The selection stage: leptons read in columnar chunks (:mod:`gammastar.io` layouts), checked
(:mod:`.plausibility`), paired and weighted (:mod:`.chunk`, :mod:`.flavour`), run chunk by chunk
(:mod:`.processor`; on a Dask cluster :mod:`.dask_run`); :func:`gammastar.selection.stage.select`
writes ``pairs.parquet``, ``histograms.root`` and ``select.json``."""
