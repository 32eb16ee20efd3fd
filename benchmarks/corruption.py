"""Measurement (issue 20): what `gammastar select` does with damaged baskets, per compression.

A mock-schema file of 6 baskets per branch (tests/_select_data.py, 420 events) is damaged by
inverting ``--bytes`` consecutive bytes at a random place of the middle basket's payload of
one branch (``muon_px``, ``muon_pz``, ``muon_E``, ``muon_charge``), ``--trials`` places per
(compression, branch), seeded. Each damaged file is selected (iterative executor) and the
outcome classified:

* ``error``: an :class:`~gammastar.errors.InputError` naming the file (decompression or
  decoding failed, or the plausibility checks of :mod:`gammastar.selection.plausibility` fired);
* ``crash``: a :class:`~gammastar.errors.ChunkError` (exit 1, not skippable: what a damaged
  charge basket gave before issue 20, ``ValueError: cannot broadcast nested list``);
* ``unchanged``: exit 0 and exactly the undamaged file's cut flow and pair counts (the bytes
  hit did not change what the selection uses, e.g. a value flipped into one that is cut anyway);
* ``silent``: exit 0 with changed numbers (what issue 20 forbids; the checks cannot see it).

Usage::

    PYTHONPATH=src python benchmarks/corruption.py [--trials 10] [--bytes 16]

The last line is one JSON object with the counts per compression and branch.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # keep benchmarks/select.py from shadowing the standard library's select
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    import uproot
    from test_reliability import _basketed

    from gammastar.config import config_from_dict
    from gammastar.errors import ChunkError, InputError
    from gammastar.selection.stage import select

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--bytes", type=int, default=16)
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--compressions", default="zstd,none,zlib,lz4")
    ap.add_argument(
        "--no-checks", action="store_true", help="without the plausibility checks (as before)"
    )
    args = ap.parse_args()
    if args.no_checks:
        from gammastar.selection.plausibility import Plausibility

        Plausibility.check = lambda *a, **k: None
    logging.disable(logging.WARNING)
    rng = np.random.default_rng(args.seed)
    work = Path(tempfile.mkdtemp(prefix="gs-corruption-"))
    known = {"zstd": uproot.ZSTD(5), "none": None, "zlib": uproot.ZLIB(1), "lz4": uproot.LZ4(1)}
    comps = {c: known[c] for c in args.compressions.split(",")}
    branches = ("muon_px", "muon_pz", "muon_E", "muon_charge")

    def run(path: Path) -> tuple[str, object]:
        cfg = config_from_dict(
            {
                "output": str(work / "r"),
                "input": {"files": [str(path)], "step_size": 70},
                "unfold": {"efficiency_map": None},
                "background": {"remove_eta_mumu": "none"},
            },
            source=str(work / "c.yaml"),
        )
        try:
            res = select(cfg, force=True)
        except InputError as err:
            return "error", str(err)
        except ChunkError as err:  # stops the run whatever --skip-bad-files says
            return "crash", str(err)
        return "ok", (res.cutflow, res.counts["os"], res.counts["pp"], res.counts["mm"])

    table: dict[str, dict[str, dict[str, int]]] = {}
    reasons: dict[str, int] = {}
    for cname, comp in comps.items():
        clean = work / f"clean_{cname}.root"
        _basketed(clean, comp)
        _, want = run(clean)
        table[cname] = {}
        for br in branches:
            tally = {"error": 0, "crash": 0, "unchanged": 0, "silent": 0}
            for _ in range(args.trials):
                bad = work / "bad.root"
                data = bytearray(clean.read_bytes())
                with uproot.open(clean) as f:
                    b = f["events"][br]
                    i = b.num_baskets // 2
                    key = b.basket_key(i)
                    seek = int(b.member("fBasketSeek")[i])
                    nbytes = int(b.member("fBasketBytes")[i])
                    compressed = key.fObjlen != nbytes - key.fKeylen
                start = seek + key.fKeylen + (9 if compressed else 0)
                pos = int(rng.integers(start, seek + nbytes - args.bytes + 1))
                for j in range(pos, pos + args.bytes):
                    data[j] ^= 0xFF
                bad.write_bytes(bytes(data))
                kind, got = run(bad)
                if kind == "crash":
                    tally["crash"] += 1
                elif kind == "error":
                    tally["error"] += 1
                    why = str(got).split("failed while reading: ")[-1].split(":")[0][:40]
                    reasons[why] = reasons.get(why, 0) + 1
                elif got == want:
                    tally["unchanged"] += 1
                else:
                    tally["silent"] += 1
            table[cname][br] = tally
            print(cname, br, tally, flush=True)
    print(
        json.dumps(
            {
                "benchmark": "corruption",
                "bytes": args.bytes,
                "trials": args.trials,
                "seed": args.seed,
                "checks": not args.no_checks,
                "outcomes": table,
                "error_kinds": reasons,
            }
        )
    )


if __name__ == "__main__":
    main()
