"""ROOT's ZLIB-compressed baskets inflated with ISA-L (python-isal) where it is installed.

Deflate decoding is exact: ISA-L returns the bytes the standard library's ``zlib`` returns, in
less time (Intel's Intelligent Storage Acceleration Library, with kernels for x86-64 and
AArch64). uproot offers ISA-L as a choice ("isal", opt-in); its reader takes that choice from
the ZLIB decompressor of :mod:`uproot.compression` (a separate object from the ``uproot.ZLIB``
class, whose ``library`` the writer uses), which :func:`isal_inflate` sets for the duration of
a read and restores afterwards. Without python-isal, or with an uproot that has no
such decompressor, or where the user chose another library for it, the read is left as it is.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["isal_inflate", "zlib_decompressor"]


def zlib_decompressor() -> Any:
    """uproot's decompressor of ZLIB baskets (the object whose ``library`` the reader uses), or
    ``None`` where this uproot has none."""
    import uproot.compression

    return getattr(uproot.compression, "_decompress_ZLIB", None)


@functools.cache
def _have_isal() -> bool:
    return importlib.util.find_spec("isal") is not None


class _State:
    """The blocks of :func:`isal_inflate` open in this process (of any thread), and the
    decompressor's own ``library`` before the first (``None``: it had none, its class's
    default applied)."""

    lock = threading.Lock()
    open_blocks = 0
    previous: str | None = None


@contextlib.contextmanager
def isal_inflate() -> Iterator[None]:
    """Within the block, uproot inflates ZLIB baskets with python-isal where it is installed
    and the decompressor uses uproot's default, the standard library's ``zlib``; the previous
    choice is restored when the last open block (of any thread) ends."""
    dec = zlib_decompressor()
    with _State.lock:
        active = _State.open_blocks > 0  # a block is open: this one joins it
        if (
            not active
            and dec is not None
            and getattr(dec, "library", None) == "zlib"
            and _have_isal()
        ):
            _State.previous = vars(dec).get("library")
            dec.library = "isal"
            active = True
        if active:
            _State.open_blocks += 1
    try:
        yield
    finally:
        if active:
            with _State.lock:
                _State.open_blocks -= 1
                if _State.open_blocks == 0:
                    if _State.previous is None:
                        del dec.library  # its class's default again
                    else:
                        dec.library = _State.previous
