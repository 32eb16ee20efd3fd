"""Paper Fig. 1: the mock data set — dimuon mass spectrum (left) and pair p_T spectra (right).

Runs the ``generate`` stage (reused when up to date), then places the two plots that
:func:`gammastar.mock.plots.plot_file` draws (``figures/mock_mass.png``, ``mock_pt.png``) side by
side. Differences from the paper: the mock is the package's parametric NA60-like cocktail
(not reweighted PYTHIA 8.3), and the NA60 data points / fit bands are not overlaid.

Usage: ``python analysis/figures/fig1_mock_spectra.py [CONFIG] [--output RUN] [--force]``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import _common as c


def main(argv: list[str] | None = None) -> Path:
    """Write ``<run>/figures/paper_fig1.png`` (and ``.pdf``); return the PNG path."""
    t0 = time.perf_counter()
    args = c.parser(__doc__).parse_args(argv)
    cfg = c.load(args)
    paths = c.figure_paths(cfg, 1, force=args.force)
    c.ensure(cfg, ("generate",))
    mock = cfg.output_dir / "mock.root"
    if not mock.exists():
        from gammastar.errors import InputError

        raise InputError(f"{mock}: Fig. 1 needs the mock ntuple (a config with a `mock:` section)")
    from gammastar.mock.plots import plot_file

    figdir = cfg.output_dir / c.FIGURE_DIR
    mass_png, pt_png = figdir / "mock_mass.png", figdir / "mock_pt.png"
    stale = [
        p for p in (mass_png, pt_png) if not p.exists() or p.stat().st_mtime < mock.stat().st_mtime
    ]
    if stale:
        mass_png, pt_png = plot_file(mock, figdir, force=True)
    return c.done(c.compose([mass_png, pt_png], paths, note=c.provenance(cfg)), t0)


if __name__ == "__main__":
    sys.exit(c.run_main(main))
