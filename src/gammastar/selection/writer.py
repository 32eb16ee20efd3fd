"""The pair dataset of a parallel selection: one Parquet part per chunk, written by the worker.

On the ``futures`` and ``dask`` executors each chunk's weighted pairs are encoded and written
by the worker that selected them into the dataset directory (``pairs.parquet/`` once the
outputs are in place; a staging directory next to them until then), so the driver receives
only histograms, counts and per-bin sums. :func:`part_name` names a part by its input file and
first entry, so the dataset, read in name order, holds the rows in (file, entry) order whatever
order the chunks finished in: the rows of the single-process ``pairs.parquet``.

:func:`write_part` writes one part atomically (a hidden temporary name, which Parquet readers
skip, then a rename); :func:`finish_dataset` removes parts that no longer belong to the run (a
file dropped by ``--skip-bad-files`` after some of its chunks were written).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

PART_PREFIX = "part-"
PART_SUFFIX = ".parquet"


def file_numbers(files: Iterable[str]) -> dict[str, int]:
    """Each input file's number in the sorted list of the run's files (the order in which the
    driver folds the chunks: :class:`gammastar.selection.processor.ChunkSink`)."""
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
    name that dataset readers skip, then renamed); returns the path."""
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


def finish_dataset(directory: str | os.PathLike[str], names: Sequence[str]) -> Path:
    """The dataset directory with exactly the parts ``names``: any other part (a chunk of a
    file that a retry dropped) and any temporary left by a worker are removed.

    Raises:
        RuntimeError: a part of ``names`` is missing (a worker's write that did not land).
    """
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


def part_paths(directory: str | os.PathLike[str], names: Sequence[str]) -> list[str]:
    """The paths of the parts ``names`` (in the given order)."""
    return [os.path.join(directory, n) for n in names]


def remove_parts(paths: Iterable[Any]) -> None:
    """Remove parts (an aborted run), ignoring those already gone."""
    for p in paths:
        with contextlib.suppress(OSError):
            os.unlink(p)


__all__ = [
    "PART_PREFIX",
    "PART_SUFFIX",
    "chunk_part_name",
    "file_numbers",
    "finish_dataset",
    "part_name",
    "part_paths",
    "write_part",
]
