"""Byte-level edits of parquet files (gammastar.core.parquet): one column replaced in place, the
others byte for byte as written (the workers' second pass over ``pairs.parquet``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gammastar.core.parquet import part_bytes, replace_column


def _cols(rng, n):
    return {
        "event": rng.integers(0, 1 << 40, n),
        "m": rng.random(n),
        "charge": rng.choice(np.array([0, 2, -2], dtype=np.int8), n),
        "channel": rng.integers(-1, 10, n).astype(np.int8),
        "eff": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
    }


def test_replace_column_keeps_the_other_columns(tmp_path):
    """A file of row groups of 1000, 1000, 500, 7 rows (pairs.parquet's settings): the ``eff``
    column is replaced; every other column reads back equal, with its column-chunk bytes untouched
    (same offsets and sizes in the footer); the new column has its own statistics; a second
    replacement works on the result; wrong lengths and unknown names are refused."""
    rng = np.random.default_rng(3)
    path = tmp_path / "all.parquet"
    parts = [pq.read_table(pa.BufferReader(part_bytes(_cols(rng, n)))) for n in (2000, 500, 7)]
    with pq.ParquetWriter(path, parts[0].schema, compression="lz4",
                          use_dictionary=["charge", "channel"]) as w:  # fmt: skip
        for t in parts:
            w.write_table(t, row_group_size=1000)
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
