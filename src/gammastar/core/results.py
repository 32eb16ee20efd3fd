"""The one convention of the stage functions' results: a frozen dataclass naming the stage's
main artifact (``path``) and, for a JSON artifact, the document as written (``document``).
Stages add typed fields of their own (as cabinetry's ``FitResults``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["StageResult"]


@dataclass(frozen=True)
class StageResult:
    """What a stage wrote.

    Arguments:
        path: the stage's main artifact in the run directory.
        document: the JSON document written there (``None`` for a non-JSON artifact).

    A result is path-like (``os.fspath(result)`` is its ``path``), so it goes wherever the
    artifact's path would.

    Example:
        >>> r = StageResult(Path("run/validation.json"), {"mass": [0.5]})
        >>> r.path.name, r.document["mass"], os.fspath(r)
        ('validation.json', [0.5], 'run/validation.json')
    """

    path: Path
    document: Mapping[str, Any] | None = None

    def __fspath__(self) -> str:
        return os.fspath(self.path)
