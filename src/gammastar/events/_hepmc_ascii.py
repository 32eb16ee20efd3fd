"""Compiled (numba) text writer for the HepMC3 event records of :mod:`gammastar.events.stage`.

An event record is a fixed *program* of segments: literal text, a float column, an integer
column, or a string chosen from a table by an integer column. :func:`render` runs the
program for every row of the value arrays into one byte buffer, with no per-event Python.

Floats are written with 17 significant digits, correctly rounded, which always reads back
as the same double (17 digits suffice for IEEE binary64: D. W. Matula, "In-and-out
conversions", CACM 11 (1968) 47; the decimal spacing at 17 digits is below half an ulp).
The digits come from x · 10^(16−k) evaluated in double-double arithmetic (Dekker's exact
product with Veltkamp splitting, T. J. Dekker, Numer. Math. 18 (1971) 224; the powers of ten
as exact double-double pairs), accurate to ~10⁻³⁰ relative, far below the half-unit that
decides the rounding (tiny and subnormal values are first scaled by 2^600, exactly).
Values above 1e280 and non-finite ones are reported back so the caller can format the chunk
another way. Trailing zeros are dropped
(``4e+02``); the text parses with C's ``strtod`` (HepMC3's ``ReaderAscii``).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from numba import njit

from gammastar.core.imports import import_vector

import_vector()  # before numba's first dispatch loads vector's extension (core.imports)

__all__ = ["KIND_FLOAT", "KIND_INT", "KIND_LITERAL", "KIND_STRING", "format_floats", "render"]

KIND_LITERAL, KIND_FLOAT, KIND_INT, KIND_STRING = 0, 1, 2, 3
_KMIN, _KMAX = -300, 345
_JBIG = 300  # above: the table holds 10^j · 2^-600 and x is scaled by 2^600 (exact)
_LIMIT = 1e280


def _pow10_table() -> tuple[np.ndarray, np.ndarray]:
    """10^j (10^j · 2^-600 for j > 300) for j in [_KMIN, _KMAX] as double-double (hi, lo),
    from exact rationals."""
    hi = np.empty(_KMAX - _KMIN + 1)
    lo = np.empty_like(hi)
    for i, j in enumerate(range(_KMIN, _KMAX + 1)):
        exact = Fraction(10) ** j
        if j > _JBIG:
            exact /= Fraction(2) ** 600
        h = float(exact)
        hi[i] = h
        lo[i] = float(exact - Fraction(h))
    return hi, lo


_P10_HI, _P10_LO = _pow10_table()


def _jit(fn):
    try:
        return njit(cache=True, error_model="numpy")(fn)
    except RuntimeError:  # no writable cache location
        return njit(cache=False, error_model="numpy")(fn)


@_jit
def _split(a):
    c = 134217729.0 * a  # 2^27 + 1 (Veltkamp)
    hi = c - (c - a)
    return hi, a - hi


@_jit
def _scaled(x, j, p10_hi, p10_lo):
    """x · 10^j as (integer part as float, remainder), double-double (Dekker)."""
    ph = p10_hi[j - _KMIN]
    pl = p10_lo[j - _KMIN]
    if j > _JBIG:
        x = x * 4.149515568880993e180  # 2^600, exact for |x| < 1e-120 (no overflow)
    p = x * ph
    ah, al = _split(x)
    bh, bl = _split(ph)
    err = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, err + x * pl


@_jit
def _digits(x, p10_hi, p10_lo):
    """(N, k): |x| ≈ N · 10^(k−16), 10^16 ≤ N < 10^17, N correctly rounded."""
    k = int(np.floor(np.log10(x)))
    for _ in range(4):
        p, e = _scaled(x, 16 - k, p10_hi, p10_lo)
        # p ≥ 2^53 is an integer-valued double; the remainder decides the rounding
        n = np.int64(p) + np.int64(np.floor(e + 0.5))
        if n >= 100_000_000_000_000_000:
            k += 1
        elif n < 10_000_000_000_000_000:
            k -= 1
        else:
            return n, k
    return np.int64(-1), k


@_jit
def _write_float(x, buf, pos, p10_hi, p10_lo):
    """Write x at buf[pos:]; returns the new position, or −1 when x is out of range."""
    if x == 0.0:
        buf[pos] = 48
        return pos + 1
    if not np.isfinite(x):
        return -1
    if x < 0:
        buf[pos] = 45
        pos += 1
        x = -x
    if x > _LIMIT:
        return -1
    n, k = _digits(x, p10_hi, p10_lo)
    if n < 0:
        return -1
    # d.dddddddddddddddd: digit 0 at pos, the point at pos + 1, digits 1-16 after it
    hi = np.uint32(n // 100_000_000)  # digits 0-8 (< 10^9)
    lo = np.uint32(n - np.int64(hi) * 100_000_000)  # digits 9-16
    for i in range(16, 8, -1):
        buf[pos + 1 + i] = 48 + lo % np.uint32(10)
        lo //= np.uint32(10)
    for i in range(8, 0, -1):
        buf[pos + 1 + i] = 48 + hi % np.uint32(10)
        hi //= np.uint32(10)
    buf[pos] = 48 + hi
    buf[pos + 1] = 46
    last = 16
    while last > 0 and buf[pos + 1 + last] == 48:
        last -= 1
    pos = pos + 2 + last if last > 0 else pos + 1
    buf[pos] = 101
    buf[pos + 1] = 45 if k < 0 else 43
    pos += 2
    ak = -k if k < 0 else k
    if ak >= 100:
        buf[pos] = 48 + ak // 100
        pos += 1
    buf[pos] = 48 + (ak // 10) % 10
    buf[pos + 1] = 48 + ak % 10
    return pos + 2


@_jit
def _write_int(v, buf, pos):
    if v < 0:
        buf[pos] = 45
        pos += 1
        v = -v
    m = 1
    t = v // 10
    while t > 0:
        m += 1
        t //= 10
    for i in range(m - 1, -1, -1):
        buf[pos + i] = 48 + v % 10
        v //= 10
    return pos + m


@_jit
def _render(kinds, args, lit, lit_off, strs, str_off, fvals, ivals, buf, p10_hi, p10_lo):
    pos = 0
    for r in range(fvals.shape[0]):
        for s in range(kinds.size):
            kind = kinds[s]
            a = args[s]
            if kind == 0:
                for b in range(lit_off[a], lit_off[a + 1]):
                    buf[pos] = lit[b]
                    pos += 1
            elif kind == 1:
                pos = _write_float(fvals[r, a], buf, pos, p10_hi, p10_lo)
                if pos < 0:
                    return -1 - r
            elif kind == 2:
                pos = _write_int(ivals[r, a], buf, pos)
            else:
                j = ivals[r, a]
                for b in range(str_off[j], str_off[j + 1]):
                    buf[pos] = strs[b]
                    pos += 1
    return pos


def _pack(texts: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    off = np.zeros(len(texts) + 1, dtype=np.int64)
    off[1:] = np.cumsum([len(t) for t in texts])
    data = np.frombuffer(b"".join(texts) or b"\0", dtype=np.uint8).copy()
    return data, off


def render(
    program: list[tuple[int, int | bytes]],
    fvals: np.ndarray,
    ivals: np.ndarray,
    strings: list[bytes],
) -> bytes | None:
    """Run ``program`` for every row of ``fvals`` (float64, rows × float columns) and
    ``ivals`` (int64, rows × int columns).

    Arguments:
        program: segments ``(KIND_LITERAL, b"text")``, ``(KIND_FLOAT, column)``,
            ``(KIND_INT, column)``, ``(KIND_STRING, int column indexing strings)``.
        fvals, ivals: the values.
        strings: the string table.

    Returns:
        The text, or ``None`` when a float is non-finite or above 1e280 in magnitude.

    Example:
        >>> t = render([(KIND_FLOAT, 0), (KIND_LITERAL, b" "), (KIND_INT, 0), (KIND_LITERAL, b"\\n")],
        ...            np.array([[400.0], [0.1]]), np.array([[7], [-3]]), [])
        >>> t.decode()
        '4e+02 7\\n1.0000000000000001e-01 -3\\n'
    """
    lits = [p[1] for p in program if p[0] == KIND_LITERAL]
    lit, lit_off = _pack(lits)  # type: ignore[arg-type]
    kinds = np.array([p[0] for p in program], dtype=np.int64)
    args = np.empty(len(program), dtype=np.int64)
    li = 0
    for s, (kind, arg) in enumerate(program):
        if kind == KIND_LITERAL:
            args[s] = li
            li += 1
        else:
            args[s] = int(arg)  # type: ignore[arg-type]
    sdata, soff = _pack(strings)
    n = fvals.shape[0]
    per_row = (
        int(lit_off[-1])
        + 25 * int(np.sum(kinds == KIND_FLOAT))
        + 21 * int(np.sum(kinds == KIND_INT))
        + (max((len(s) for s in strings), default=0)) * int(np.sum(kinds == KIND_STRING))
    )
    buf = np.empty(n * per_row + 1, dtype=np.uint8)
    end = _render(
        kinds,
        args,
        lit,
        lit_off,
        sdata,
        soff,
        np.ascontiguousarray(fvals, dtype=np.float64),
        np.ascontiguousarray(ivals, dtype=np.int64),
        buf,
        _P10_HI,
        _P10_LO,
    )
    if end < 0:
        return None
    return buf[:end].tobytes()


def format_floats(x: np.ndarray) -> list[str] | None:
    """The strings :func:`render` writes for ``x`` (for tests and checks).

    Example:
        >>> format_floats(np.array([1.0, -2.5e-7, 1 / 3]))  # the doubles' exact 17 digits
        ['1e+00', '-2.4999999999999999e-07', '3.3333333333333331e-01']
    """
    out = render([(KIND_FLOAT, 0), (KIND_LITERAL, b"\n")], np.asarray(x, float)[:, None],
                 np.zeros((len(x), 0), dtype=np.int64), [])  # fmt: skip
    return None if out is None else out.decode().splitlines()


def warm_up() -> None:
    """Compile (or load from numba's cache) the writer's kernel (:mod:`gammastar.kernels`)."""
    render([(KIND_FLOAT, 0), (KIND_LITERAL, b" "), (KIND_INT, 0), (KIND_STRING, 1)],
           np.ones((1, 1)), np.zeros((1, 2), dtype=np.int64), [b"x"])  # fmt: skip
