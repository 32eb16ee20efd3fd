"""The infrastructure every stage uses: atomic artifact writes and metadata (:mod:`.artifacts`),
the run directory and its schema-checked readers (:mod:`.rundir`), the one-writer lock
(:mod:`.runlock`), signals as exceptions (:mod:`.interrupt`), figures (:mod:`.figures`), the
cache directory, thread limits and Parquet concatenation."""
