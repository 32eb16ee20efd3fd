"""The pair dataset of a parallel selection: one Parquet part per chunk, written by the worker.

On the ``futures`` and ``dask`` executors each chunk's weighted pairs are encoded and written
by the worker that selected them into the dataset directory (``pairs.parquet/`` once the
outputs are in place; a staging directory next to them until then), so the driver receives
only histograms, counts and per-bin sums. :func:`part_name` names a part by its input file and
first entry, so the dataset, read in name order, holds the rows in (file, entry) order whatever
order the chunks finished in: the rows of the single-process ``pairs.parquet``. What else a
worker sends (histograms, counts, sums) travels compressed (:class:`Packed`).

:func:`write_part` writes one part atomically (a hidden temporary name, which Parquet readers
skip, then a rename); :func:`finish_dataset` removes parts that no longer belong to the run (a
file dropped by ``--skip-bad-files`` after some of its chunks were written). The dataset
directory may be an fsspec URL (``selection.pairs_url``: :mod:`gammastar.core.urls`), written
and finished the same way.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gammastar.core import urls

PART_PREFIX = "part-"
PART_SUFFIX = ".parquet"


def file_numbers(files: Iterable[str]) -> dict[str, int]:
    """Each input file's number in the sorted list of the run's files (the order in which the
    driver folds the chunks: :class:`gammastar.selection.executors.processor.ChunkSink`)."""
    return {f: i for i, f in enumerate(sorted({str(f) for f in files}))}


def part_name(file_number: int, entry_start: int) -> str:
    """The part of the chunk of file ``file_number`` starting at ``entry_start``: names sort
    as (file, entry), so a reader that takes the parts in name order (pyarrow.dataset,
    pandas, awkward) sees the rows in the order of the single-file table.

    Example:
        >>> part_name(3, 500_000)
        'part-000003-000000500000.parquet'
    """
    return f"{PART_PREFIX}{file_number:06d}-{entry_start:012d}{PART_SUFFIX}"


def chunk_part_name(numbers: Mapping[str, int], key: tuple[str, int]) -> str:
    """:func:`part_name` of the chunk ``key`` = (file, first entry)."""
    return part_name(numbers[key[0]], key[1])


def write_part(directory: str | os.PathLike[str], name: str, data: bytes) -> str:
    """Write one part's Parquet bytes as ``directory/name``, atomically (a hidden temporary
    name that dataset readers skip, then renamed; :func:`gammastar.core.urls.write_bytes` for
    a URL); returns the path."""
    if urls.is_url(directory):
        url = urls.join(str(directory), name)
        urls.write_bytes(url, data)
        return url
    path = os.path.join(directory, name)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def finish_dataset(directory: str | os.PathLike[str], names: Sequence[str]) -> Path | str:
    """The dataset directory with exactly the parts ``names``: any other part (a chunk of a
    file that a retry dropped) and any temporary left by a worker are removed (a URL stays a
    URL).

    Raises:
        RuntimeError: a part of ``names`` is missing (a worker's write that did not land).
    """
    if urls.is_url(directory):
        url = str(directory)
        keep, present = set(names), set()
        for name in urls.listing(url):
            if name in keep:
                present.add(name)
            else:
                with contextlib.suppress(OSError):
                    urls.remove(urls.join(url, name))
        missing = sorted(keep - present)
        if missing:
            raise RuntimeError(f"{url}: part(s) not written: {missing[:3]}")
        return url
    directory = Path(directory)
    keep = set(names)
    present = set()
    for entry in os.scandir(directory):
        if entry.name in keep:
            present.add(entry.name)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
    missing = sorted(keep - present)
    if missing:
        raise RuntimeError(f"{directory}: part(s) not written: {missing[:3]}")
    return directory


class Packed:
    """A worker's small outputs (histograms, counts, sums) pickled and compressed for the way to
    the driver: a chunk's 3-D histograms are mostly empty bins (a 500 000-entry chunk fills a
    few per cent of them), which zlib shrinks tens of times; :meth:`unpack` gives the same
    objects back, bit for bit."""

    __slots__ = ("data",)

    def __init__(self, obj: Any) -> None:
        self.data = zlib.compress(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), 1)

    def unpack(self) -> Any:
        # our own workers' bytes (pickle is what Dask sends them as anyway)
        return pickle.loads(zlib.decompress(self.data))

    def __getstate__(self) -> bytes:
        return self.data

    def __setstate__(self, data: bytes) -> None:
        self.data = data


def unpack(obj: Any) -> Any:
    """``obj`` itself, or what a :class:`Packed` holds."""
    return obj.unpack() if isinstance(obj, Packed) else obj


__all__ = [
    "PART_PREFIX",
    "PART_SUFFIX",
    "Packed",
    "chunk_part_name",
    "file_numbers",
    "finish_dataset",
    "part_name",
    "unpack",
    "write_part",
]
