"""Paper Fig. 2: data-driven A′ yield per POT per ε² vs m_A′, with the p-bremsstrahlung band.

Runs ``generate`` (mock configs), ``select`` and ``yields`` (reused when up to date), then
draws ``yields.json`` with :func:`gammastar.yields.plots.plot_aprime`.

Usage: ``python analysis/figures/fig2_aprime_yield.py [CONFIG] [--output RUN] [--force]``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import _common as c


def main(argv: list[str] | None = None) -> Path:
    """Write ``<run>/figures/paper_fig2.png`` (and ``.pdf``); return the PNG path."""
    t0 = time.perf_counter()
    args = c.parser(__doc__).parse_args(argv)
    cfg = c.load(args)
    paths = c.figure_paths(cfg, 2, force=args.force)
    c.ensure(cfg, ("generate", "select", "yields"))
    from gammastar.core.artifacts import read_json
    from gammastar.yields.plots import plot_aprime

    doc = read_json(cfg.output_dir / "yields.json", what="yields")
    for p in paths:
        plot_aprime(doc, p, force=True)
    return c.done(paths[0], t0)


if __name__ == "__main__":
    sys.exit(c.run_main(main))
