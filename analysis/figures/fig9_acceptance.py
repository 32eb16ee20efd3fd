"""Paper Fig. 9: long-lived A′ acceptance (Eq. B1) vs cτ at three masses, for flows trained
with (solid) and without (dashed) the combinatorial background.

Runs ``generate``, ``select`` and ``train`` (reused when up to date), trains the no-background
flow (``<run>/nobkg/flow/``, reused when current) and evaluates the acceptance on the config's
``detector:`` (default: the paper's mock detector, 5 m shield, 35–120 mrad) with
:func:`gammastar.reach.acceptance.grid.plot_acceptance_comparison`. Needs mock input (truth
channels).

Usage: ``python analysis/figures/fig9_acceptance.py [CONFIG] [--output RUN] [--force]``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import _acceptance
import _common as c


def main(argv: list[str] | None = None) -> Path:
    """Write ``<run>/figures/paper_fig9.png`` (and ``.pdf``); return the PNG path."""
    import matplotlib.pyplot as plt

    t0 = time.perf_counter()
    args = c.parser(__doc__).parse_args(argv)
    cfg = c.load(args)
    paths = c.figure_paths(cfg, 9, force=args.force)
    curves, rel_map = _acceptance.compare(cfg, retrain=args.retrain)["figures"]
    plt.close(rel_map)
    return c.done(c.save(curves, paths, note=c.provenance(cfg)), t0)


if __name__ == "__main__":
    sys.exit(c.run_main(main))
