"""Third-party modules imported without the parts gammastar never uses.

:func:`import_vector` imports ``vector`` without its SymPy backend. vector imports SymPy
whenever SymPy is installed (torch installs it), for symbolic vectors that gammastar never
makes: most of a second of the start-up of every process that imports vector. Two kinds of
process do: those that select (the chunks' four-vectors) and those that run a numba kernel
(numba loads its registered extensions at its first compilation or dispatch in a process, and
vector's extension imports vector); the modules with kernels call it before their first.
"""

from __future__ import annotations

import sys
from types import ModuleType

__all__ = ["import_vector"]


def import_vector() -> ModuleType:
    """The ``vector`` module, imported (if it is not yet) with its ``import sympy`` answered as
    if SymPy were absent: vector then leaves its ``VectorSympy`` classes ``None`` in this
    process. SymPy itself stays importable and loads as usual for anything that imports it
    later; where it is already imported, vector takes it as it would."""
    if "vector" not in sys.modules and "sympy" not in sys.modules:
        sys.modules["sympy"] = None  # type: ignore[assignment]  # import sympy → ImportError
        try:
            import vector
        finally:
            if sys.modules.get("sympy", False) is None:
                del sys.modules["sympy"]
    import vector

    return vector
