"""Paper Fig. 4: KL divergence of the flow vs the data as a function of m_γ*, with the
data-vs-data 68% / 95% bands.

Runs ``generate``, ``select`` and ``train`` (reused when up to date), then
:func:`gammastar.flow.validate.validate` on a dense mass grid (every 50 MeV inside the flow's mass
range; the config's ``validate:`` k, window and repeats) into ``<run>/fig4/validation.json``
(the run's own ``validation.json`` is left alone), drawn with
:func:`gammastar.flow.validate.plot_kl`.

Usage: ``python analysis/figures/fig4_kl.py [CONFIG] [--output RUN] [--force]``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import _common as c
import numpy as np

MASS_STEP = 0.05
"""Spacing of the validation masses (GeV); the paper's curve is continuous in m_γ."""


def main(argv: list[str] | None = None) -> Path:
    """Write ``<run>/figures/paper_fig4.png`` (and ``.pdf``); return the PNG path."""
    t0 = time.perf_counter()
    args = c.parser(__doc__).parse_args(argv)
    cfg = c.load(args)
    png, pdf = c.figure_paths(cfg, 4, force=args.force)
    c.ensure(cfg, ("generate", "select", "train"))
    from gammastar.flow.model import load
    from gammastar.flow.validate import plot_kl, validate

    model = load(cfg.output_dir / "flow")
    lo, hi = model.mass_range
    masses = np.round(np.arange(np.ceil(lo / MASS_STEP), hi / MASS_STEP + 1e-9) * MASS_STEP, 6)
    masses = [float(m) for m in masses if lo + 0.5 * cfg.validate_.window <= m <= hi]
    sub = cfg.model_copy(update={"validate_": cfg.validate_.model_copy(update={"masses": masses})})
    result = validate(
        sub,
        output=cfg.output_dir / "fig4",
        force=True,
        model=model,
        pairs=c.read_pairs(cfg),
        figures=False,
    ).document
    inside = sum(
        b[0] <= k <= b[1] for k, b in zip(result["kl_model"], result["kl_data_95"], strict=True)
    )
    print(f"model-vs-data KL inside the data-vs-data 95% band at {inside}/{len(masses)} masses")
    plot_kl(result, png, force=True)
    c.compose([png], [pdf], note=c.provenance(cfg))
    return c.done(png, t0)


if __name__ == "__main__":
    sys.exit(c.run_main(main))
