"""The fiducial flows that the coverage study (:mod:`gammastar_validation.coverage`) takes (``--flow``, ``--form-flow A DIR``).

Per mock p_T form ``mock.pt_mt_power`` a (``--powers``; default the coverage's drawn forms
a0 + ``FORM_POINTS``, a0 the config's): one realisation of the config at that a (generator seed
``--seed``, the config's data size) taken through ``generate`` → ``select`` → ``yields`` and its
flow trained like the closure run; with ``--ensemble N`` (default 4) the a = a0 flow (the
coverage's ``--flow``) is a bootstrapped ensemble (the ``kinematic_model`` spread of the stat
arm), the others single flows. The flow of a lies in ``WORKDIR/flow_a{a:+.4f}/flow``. An a
outside mock.pt_mt_power's bounds is refused. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from gammastar.config import load_config
from gammastar.errors import GammastarError
from gammastar.flow.stage import train
from gammastar_validation import coverage
from gammastar_validation.coverage import REPO


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--events", type=int, default=None,
                    help="mock.events of every realisation (default: the config's): a quick run")
    ap.add_argument(
        "--powers", type=float, nargs="+",
        help="the flows' pt_mt_power a (default: the config's a0, then a0 + the other "
             "FORM_POINTS of gammastar_validation.coverage)",
    )  # fmt: skip
    ap.add_argument("--seed", type=int, default=500, help="generator and training seed")
    ap.add_argument("--ensemble", type=int, default=4, help="members of the a = a0 flow")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "gammastar_coverage")
    args = ap.parse_args(argv)
    try:
        base = coverage.with_events(load_config(args.config), args.events)
    except GammastarError as e:
        ap.error(f"--config: {e}")
    a0 = float(base.mock.pt_mt_power)
    if args.powers is None:
        args.powers = [a0] + [a0 + z for z in coverage.FORM_POINTS if z != 0.0]
    for a in args.powers:
        if (why := coverage.pt_mt_power_error(a)) is not None:
            ap.error(f"--powers: {why}")
    out: dict = {"benchmark": "coverage_flows", "config": str(args.config), "seed": args.seed,
                 "flows": {}, "seconds": {}}  # fmt: skip
    for a in args.powers:
        t0 = time.perf_counter()
        run = args.workdir.resolve() / f"flow_a{a:+.4f}"
        run.mkdir(parents=True, exist_ok=True)
        upd = {"output": str(run), "seed": args.seed,
               "mock": base.mock.model_copy(update={"pt_mt_power": a})}  # fmt: skip
        if round(a, 6) == round(a0, 6) and args.ensemble > 1:
            upd["flow"] = base.flow.model_copy(
                update={"ensemble": args.ensemble, "bootstrap": True, "workers": 1}
            )
        cfg = base.model_copy(update=upd)
        coverage.realisation(cfg)
        train(cfg)
        out["flows"][f"{a:+.4f}"] = str(run / "flow")
        out["seconds"][f"{a:+.4f}"] = round(time.perf_counter() - t0, 1)
        print(f"a = {a:+.4f}: {run / 'flow'} ({out['seconds'][f'{a:+.4f}']} s)", flush=True)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
