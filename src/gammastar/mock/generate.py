"""Generate an NA60-like mock ntuple: cocktail + combinatorial, detector, ROOT output.

The file layout is the "Mock ntuple" contract of DEVELOPERS.md (TTree ``events``, TTree
``truth``, TObjString ``meta``). Generation is vectorised and chunked: ``chunk_size`` sources
are generated (:class:`~gammastar.mock.generator.MockGenerator`), passed through the detector
and appended to the trees (:mod:`gammastar.mock.ntuple`), so memory stays bounded whatever the
number of events. Offers :func:`generate_file` (``gammastar generate``), its
:class:`GenerateResult` and :func:`read_meta`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gammastar.config import AnalysisConfig
from gammastar.config.mock import MockConfig
from gammastar.core.artifacts import atomic_path
from gammastar.core.results import StageResult
from gammastar.errors import GammastarError
from gammastar.mock.cocktail import MesonSource
from gammastar.mock.generator import _COMBINATORIAL, MockGenerator
from gammastar.mock.ntuple import NtupleWriter


@dataclass(frozen=True, kw_only=True)
class GenerateResult(StageResult):
    """What :func:`generate_file` wrote: the mock ntuple (``path``; not JSON, so no
    ``document``) and its counts."""

    n_events_written: int
    """Entries of the ``events`` tree (recorded events with two muons)."""
    n_generated: dict[str, int]
    """Generated sources per channel (``Channel`` names, e.g. ``"ETA_DALITZ"``)."""
    n_pot: float
    """Equivalent protons on target of the generated cocktail."""
    meta: dict[str, Any]
    n_truth: int = 0
    """Entries of the ``truth`` tree."""
    seconds: float = 0.0
    """Wall time of the generation and writing."""


def _as_analysis_config(config: AnalysisConfig | MockConfig) -> AnalysisConfig:
    if isinstance(config, MockConfig):
        return AnalysisConfig(mock=config)
    if not isinstance(config, AnalysisConfig):
        raise TypeError(f"expected AnalysisConfig or MockConfig, got {type(config).__name__}")
    return config


def _event_count(cfg: MockConfig, events: int | None, chunk_size: int | None) -> int:
    """The number of sources to generate (``events``, else ``mock.events``), checked with
    ``chunk_size``.

    Raises:
        GammastarError: a count or chunk size that is not a positive integer.
    """
    n_events = cfg.events if events is None else events
    if isinstance(n_events, bool) or not isinstance(n_events, int | np.integer) or n_events <= 0:
        raise GammastarError(f"--events must be a positive integer, got {n_events!r}")
    if chunk_size is not None and chunk_size <= 0:
        raise GammastarError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return int(n_events)


def generate_file(
    config: AnalysisConfig | MockConfig,
    path: str | Path,
    *,
    events: int | None = None,
    seed: int | None = None,
    force: bool = False,
    chunk_size: int | None = None,
    compression: Any = "default",
    progress: bool | None = None,
    mesons: MesonSource | None = None,
) -> GenerateResult:
    """Generate mock data and write the ROOT ntuple of DEVELOPERS.md ("Mock ntuple").

    The generator's chunks (:meth:`MockGenerator.chunks`) go to the trees one by one
    (:class:`NtupleWriter`), then the histograms and ``meta``.

    Arguments:
        config: the analysis config (or just its ``mock`` section).
        path: output ROOT file; written to a temporary file and renamed at the end.
        events: generated sources (cocktail + combinatorial); default ``mock.events``.
        seed: random seed; default the config's ``seed``.
        force: overwrite an existing file.
        chunk_size: sources per chunk; default ``mock.chunk_size``.
        compression: uproot compression (``"default"``: uproot's default, ZLIB level 1).
        progress: a progress bar while PYTHIA runs (``mock.backend: pythia``; default: when
            stderr is a terminal).
        mesons: a meson source already built (:class:`MockGenerator`).

    Returns:
        A :class:`GenerateResult`.

    Raises:
        GammastarError: bad event count or seed, output exists without ``force``, output
            not writable, missing efficiency map, unavailable backend. Nothing is left at
            ``path`` on error.
    """
    import uproot

    t0 = time.perf_counter()
    config = _as_analysis_config(config)
    cfg = config.mock or MockConfig()
    n_events = _event_count(cfg, events, chunk_size)
    path = Path(path)
    if path.is_dir():
        raise GammastarError(f"{path}: is a directory; give the output file name")
    if progress is None:
        progress = sys.stderr.isatty()
    gen = MockGenerator(config, seed, progress=progress, mesons=mesons)
    options = {} if compression == "default" else {"compression": compression}
    with atomic_path(path, force) as tmp:
        try:
            f = uproot.recreate(tmp, **options)
        except OSError as err:
            raise GammastarError(f"{path}: cannot write ({err.strerror or err})") from None
        with f:
            out = NtupleWriter(f, gen)
            for chunk in gen.chunks(n_events, chunk_size):
                out.add(chunk)
                del chunk  # one chunk in memory at a time
            meta = out.finish(n_events, int(chunk_size or cfg.chunk_size))
    n_cocktail = sum(v for k, v in out.n_generated.items() if k not in _COMBINATORIAL)
    return GenerateResult(
        path=path,
        n_events_written=out.n_written,
        n_generated={k.name: int(v) for k, v in out.n_generated.items()},
        n_pot=gen.n_pot(n_cocktail),
        meta=meta,
        n_truth=out.n_truth,
        seconds=time.perf_counter() - t0,
    )


def read_meta(path: str | Path) -> dict[str, Any]:
    """The ``meta`` JSON of a mock file."""
    import uproot

    with uproot.open(path) as f:
        meta: dict[str, Any] = json.loads(str(f["meta"]))
    return meta
