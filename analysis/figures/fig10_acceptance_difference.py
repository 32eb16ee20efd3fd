"""Paper Fig. 10: relative acceptance difference 2(𝓔_bg − 𝓔_no bg)/(𝓔_bg + 𝓔_no bg) of the
flows trained with and without the combinatorial background, in the (m_A′, cτ) plane.

Same computation as Fig. 9 (:func:`gammastar.reach.acceptance.grid.plot_acceptance_comparison`);
prints the largest and median |difference| per cτ range. Needs mock input (truth channels).

Usage: ``python analysis/figures/fig10_acceptance_difference.py [CONFIG] [--output RUN] [--force]``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import _acceptance
import _common as c


def main(argv: list[str] | None = None) -> Path:
    """Write ``<run>/figures/paper_fig10.png`` (and ``.pdf``); return the PNG path."""
    import matplotlib.pyplot as plt

    t0 = time.perf_counter()
    args = c.parser(__doc__).parse_args(argv)
    cfg = c.load(args)
    paths = c.figure_paths(cfg, 10, force=args.force)
    curves, rel_map = _acceptance.compare(cfg, retrain=args.retrain)["figures"]
    plt.close(curves)
    return c.done(c.save(rel_map, paths, note=c.provenance(cfg)), t0)


if __name__ == "__main__":
    sys.exit(c.run_main(main))
