"""Byte-level concatenation of parquet parts (gammastar.core.parquet): the rows of the parts in
order, readable with row-group statistics intact (the parallel
selection's ``pairs.parquet``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gammastar.core.parquet import ParquetConcat, part_bytes, replace_column


def _cols(rng, n):
    return {
        "event": rng.integers(0, 1 << 40, n),
        "m": rng.random(n),
        "charge": rng.choice(np.array([0, 2, -2], dtype=np.int8), n),
        "channel": rng.integers(-1, 10, n).astype(np.int8),
        "eff": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
    }


def test_concat_gives_the_rows_in_order(tmp_path):
    rng = np.random.default_rng(1)
    parts = [_cols(rng, n) for n in (1000, 25_000, 7, 3000)]
    out = ParquetConcat(tmp_path / "all.parquet")
    for i, p in enumerate(parts):
        data = part_bytes(p, rows_per_group=10_000)
        if i % 2:  # from a file, or from bytes
            path = tmp_path / f"p{i}.parquet"
            path.write_bytes(data)
            assert out.append(path) == len(p["m"])
        else:
            assert out.append(data) == len(p["m"])
    out.close()
    got = pd.read_parquet(tmp_path / "all.parquet")
    exp = pd.DataFrame({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    assert got.equals(exp)
    md = pq.ParquetFile(tmp_path / "all.parquet").metadata
    assert md.num_rows == len(exp)
    assert [md.row_group(i).num_rows for i in range(md.num_row_groups)] == [
        1000,
        10_000,
        10_000,
        5000,
        7,
        3000,
    ]
    # statistics travel with the row groups: predicate pushdown still selects the right rows
    t = pq.read_table(tmp_path / "all.parquet", filters=[("m", "<", 0.01)])
    assert t.num_rows == int((exp["m"] < 0.01).sum())


def test_concat_with_dictionary_pages_and_column_index(tmp_path):
    """Offsets of dictionary pages are shifted too; a column index (min/max per page, no
    offsets inside) stays usable."""
    rng = np.random.default_rng(2)
    tables = [pa.table(_cols(rng, n)) for n in (500, 800)]
    out = ParquetConcat(tmp_path / "all.parquet")
    for i, t in enumerate(tables):
        path = tmp_path / f"p{i}.parquet"
        pq.write_table(t, path, use_dictionary=True, data_page_size=512)
        out.append(path)
    out.close()
    got = pq.read_table(tmp_path / "all.parquet").to_pandas()
    assert got.equals(pa.concat_tables(tables).to_pandas())  # (NaN-aware comparison)
    f = pq.ParquetFile(tmp_path / "all.parquet")
    assert f.metadata.row_group(1).column(1).has_dictionary_page
    assert f.read_row_group(1).to_pandas().equals(tables[1].to_pandas())


def test_concat_refuses_parts_with_an_offset_index(tmp_path):
    """An OffsetIndex holds absolute page offsets in its own bytes, which moving the part
    would invalidate: such a part is refused before anything of it is written."""
    rng = np.random.default_rng(4)
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table(_cols(rng, 100)), path, write_page_index=True)
    out = ParquetConcat(tmp_path / "all.parquet")
    out.append(part_bytes(_cols(rng, 10)))
    size = out._pos
    with pytest.raises(ValueError, match=r"offset \(page\) index"):
        out.append(path)
    assert out._pos == size
    assert out.rows == 10
    out.close()
    assert pq.read_table(tmp_path / "all.parquet").num_rows == 10


def test_concat_refuses_other_schema_and_cleans_up(tmp_path):
    rng = np.random.default_rng(3)
    out = ParquetConcat(tmp_path / "all.parquet")
    out.append(part_bytes(_cols(rng, 10)))
    other = _cols(rng, 10)
    other["m"] = other["m"].astype(np.float32)
    with pytest.raises(ValueError, match="different schemas"):
        out.append(part_bytes(other))
    out.abort()
    assert not (tmp_path / "all.parquet").exists()
    bad = ParquetConcat(tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="not a parquet file"):
        bad.append(b"PAR1 nothing")
    bad.abort()


@pytest.mark.parametrize("kernel", ["copies", "refuses midway", "absent"])
def test_concat_from_files_with_and_without_kernel_copy(tmp_path, monkeypatch, kernel):
    """File parts are copied by ``os.copy_file_range`` where it exists; if the kernel
    refuses after a partial copy, or the function is absent (not Linux), the rest is written
    from the mapped part: the same rows, and a later bytes part lands after the copied ones."""
    import os

    real = getattr(os, "copy_file_range", None)
    if real is None and kernel != "absent":
        pytest.skip("os.copy_file_range needs Linux")
    calls = []

    def partial(src, dst, count, offset_src, offset_dst):  # copies 1000 bytes, then refuses
        calls.append(count)
        if len(calls) > 1:
            raise OSError(18, "Invalid cross-device link")
        return real(src, dst, min(count, 1000), offset_src, offset_dst)

    if kernel == "refuses midway":
        monkeypatch.setattr(os, "copy_file_range", partial)
    elif kernel == "absent":
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    rng = np.random.default_rng(5)
    parts = [_cols(rng, n) for n in (2000, 3000, 50)]
    out = ParquetConcat(tmp_path / "all.parquet")
    for i, p in enumerate(parts[:2]):
        path = tmp_path / f"p{i}.parquet"
        path.write_bytes(part_bytes(p))
        out.append(path)
    out.append(part_bytes(parts[2]))
    out.close()
    got = pd.read_parquet(tmp_path / "all.parquet")
    assert got.equals(pd.DataFrame({k: np.concatenate([p[k] for p in parts]) for k in parts[0]}))
    if kernel == "refuses midway":
        assert len(calls) >= 2


def test_kernel_copy_errors_other_than_unsupported_are_raised(tmp_path, monkeypatch):
    """A full disk during the kernel copy is an error, not a silent fallback."""
    import errno
    import os

    if getattr(os, "copy_file_range", None) is None:
        pytest.skip("os.copy_file_range needs Linux")

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", full)
    path = tmp_path / "p.parquet"
    path.write_bytes(part_bytes(_cols(np.random.default_rng(6), 100)))
    out = ParquetConcat(tmp_path / "all.parquet")
    with pytest.raises(OSError, match="No space left"):
        out.append(path)
    out.abort()


def test_replace_column_keeps_the_other_columns(tmp_path):
    """A concatenated file (row groups of 1000, 1000, 500, 7 rows): the ``eff`` column is
    replaced; every other column reads back equal, with its column-chunk bytes untouched
    (same offsets and sizes in the footer); the new column has its own statistics; a second
    replacement works on the result; wrong lengths and unknown names are refused."""
    rng = np.random.default_rng(3)
    path = tmp_path / "all.parquet"
    out = ParquetConcat(path)
    for n in (2000, 500, 7):
        out.append(part_bytes(_cols(rng, n), rows_per_group=1000))
    out.close()
    before = pd.read_parquet(path)
    md0 = pq.ParquetFile(path).metadata
    sizes = [md0.row_group(i).num_rows for i in range(md0.num_row_groups)]
    assert sizes == [1000, 1000, 500, 7]
    new = [rng.random(n) - 2.0 for n in sizes]
    replace_column(path, "eff", new)
    after = pd.read_parquet(path)
    assert after.drop(columns="eff").equals(before.drop(columns="eff"))
    assert np.array_equal(after["eff"].to_numpy(), np.concatenate(new))
    md1 = pq.ParquetFile(path).metadata
    for i in range(md1.num_row_groups):
        for j in range(md1.num_columns - 1):  # eff is the last column
            a, b = md0.row_group(i).column(j), md1.row_group(i).column(j)
            assert (a.data_page_offset, a.total_compressed_size) == (
                b.data_page_offset,
                b.total_compressed_size,
            )
        st = md1.row_group(i).column(md1.num_columns - 1).statistics
        assert st.max < -1.0  # the new values' statistics (all in [−2, −1))
    replace_column(path, "eff", [np.zeros(n) for n in sizes])
    assert pd.read_parquet(path)["eff"].sum() == 0.0
    with pytest.raises(ValueError, match="row groups"):
        replace_column(path, "eff", [np.zeros(3)])
    with pytest.raises(ValueError, match="no column"):
        replace_column(path, "nope", [np.zeros(n) for n in sizes])
