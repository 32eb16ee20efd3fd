"""Writing the signal events (docs/howto/signal-events.md): the output format from the file name
(:func:`output_kind`), the checks of a request's outputs (:func:`event_outputs`), and
:func:`write_events`, which streams chunks of event columns into HepMC3 text
(:mod:`gammastar.events.hepmc`), a parquet table (pyarrow) or a ROOT TTree (uproot), atomically.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.core.artifacts import atomic_paths, check_writable
from gammastar.errors import GammastarError
from gammastar.events.hepmc import HEPMC_FOOTER, hepmc_header, hepmc_text
from gammastar.source.decays import CHANNEL_CODE

__all__ = ["TABLE_UNITS", "event_outputs", "output_kind", "write_events"]

TABLE_UNITS = "GeV, m (positions), m (decay_t = c t)"


class _TableWriter:
    """Streams chunks into a parquet file (pyarrow) or a ROOT TTree ``events`` (uproot)."""

    def __init__(self, path: Path, kind: str, meta: Mapping[str, Any]) -> None:
        self.path, self.kind, self.meta = path, kind, dict(meta)
        self._w: Any = None
        self._file: Any = None

    def write(self, cols: Mapping[str, NDArray]) -> None:
        if self.kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            tab = pa.table(dict(cols))
            if self._w is None:
                schema = tab.schema.with_metadata({"gammastar": json.dumps(self.meta, default=str)})
                self._w = pq.ParquetWriter(str(self.path), schema)
            self._w.write_table(tab.cast(self._w.schema))
        else:
            import uproot

            if self._file is None:
                self._file = uproot.recreate(str(self.path))
                self._file["meta"] = json.dumps(self.meta, default=str)
                self._file.mktree("events", {k: v.dtype for k, v in cols.items()})
            self._file["events"].extend(dict(cols))

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
        if self._file is not None:
            self._file.close()


def output_kind(path: str | Path) -> str:
    """``hepmc`` (.hepmc, .hepmc3), ``parquet`` or ``root`` from the file name."""
    suf = Path(path).suffix.lower()
    kinds = {".hepmc": "hepmc", ".hepmc3": "hepmc", ".parquet": "parquet", ".root": "root"}
    if suf not in kinds:
        raise GammastarError(
            f"{path}: unknown output format {suf!r}; use .hepmc/.hepmc3 (HepMC3), .parquet or .root"
        )
    return kinds[suf]


def write_events(
    chunks: Iterator[dict[str, NDArray]],
    outputs: list[Path],
    st: Any,
    meta: Mapping[str, Any],
    *,
    force: bool,
    n_attempted: int,
    text: Any = None,
) -> dict[str, Any]:
    """Stream ``chunks`` into every output (atomically: temporaries renamed at the end);
    ``text(cols, st, n_attempted)`` formats HepMC3 records (default :func:`hepmc_text`)."""

    text = hepmc_text if text is None else text

    kinds = [output_kind(p) for p in outputs]
    stats: dict[str, Any] = {"events": 0, "sum_weight": 0.0, "sum_weight2": 0.0, "sum_weight_decay": 0.0}
    channels = getattr(st, "channels", ())
    per_channel: dict[str, float] = {c: 0.0 for c in channels}
    with atomic_paths(outputs, force=force) as tmps:
        handles: list[Any] = []
        try:
            for tmp, kind in zip(tmps, kinds, strict=True):
                if kind == "hepmc":
                    fh = open(tmp, "wb")  # noqa: SIM115 (closed below)
                    names = getattr(text, "weight_names", "weight\\|weight_decay")
                    fh.write(hepmc_header(meta, names).encode())
                    handles.append(fh)
                else:
                    handles.append(_TableWriter(tmp, kind, meta))
            for cols in chunks:
                stats["events"] += int(cols["weight"].size)
                stats["sum_weight"] += float(cols["weight"].sum())
                stats["sum_weight2"] += float(np.sum(cols["weight"] ** 2))
                if "weight_decay" in cols:
                    stats["sum_weight_decay"] += float(cols["weight_decay"].sum())
                for ch in channels:
                    sel = cols["channel"] == CHANNEL_CODE[ch]
                    per_channel[ch] += float(cols["weight"][sel].sum())
                for h, kind in zip(handles, kinds, strict=True):
                    if kind == "hepmc":
                        h.write(text(cols, st, n_attempted))
                    else:
                        h.write(cols)
            for h, kind in zip(handles, kinds, strict=True):
                if kind == "hepmc":
                    h.write(HEPMC_FOOTER.encode())
        finally:
            for h in handles:
                h.close()
    stats["sum_weight_by_channel"] = per_channel
    return stats


def event_outputs(output: str | Path, table: str | Path | None, force: bool) -> list[Path]:
    """The outputs of a request, ``output`` and the optional ``table``, checked before any
    work: known formats, two different files, writable (and not there unless ``force``).

    Raises:
        GammastarError: an unknown format, the table the same file as the output.
        OutputExistsError: an output exists (without ``force``).
    """

    outputs = [Path(output)] + ([Path(table)] if table is not None else [])
    for p in outputs:
        output_kind(p)
    if len({p.resolve() for p in outputs}) != len(outputs):
        raise GammastarError("--table: the same file as the output")
    for p in outputs:
        check_writable(p, force)
    return outputs
