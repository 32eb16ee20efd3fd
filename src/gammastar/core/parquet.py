"""Parquet files of the pair dataset, edited at the byte level without re-encoding.

A parquet file is ``PAR1``, the row groups' column chunks, the footer (a Thrift
compact-protocol ``FileMetaData``), its length and ``PAR1``; the footer locates every column
chunk by absolute file offset. :func:`part_bytes` encodes one part of ``pairs.parquet`` with
its settings; :func:`replace_column` points one column of a written file at newly appended
column chunks (the workers' second pass rewrites only ``weight``), every other column's bytes
and statistics as written; :func:`read_schema` reads the schema of one file or of a dataset
directory.

Only the fields of ``parquet.thrift`` that hold file offsets are touched (``RowGroup``
``file_offset`` and ``ordinal``; ``ColumnChunk`` ``file_offset`` and ``column_index_offset``;
``ColumnMetaData`` ``data_page_offset``, ``index_page_offset``,
``dictionary_page_offset``, ``bloom_filter_offset``); every other field is copied as read.
Encrypted files are not supported (the parts are plain ``pyarrow`` output), nor files with an
offset index (``write_page_index``): its page locations are absolute offsets inside its own
bytes, so such a file is refused.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MAGIC = b"PAR1"
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF}
"""``os.copy_file_range`` errors that mean "not here": the copy goes through this process."""

# Thrift compact protocol type codes
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)

# parquet.thrift field ids
_FMD_NUM_ROWS, _FMD_ROW_GROUPS, _FMD_SCHEMA = 3, 4, 2
_RG_COLUMNS, _RG_FILE_OFFSET, _RG_ORDINAL = 1, 5, 7
_CC_FILE_OFFSET, _CC_META, _CC_OFFSET_INDEX, _CC_COLUMN_INDEX = 2, 3, 4, 6
_CMD_OFFSETS = (9, 10, 11, 14)  # data_page, index_page, dictionary_page, bloom_filter


# --------------------------------------------------------------------------- thrift compact
def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _unzigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def _write_varint(out: bytearray, n: int) -> None:
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return


def _read_value(buf: bytes, pos: int, t: int) -> tuple[Any, int]:
    if t in (_TRUE, _FALSE):  # a bool element of a list/set/map: one byte
        return buf[pos], pos + 1
    if t == _BYTE:
        return buf[pos], pos + 1
    if t in (_I16, _I32, _I64):
        v, pos = _read_varint(buf, pos)
        return _unzigzag(v), pos
    if t == _DOUBLE:
        return buf[pos : pos + 8], pos + 8
    if t == _BINARY:
        n, pos = _read_varint(buf, pos)
        return bytes(buf[pos : pos + n]), pos + n
    if t in (_LIST, _SET):
        head = buf[pos]
        pos += 1
        n, et = head >> 4, head & 0x0F
        if n == 15:
            n, pos = _read_varint(buf, pos)
        items = []
        for _ in range(n):
            v, pos = _read_value(buf, pos, et)
            items.append(v)
        return (et, items), pos
    if t == _MAP:
        n, pos = _read_varint(buf, pos)
        if n == 0:
            return (0, 0, []), pos
        kv = buf[pos]
        pos += 1
        kt, vt = kv >> 4, kv & 0x0F
        pairs = []
        for _ in range(n):
            k, pos = _read_value(buf, pos, kt)
            v, pos = _read_value(buf, pos, vt)
            pairs.append((k, v))
        return (kt, vt, pairs), pos
    if t == _STRUCT:
        return _read_struct(buf, pos)
    raise ValueError(f"unknown thrift compact type {t}")


def _read_struct(buf: bytes, pos: int) -> tuple[list[list[Any]], int]:
    """A struct as a list of ``[field id, type, value]`` in the order read."""
    fields: list[list[Any]] = []
    last = 0
    while True:
        head = buf[pos]
        pos += 1
        if head == 0:
            return fields, pos
        delta, t = head >> 4, head & 0x0F
        if delta:
            fid = last + delta
        else:
            v, pos = _read_varint(buf, pos)
            fid = _unzigzag(v)
        if t in (_TRUE, _FALSE):
            value: Any = t == _TRUE
        else:
            value, pos = _read_value(buf, pos, t)
        fields.append([fid, t, value])
        last = fid


def _write_value(out: bytearray, t: int, v: Any) -> None:
    if t in (_TRUE, _FALSE, _BYTE):
        out.append(v)
    elif t in (_I16, _I32, _I64):
        _write_varint(out, _zigzag(v) & 0xFFFFFFFFFFFFFFFF)
    elif t == _DOUBLE:
        out += v
    elif t == _BINARY:
        _write_varint(out, len(v))
        out += v
    elif t in (_LIST, _SET):
        et, items = v
        if len(items) < 15:
            out.append((len(items) << 4) | et)
        else:
            out.append(0xF0 | et)
            _write_varint(out, len(items))
        for item in items:
            _write_value(out, et, item)
    elif t == _MAP:
        kt, vt, pairs = v
        _write_varint(out, len(pairs))
        if pairs:
            out.append((kt << 4) | vt)
            for k, val in pairs:
                _write_value(out, kt, k)
                _write_value(out, vt, val)
    elif t == _STRUCT:
        _write_struct(out, v)
    else:
        raise ValueError(f"unknown thrift compact type {t}")


def _write_struct(out: bytearray, fields: list[list[Any]]) -> None:
    last = 0
    for fid, t, v in fields:
        wt = (_TRUE if v else _FALSE) if t in (_TRUE, _FALSE) else t
        delta = fid - last
        if 0 < delta <= 15:
            out.append((delta << 4) | wt)
        else:
            out.append(wt)
            _write_varint(out, _zigzag(fid))
        if t not in (_TRUE, _FALSE):
            _write_value(out, t, v)
        last = fid
    out.append(0)


def _field(fields: list[list[Any]], fid: int) -> list[Any] | None:
    for f in fields:
        if f[0] == fid:
            return f
    return None


def _value(fields: list[list[Any]], fid: int) -> Any:
    """The value of the required field ``fid`` of a parsed Thrift struct."""
    f = _field(fields, fid)
    if f is None:
        raise ValueError(f"parquet footer: required field {fid} missing")
    return f[2]


def _shift(fields: list[list[Any]], fids: tuple[int, ...], by: int) -> None:
    for f in fields:
        if f[0] in fids and f[1] == _I64:
            f[2] += by


# --------------------------------------------------------------------------- parts
def part_layout(data: bytes | memoryview) -> tuple[int, list[list[Any]]]:
    """``(end of the column-chunk bytes, parsed footer)`` of a whole parquet file in memory."""
    n = len(data)
    if n < 12 or bytes(data[:4]) != MAGIC or bytes(data[n - 4 :]) != MAGIC:
        raise ValueError("not a parquet file (no PAR1 magic)")
    (flen,) = struct.unpack("<I", data[n - 8 : n - 4])
    start = n - 8 - flen
    footer, _ = _read_struct(bytes(data[start : n - 8]), 0)
    return start, footer


COMPRESSED_COLUMNS = frozenset({"event", "weight_raw"})
"""The ``pairs.parquet`` columns written with LZ4: those it shrinks at little cost (sorted
event numbers to about half; the raw weight, mostly constant, to almost nothing). The doubles
are stored plain: most use their whole mantissa, which LZ4 leaves at ≥ 97% of its size, and
where it does shrink them (E and pz, sums of two single-precision momenta, to about 3/4; ε,
values of a binned map, to about half) the encoding costs more time, to write and to read,
than the bytes it saves (the values read back are the same)."""

DICTIONARY_COLUMNS = ("charge", "channel")
"""The ``pairs.parquet`` columns with a dictionary (a few distinct values)."""


def writer_options(names: Any) -> dict[str, Any]:
    """The ``pyarrow.parquet.ParquetWriter`` options of ``pairs.parquet`` for the columns
    ``names``: LZ4 for :data:`COMPRESSED_COLUMNS`, none for the others; dictionaries only for
    :data:`DICTIONARY_COLUMNS`."""
    names = list(names)
    return {
        "compression": {n: "lz4" if n in COMPRESSED_COLUMNS else "none" for n in names},
        "use_dictionary": [n for n in DICTIONARY_COLUMNS if n in names],
    }


def part_bytes(columns: Mapping[str, Any], rows_per_group: int = 1_000_000) -> bytes:
    """One parquet file (bytes) of these numpy columns, with the settings of ``pairs.parquet``
    (:func:`writer_options`; row groups of ≤ 10⁶ rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c, pa.from_numpy_dtype(v.dtype)) for c, v in columns.items()])
    table = pa.Table.from_arrays([pa.array(v) for v in columns.values()], schema=schema)
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, schema, **writer_options(columns)) as w:
        w.write_table(table, row_group_size=rows_per_group)
    return sink.getvalue().to_pybytes()


# the parquet.thrift field ids replace_column reads or updates
_RG_TOTAL_BYTE_SIZE, _RG_TOTAL_COMPRESSED = 2, 6
_CMD_UNCOMPRESSED, _CMD_COMPRESSED = 6, 7
_SE_NAME, _SE_NUM_CHILDREN = 4, 5


def replace_column(
    path: str | os.PathLike[str], name: str, values: list[Any], *, dictionary: bool = False
) -> None:
    """Replace one column of a flat parquet file in place, without re-encoding the others.

    The new values (one numpy array per row group, of that row group's length and the
    column's type) are encoded as one single-column parquet file with the same row groups
    and the settings of ``pairs.parquet`` (:func:`writer_options`; a dictionary only with
    ``dictionary``); its
    column chunks are appended after the existing ones, and the footer's column chunks of
    ``name`` are pointed at them (row-group sizes updated). The old column's bytes stay in
    the file, unreferenced. Readers see the file with the new column and every other column
    byte for byte as before. Files with an offset (page) index are refused.

    Raises:
        ValueError: not a parquet file, no such column, nested schema, lengths that do not
            match the row groups, or an offset index.
    """
    import mmap

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = memoryview(mm)
        try:
            end, footer = part_layout(view)
        finally:
            view.release()
    schema = _value(footer, _FMD_SCHEMA)[1]
    if any((_field(se, _SE_NUM_CHILDREN) or [0, 0, 0])[2] for se in schema[1:]):
        raise ValueError(f"{path}: replace_column supports flat schemas only")
    names = [_value(se, _SE_NAME).decode() for se in schema[1:]]
    if name not in names:
        raise ValueError(f"{path}: no column {name!r}")
    j = names.index(name)
    rgs = _field(footer, _FMD_ROW_GROUPS)
    row_groups = rgs[2][1] if rgs is not None else []
    if len(values) != len(row_groups):
        raise ValueError(f"{path}: {len(values)} arrays for {len(row_groups)} row groups")
    for rg, v in zip(row_groups, values, strict=True):
        if len(v) != _value(rg, 3):  # RowGroup.num_rows
            raise ValueError(f"{path}: an array's length differs from its row group's rows")
        cols = _value(rg, _RG_COLUMNS)[1]
        if any(_field(cc, _CC_OFFSET_INDEX) for cc in cols):
            raise ValueError(f"{path}: files with an offset (page) index are not supported")
    # the new column as its own file, one row group per original row group
    sink = pa.BufferOutputStream()
    arrays = [pa.array(v) for v in values]
    col_schema = pa.schema([(name, arrays[0].type if arrays else pa.float64())])
    opts = writer_options([name])
    opts["use_dictionary"] = [name] if dictionary else False
    with pq.ParquetWriter(sink, col_schema, **opts) as w:
        for a in arrays:
            w.write_table(pa.Table.from_arrays([a], schema=col_schema), row_group_size=len(a) + 1)
    data = sink.getvalue().to_pybytes()
    new_end, new_footer = part_layout(data)
    new_rgs = _value(new_footer, _FMD_ROW_GROUPS)[1]
    if len(new_rgs) != len(row_groups):
        raise ValueError(f"{path}: the new column did not keep the row groups")
    shift = end - len(MAGIC)
    for rg, nrg in zip(row_groups, new_rgs, strict=True):
        cols = _value(rg, _RG_COLUMNS)[1]
        ncc = _value(nrg, _RG_COLUMNS)[1][0]
        _shift(ncc, (_CC_FILE_OFFSET, _CC_COLUMN_INDEX), shift)
        nmeta = _value(ncc, _CC_META)
        _shift(nmeta, _CMD_OFFSETS, shift)
        ometa = _value(cols[j], _CC_META)
        for rg_fid, md_fid in (
            (_RG_TOTAL_BYTE_SIZE, _CMD_UNCOMPRESSED),
            (_RG_TOTAL_COMPRESSED, _CMD_COMPRESSED),
        ):
            f = _field(rg, rg_fid)
            if f is not None:
                f[2] += _value(nmeta, md_fid) - _value(ometa, md_fid)
        cols[j] = ncc
    out = bytearray()
    _write_struct(out, footer)
    with open(path, "r+b") as rw:
        rw.seek(end)
        rw.truncate()
        rw.write(memoryview(data)[len(MAGIC) : new_end])
        rw.write(out)
        rw.write(struct.pack("<I", len(out)))
        rw.write(MAGIC)


def read_schema(path: str | os.PathLike[str]) -> Any:
    """The Arrow schema of a Parquet file or of a dataset directory of parts (the first
    part's, as ``pyarrow.dataset`` reads it; hidden and ``_`` names skipped).

    Raises:
        FileNotFoundError: no such file or directory; ValueError: a directory without parts.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_dir():
        return pq.read_schema(path)
    import pyarrow.dataset as ds

    dataset = ds.dataset(path, format="parquet")
    if not dataset.files:
        raise ValueError("a dataset directory without parquet parts")
    return dataset.schema


__all__ = [
    "COMPRESSED_COLUMNS",
    "DICTIONARY_COLUMNS",
    "part_bytes",
    "part_layout",
    "read_schema",
    "replace_column",
    "writer_options",
]
