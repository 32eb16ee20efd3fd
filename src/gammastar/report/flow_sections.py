"""The report's sections of the flow: its training and its KL validation against the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gammastar.core import rundir
from gammastar.core.verdicts import kl_verdicts
from gammastar.report.markup import (
    Raw,
    _is_number,
    details,
    dict_at,
    fmt,
    fmt_err,
    kv_table,
    not_run,
    table,
)
from gammastar.report.reading import (
    Section,
    _as_list,
    _num,
    _read_json,
    _section_json,
)


def _flow_section(run: Path, s: Section) -> None:
    meta_path = run / rundir.FLOW_META
    hist_path = run / rundir.FLOW_HISTORY
    if not meta_path.exists() and not hist_path.exists():
        s.add(not_run("flow/meta.json not found"))
        return
    s.ran = True
    if meta_path.exists():
        doc = _read_json(run, rundir.FLOW_META, s)
        if doc is not None:
            meta = dict_at(doc, "meta")
            mr = _as_list(doc.get("mass_range"))
            s.add(
                kv_table(
                    [
                        ("model", "flow/model.pt (state_dict) + flow/meta.json"),
                        ("format", f"{fmt(doc.get('format'))} v{fmt(doc.get('format_version'))}"),
                        (
                            "mass range (GeV)",
                            f"{fmt(mr[0])} – {fmt(mr[1])}" if len(mr) == 2 else "n/a",
                        ),
                        ("training rows", fmt(meta.get("n_train_rows"))),
                        ("training data", fmt(meta.get("training_data"))),
                        ("epochs run", fmt(meta.get("epochs_run"))),
                        ("best epoch", fmt(meta.get("best_epoch"))),
                        ("stopped early", fmt(meta.get("stopped_early"))),
                        ("best validation loss", fmt(_num(meta.get("best_val_loss")), ".5g")),
                        ("training wall time (s)", fmt(_num(meta.get("train_wall_s")), ".3g")),
                        ("ensemble size", fmt(meta.get("ensemble_size"))),
                        ("seed", fmt(meta.get("seed"))),
                        ("model sha256", fmt(doc.get("model_sha256"))),
                    ]
                )
            )
            arch = doc.get("architecture")
            if isinstance(arch, dict):
                s.add(details("architecture", kv_table((k, fmt(v)) for k, v in arch.items())))
    else:
        s.warn("flow/meta.json not found (history only: training interrupted?)")
    if hist_path.exists():
        hist = _read_json(run, rundir.FLOW_HISTORY, s)
        if hist is not None:
            train = [v for v in _as_list(hist.get("train")) if _is_number(v)]
            val = [v for v in _as_list(hist.get("val")) if _is_number(v)]
            s.add(
                kv_table(
                    [
                        ("epochs in history", fmt(len(_as_list(hist.get("val"))))),
                        ("final training loss", fmt(train[-1] if train else None, ".5g")),
                        ("final validation loss", fmt(val[-1] if val else None, ".5g")),
                        ("lowest validation loss", fmt(min(val) if val else None, ".5g")),
                    ]
                )
            )


def _band(bands: list[Any], i: int) -> tuple[float | None, float | None]:
    b = _as_list(bands[i]) if i < len(bands) else []
    return (_num(b[0]) if len(b) > 0 else None), (_num(b[1]) if len(b) > 1 else None)


def _validation_section(run: Path, s: Section) -> None:
    doc = _section_json(run, rundir.VALIDATION, s)
    if doc is None:
        return
    mass = _as_list(doc.get("mass"))
    kl = _as_list(doc.get("kl_model"))
    std = _as_list(doc.get("kl_model_std"))
    b68 = _as_list(doc.get("kl_data_68"))
    b95 = _as_list(doc.get("kl_data_95"))
    ndata = _as_list(doc.get("n_data"))
    rows = []
    verdicts = kl_verdicts(doc)
    n_judged = sum(v is not None for v in verdicts)
    n_pass = sum(v in ("68", "95") for v in verdicts)
    for i, m in enumerate(mass):
        k = _num(kl[i]) if i < len(kl) else None
        lo68, hi68 = _band(b68, i)
        lo95, hi95 = _band(b95, i)
        verdict = {
            None: Raw('<span class="na">n/a (too few data)</span>'),
            "68": Raw('<span class="pass">pass (inside 68 %)</span>'),
            "95": Raw('<span class="pass">pass (inside 95 %)</span>'),
            "fail": Raw('<span class="fail">fail (above 95 %)</span>'),
        }[verdicts[i]]
        rows.append(
            (
                fmt(m, ".4g"),
                fmt(ndata[i]) if i < len(ndata) else "n/a",
                fmt_err(k, std[i] if i < len(std) else None),
                f"[{fmt(lo68)}, {fmt(hi68)}]",
                f"[{fmt(lo95)}, {fmt(hi95)}]",
                verdict,
            )
        )
    meta = dict_at(doc, "meta")
    s.add(
        f'<p class="summary">{n_pass} of {n_judged} mass windows pass: the model-vs-data KL '
        "lies below the upper edge of the 95 % data-vs-data band.</p>"
    )
    s.add(
        table(
            [
                "mass (GeV)",
                "data points",
                "KL model vs data",
                "data 68 % band",
                "data 95 % band",
                "verdict",
            ],
            rows,
            "num",
        )
    )
    s.add(
        kv_table(
            [
                ("k (nearest neighbours)", fmt(meta.get("k"))),
                ("window full width (GeV)", fmt(meta.get("window"))),
                ("repeats", fmt(meta.get("repeats"))),
                ("space", fmt(meta.get("space"))),
                ("masses outside the flow range", fmt(meta.get("skipped_masses"))),
                ("seed", fmt(meta.get("seed"))),
            ]
        )
    )
