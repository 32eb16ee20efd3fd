"""The flow's pass rule, read off ``validation.json``: one home for the report, the command
line and the run's summary.

A mass window passes when the model-vs-data KL is no larger than the upper edge of the
data-vs-data 95 % band (the paper's Fig. 4 criterion).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["kl_verdicts", "n_inside"]


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def _upper(bands: Any, i: int) -> float | None:
    band = bands[i] if isinstance(bands, list | tuple) and i < len(bands) else None
    if not isinstance(band, list | tuple) or len(band) < 2:
        return None
    return _number(band[1])


def kl_verdicts(doc: Mapping[str, Any]) -> list[str | None]:
    """Per mass window of ``validation.json``: ``"68"`` (the model-vs-data KL inside the
    data-vs-data 68 % band's upper edge), ``"95"`` (inside the 95 % band's), ``"fail"`` (above
    it) or ``None`` (not judged: too few data for a band, or no KL).

    Example:
        >>> kl_verdicts({"mass": [0.3, 0.5, 0.7], "kl_model": [0.01, 0.03, 0.2],
        ...              "kl_data_68": [[0, 0.02]] * 3, "kl_data_95": [[0, 0.05], [0, 0.05], None]})
        ['68', '95', None]
    """
    mass = doc.get("mass") or []
    kl = doc.get("kl_model") or []
    out: list[str | None] = []
    for i in range(len(mass)):
        k = _number(kl[i]) if i < len(kl) else None
        hi68, hi95 = _upper(doc.get("kl_data_68"), i), _upper(doc.get("kl_data_95"), i)
        if k is None or hi95 is None:
            out.append(None)
        elif k <= hi95:
            out.append("68" if hi68 is not None and k <= hi68 else "95")
        else:
            out.append("fail")
    return out


def n_inside(doc: Mapping[str, Any]) -> int:
    """The number of mass windows whose KL is inside the data-vs-data 95 % band."""
    return sum(v in ("68", "95") for v in kl_verdicts(doc))
