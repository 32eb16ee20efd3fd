"""ZLIB baskets inflated with ISA-L (gammastar.core.inflate): the same arrays, the choice
scoped to gammastar's reads, a user's own choice left alone."""

from __future__ import annotations

import threading

import awkward as ak
import numpy as np
import uproot
from _select_data import write_mock

from gammastar.core import inflate
from gammastar.core.inflate import isal_inflate, zlib_decompressor
from gammastar.selection.executors import processor as gp
from gammastar.selection.executors.processor import ChunkReader


def _counting_isal(monkeypatch):
    """Count the calls of python-isal's inflate (a dependency: it must be installed)."""
    from isal import isal_zlib

    calls = []
    decompress = isal_zlib.decompress
    monkeypatch.setattr(
        isal_zlib, "decompress", lambda *a, **k: calls.append(1) or decompress(*a, **k)
    )
    return calls


def test_isal_within_the_block_and_the_default_after():
    dec = zlib_decompressor()
    assert dec is not None, "uproot's ZLIB decompressor moved: isal_inflate has no effect"
    assert dec.library == "zlib"
    assert "library" not in vars(dec)
    with isal_inflate():
        assert dec.library == "isal"
        with isal_inflate():  # nested: the outer block's
            assert dec.library == "isal"
        assert dec.library == "isal"
    assert dec.library == "zlib"
    assert "library" not in vars(dec)  # nothing left on it


def test_a_chosen_library_is_left_alone(monkeypatch):
    dec = zlib_decompressor()
    monkeypatch.setattr(dec, "library", "deflate", raising=False)
    with isal_inflate():
        assert dec.library == "deflate"
    assert dec.library == "deflate"


def test_restored_when_the_last_block_of_any_thread_ends():
    """Two threads' blocks overlapping: ISA-L until the later one ends, then uproot's
    default (the first to end does not take it from the other)."""
    dec = zlib_decompressor()
    entered, release = threading.Event(), threading.Event()
    seen = []

    def other():
        with isal_inflate():
            entered.set()
            release.wait(10)
            seen.append(dec.library)

    t = threading.Thread(target=other)
    with isal_inflate():
        t.start()
        assert entered.wait(10)
    assert dec.library == "isal"  # the other thread's block is still open
    release.set()
    t.join(10)
    assert seen == ["isal"]
    assert dec.library == "zlib"
    assert inflate._State.open_blocks == 0


def test_the_chunk_reader_inflates_with_isal_and_reads_the_same_arrays(tmp_path, monkeypatch):
    """ChunkReader.read_item (every executor's read) inflates the ZLIB baskets with ISA-L:
    the arrays are those uproot reads with the standard library (the same bytes, so the
    same values: compared exactly; the mock's NaN momenta as NaN)."""
    path = tmp_path / "m.root"
    write_mock(path, 20)
    branches = {"event": "event", "px": "muon_px", "py": "muon_py", "pz": "muon_pz",
                "E": "muon_E", "charge": "muon_charge"}  # fmt: skip
    with uproot.open(path) as f:
        n = int(f["events"].num_entries)
        ref = {c: f["events"][b].array() for c, b in branches.items()}  # the standard zlib
    calls = _counting_isal(monkeypatch)
    reader = ChunkReader("jagged_cartesian", branches, 0.105)
    (item,) = gp.chunk_items({"d": {"files": {str(path): "events"}}}, {str(path): n}, n)
    cols = reader.read_item(item)
    assert len(calls) >= len(branches)  # at least one basket of each branch
    assert zlib_decompressor().library == "zlib"  # restored after the read
    # the same values (NaN where the mock has NaN) in the same lists: both are the stored
    # numbers decoded from the same bytes (copies, not computed), so compared exactly
    for c in branches:
        assert ak.to_list(ak.num(cols[c], axis=-1)) == ak.to_list(ak.num(ref[c], axis=-1))
        np.testing.assert_array_equal(
            ak.to_numpy(ak.flatten(cols[c], axis=None)), ak.to_numpy(ak.flatten(ref[c], axis=None))
        )
    assert np.asarray(ak.flatten(cols["px"])).dtype == np.float32
