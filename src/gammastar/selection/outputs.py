"""The selection's outputs: ``select.json`` (counts, background, unfolding, polarisation,
timings), ``histograms.root`` and ``pairs.parquet`` written together, and the stage's result
(:class:`SelectResult`).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from gammastar.config import AnalysisConfig
from gammastar.core import rundir, urls
from gammastar.core.artifacts import atomic_paths, json_text, make_meta
from gammastar.core.results import StageResult
from gammastar.corrections.background import conversion_template_from_config
from gammastar.corrections.polarisation.edges import narrow_peaks

if TYPE_CHECKING:
    import hist
    import pandas as pd


log = logging.getLogger(__name__)
from gammastar.selection.histograms import (
    mass_axis,
    mixed_r,
)
from gammastar.selection.polarisation import _polarisation_block
from gammastar.selection.records import (
    _Options,
    _Run,
    _Weighted,
)

__all__ = ["OUTPUT_FILES", "WEIGHT_CONVENTION", "SelectResult"]


# --------------------------------------------------------------------------- result
@dataclass(frozen=True, kw_only=True)
class SelectResult(StageResult):
    """What :func:`select` wrote: ``select.json`` (``path``, the mark of a finished run) and its
    ``document``; the other files are in ``output_dir``.

    ``pairs`` is the pairs table; when the workers wrote it (parallel executors: the
    ``pairs.parquet/`` dataset of one part per chunk, or the dataset at ``select.json``
    ``pairs_url``), it is read from there on first access.
    """

    output_dir: Path
    _pairs: pd.DataFrame | None = field(repr=False)
    histograms: dict[str, Any] = field(repr=False)
    cutflow: dict[str, int] = field(repr=False)
    counts: dict[str, Any]
    unfold: dict[str, Any]
    bad_files: dict[str, str]
    meta: dict[str, Any] = field(repr=False)
    files: dict[str, Path] = field(default_factory=dict, repr=False)

    @property
    def pairs(self) -> pd.DataFrame:
        """The pairs table (= ``pairs.parquet``)."""
        if self._pairs is None:
            import pandas as pd

            # a cache, not a change of the result: the table is that of pairs.parquet
            url = (self.document or {}).get("pairs_url")
            table = (
                urls.read_table(url).to_pandas()
                if url is not None
                else pd.read_parquet(self.files[rundir.PAIRS])
            )
            object.__setattr__(self, "_pairs", table)
        return self._pairs


OUTPUT_FILES = rundir.stage_outputs("select")  # pairs.parquet, histograms.root, select.json

WRITER_MODULES = ("uproot", "jsonschema")
"""What writing the outputs imports: uproot (``histograms.root``) and jsonschema
(``select.json``'s check against its schema, :func:`gammastar.core.rundir.validate`)."""


def load_writers() -> None:
    """Import :data:`WRITER_MODULES` (about half a second): on a parallel executor while the
    chunks run, where the driver only waits (the sink's ``meanwhile``), rather than before the
    first chunk or after the last."""
    for name in WRITER_MODULES:
        importlib.import_module(name)


def _write_parquet(path: Path, df: pd.DataFrame, rows_per_group: int = 1_000_000) -> None:
    """Write the pairs table in row groups (:func:`gammastar.core.parquet.writer_options`: LZ4
    only for the columns it shrinks, dictionaries only for the small-cardinality columns):
    faster than pandas' default (snappy, dictionaries everywhere) at about the same size, and
    only one row group at a time is converted to Arrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gammastar.core.parquet import writer_options

    cols = {c: df[c].to_numpy() for c in df.columns}
    schema = pa.schema([(c, pa.from_numpy_dtype(v.dtype)) for c, v in cols.items()])
    with pq.ParquetWriter(path, schema, **writer_options(cols)) as w:
        for start in range(0, max(len(df), 1), rows_per_group):
            sl = slice(start, start + rows_per_group)
            w.write_table(
                pa.Table.from_arrays([pa.array(v[sl]) for v in cols.values()], schema=schema)
            )


class _Processed(NamedTuple):
    """What the processor's run left besides its result (:func:`_process`): the bad files, the
    cut flow, and the files whose pairs are used."""

    bad_files: dict[str, str]
    cutflow: dict[str, int]
    files_used: list[str]


def _counts(
    run: _Run,
    w: _Weighted,
    cutflow: dict[str, int],
    hists: Mapping[str, hist.Hist[hist.storage.Weight]],
) -> dict[str, Any]:
    """``select.json`` ``counts``: events, pairs per charge class, and the combinatorial,
    signal and unfolded totals with their errors."""
    if run.spec is not None or w.pairs is None:  # the chunks' counts (pairs not here)
        n_q = {c: cutflow[c] for c in ("os", "pp", "mm")}
    else:
        q = w.pairs["charge"].to_numpy()
        n_q = {"os": int((q == 0).sum()), "pp": int((q == 2).sum()), "mm": int((q == -2).sum())}
    counts: dict[str, Any] = {"events": cutflow["events"], **n_q}
    for key, name in (("comb_estimate", "comb_m"), ("signal", "signal_m"),
                      ("unfolded", "unfolded_m")):  # fmt: skip
        h = hists[name]
        counts[key] = float(h.values().sum())
        counts[f"{key}_err"] = float(np.sqrt(h.variances().sum()))
    return counts


def _background_block(cfg: AnalysisConfig, w: _Weighted, comb: float) -> dict[str, Any]:
    """``select.json`` ``background``: the like-sign estimate's report, the R factor (with the
    mixed events' R per mass bin), the conversions' template; ``comb`` the combinatorial
    total."""
    bkg = cfg.background
    mixed: dict[str, Any] = {}
    if bkg.r_factor == "mixed":
        r_mix, r_half = mixed_r(w.raw)
        edges = np.asarray(mass_axis(cfg).edges)
        mixed = {
            "mixing_depth": bkg.mixing_depth,
            "r_per_mass_bin": {"edges": edges.tolist(), "values": r_mix.tolist()},
            "r_half_window": r_half.tolist(),
            "mixed_pairs": {c: int(w.raw[f"mix_{c}_m"].values().sum()) for c in ("os", "pp", "mm")},
        }
    return {
        **w.estimate.report(),
        "ss_weight": bkg.ss_weight,
        "r_factor": bkg.r_factor,
        "r_factor_source": "mixed events" if bkg.r_factor == "mixed" else "configured",
        **mixed,
        "min_like_sign": bkg.min_like_sign,
        "comb_estimate": comb,
        "conversions": _conversions_report(cfg),
    }


def _select_doc(
    cfg: AnalysisConfig,
    opt: _Options,
    run: _Run,
    w: _Weighted,
    done: _Processed,
    hists: Mapping[str, hist.Hist[hist.storage.Weight]],
    bayes: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(meta, select.json)``: the JSON assembly, in one place (schemas/…/select.json)."""
    import time


    bkg, phase_space = cfg.background, run.phase_space
    counts = _counts(run, w, done.cutflow, hists)
    polarisation = _polarisation_block(cfg, run, w)
    meta = make_meta(
        config_sha256=cfg.section_sha256("input", "selection", "background", "unfold"),
        seed=None,
        inputs=done.files_used,
        stage="select",
        config_sha256_full=cfg.sha256,
        executor=opt.execution.executor,
        scheduler=opt.execution.scheduler,
        layout=cfg.input.layout,
        branches=run.checked.branches.all,
        weight_convention=WEIGHT_CONVENTION,
        r_factor=bkg.r_factor,
        ss_weight=bkg.ss_weight,
        min_like_sign=bkg.min_like_sign,
        phase_space=phase_space,
        # outside the mock: the selection's choices left to the mock's values
        **({"assumed": cfg.assumed()} if cfg.mock is None else {}),
    )
    doc = {
        "meta": meta,
        "counts": counts,
        "cutflow": done.cutflow,
        "unfold": {
            **w.eff_report.as_dict(),
            "phase_space": phase_space,
            "acceptance": w.acc_report,
            "fiducial": (
                {"min_acceptance": float(cfg.unfold.min_acceptance), **run.am.as_dict()}
                if phase_space == "fiducial"
                else None
            ),
            "bayesian": bayes,
        },
        "eta_mumu": w.eta,
        "background": _background_block(cfg, w, counts["comb_estimate"]),
        "polarisation": polarisation,
        # the inputs as recorded: URLs without their credentials (urls.redact)
        "bad_files": {urls.redact(p): urls.redact(why) for p, why in done.bad_files.items()},
        "entries": {
            urls.redact(p): n for p, n in run.checked.entries.items() if p in done.files_used
        },
        "elapsed_s": time.perf_counter() - run.t0,
    }
    return meta, doc


def _conversions_report(cfg: AnalysisConfig) -> dict[str, Any] | None:
    """``select.json`` ``background.conversions``: the template and its R per 1/(1 + R)
    weighted mass bin (``None`` without ``background.conversion_template``)."""

    t = conversion_template_from_config(cfg)
    return None if t is None else t.summary(cfg.selection.mass_min)


def _warn_peak_window(cfg: AnalysisConfig) -> None:
    """Once per selection: a measured λ_θ in equal-count bins without
    ``unfold.polarisation_peak_window`` while a narrow peak lies in the mass range."""

    u, lo, hi = cfg.unfold, cfg.selection.mass_min, cfg.selection.mass_max
    near = [p for p in narrow_peaks() if lo < p < hi]
    if u.polarisation_peak_window is None and u.polarisation_edges is None and near:
        log.warning(
            "select: unfold.polarisation_peak_window is not set: the equal-count polarisation "
            "bins may cut the peak(s) at %s GeV, which biases the measured lambda_theta there "
            "(docs/explanation/method.md); set it to ~3.5 sigma_m of your mass resolution",
            ", ".join(f"{p:.3f}" for p in near),
        )


WEIGHT_CONVENTION = (
    "OS: weight = weight_raw/(acc*eff); SS: weight = -R*weight_raw/(acc*eff) "
    "(ss_weight=constant) or -2R*sqrt(N++N--)/(N++ + N--) of the mass bin, N++ and "
    "N-- summed over neighbouring bins where a bin has fewer than "
    "background.min_like_sign of a sign, * weight_raw/(acc*eff) (binwise); the same "
    "factor in comb_m; acc = 1 without an acceptance (unfold.acceptance_map or the "
    "per-pair A(m, q) of unfold.lepton_acceptance); weight 0 "
    "below unfold.min_acceptance; sum(weight) = background-subtracted, unfolded yield "
    "(phase_space)"
)
"""``select.json`` ``meta.weight_convention``."""


def _place_url_dataset(outdir: Path, staged: str, url: str) -> None:
    """Move the staged parts onto ``url`` (``selection.pairs_url``; the caller refused an
    existing dataset there without ``--force``, so what is there is replaced), and remove a
    ``pairs.parquet`` of an earlier run from the run directory (``select.json`` names where
    the pairs are)."""
    import shutil

    urls.remove(url)
    urls.move_tree(staged, url)
    old = outdir / rundir.PAIRS
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    elif old.exists() or old.is_symlink():
        old.unlink()


def _write_outputs(
    cfg: AnalysisConfig,
    force: bool,
    run: _Run,
    w: _Weighted,
    hists: Mapping[str, hist.Hist[hist.storage.Weight]],
    meta: dict[str, Any],
    doc: dict[str, Any],
) -> None:
    """Write everything computed before, so nothing half-written on a user error: the three
    files as one set, ``select.json`` (the mark of a finished run) renamed into place last."""
    import time

    import uproot


    t_post = time.perf_counter()
    url = cfg.selection.pairs_url if w.streamed is not None and urls.is_url(w.streamed) else None
    names = [n for n in OUTPUT_FILES if url is None or n != rundir.PAIRS]
    with atomic_paths([run.outdir / n for n in names], force) as (*pq, h_tmp, js_tmp):
        if url is not None:  # the dataset the workers wrote at selection.pairs_url
            _place_url_dataset(run.outdir, str(w.streamed), url)
            doc["pairs_url"] = url
        elif w.streamed is not None:  # the dataset the workers wrote (pairs.parquet/)
            os.unlink(pq[0])  # our empty placeholder: rename onto a free name
            os.replace(w.streamed, pq[0])
        else:
            _write_parquet(pq[0], w.pairs)
        with uproot.recreate(h_tmp) as f:
            for name, h in hists.items():
                f[name] = h
            f["phase_space"] = run.phase_space
            f[rundir.HISTOGRAMS_META] = json_text(meta)  # its schema version
        t = run.times
        doc["timings_s"] = {
            "check_inputs": t["checked"] - run.t0,
            "process": t["processed"] - t["checked"],
            "postprocess": t_post - t["processed"],
            "write_data": time.perf_counter() - t_post,
        }
        for k in ("fit_lambda", "polarisation", "polarisation_correction", "reweight",
                  "cluster"):  # fmt: skip
            # in postprocess: the λ_θ(m) fit (decay_lambda_theta: measured), the
            # polarisation block's measurement (every fiducial selection) and its
            # correction (unfold.polarisation_correction), the second pass (the factors
            # of the whole sample on the chunks' weights); before the checks: the start of
            # the cluster or process pool (in none of the four)
            if k in t:
                doc["timings_s"][k] = t[k]
        js_tmp.write_text(rundir.RunDir(run.outdir).json_text(rundir.SELECT, doc))  # checked
