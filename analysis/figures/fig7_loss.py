"""Paper Fig. 7: training and validation loss of the flow vs epoch.

Runs ``generate``, ``select`` and ``train`` (reused when up to date), then draws
``<run>/flow/history.json`` with :func:`gammastar.flow.training.plot_losses`. The run's training recipe
is the config's ``flow:`` section (default: 30 epochs of 10⁵ points; the paper's 500 epochs of
5 × 10⁴ points are one config change away, see docs/explanation/flow.md).

Usage: ``python analysis/figures/fig7_loss.py [CONFIG] [--output RUN] [--force]``
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import _common as c


def main(argv: list[str] | None = None) -> Path:
    """Write ``<run>/figures/paper_fig7.png`` (and ``.pdf``); return the PNG path."""
    t0 = time.perf_counter()
    args = c.parser(__doc__).parse_args(argv)
    cfg = c.load(args)
    paths = c.figure_paths(cfg, 7, force=args.force)
    c.ensure(cfg, ("generate", "select", "train"))
    from gammastar.errors import InputError
    from gammastar.flow.training import plot_losses

    hist_path = cfg.output_dir / "flow" / "history.json"
    try:
        history = json.loads(hist_path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"{hist_path}: no readable training history ({err})") from None
    for p in paths:
        plot_losses(history, p, force=True)
    n = len(history.get("val", []))
    best = min(history["val"]) if n else float("nan")
    print(f"{n} epochs; best validation loss {best:.4f}")
    return c.done(paths[0], t0)


if __name__ == "__main__":
    sys.exit(c.run_main(main))
