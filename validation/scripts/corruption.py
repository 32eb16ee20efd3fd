"""Damaged input: what `gammastar select` does with damaged baskets, per compression.

Claim: a damaged basket of the input is a named bad file. Selecting a file with 16 inverted
bytes in one basket ends in an :class:`~gammastar.errors.InputError` naming the file (which
``--skip-bad-files`` can drop), never in a crash of the selection or in silently changed
numbers.

A mock file of ``--events`` recorded events (the NA60-like mock, ``gammastar.mock``), written
in 6 baskets per branch, is damaged by inverting ``--bytes`` consecutive bytes at a random
place of the middle basket's payload of one branch (``muon_px``, ``muon_pz``, ``muon_E``,
``muon_charge``), ``--trials`` places per (compression, branch), seeded. Each damaged file is
selected (iterative executor) and the outcome classified:

* ``error``: an :class:`~gammastar.errors.InputError` naming the file (decompression or
  decoding failed, or the plausibility checks of :mod:`gammastar.selection.plausibility` fired);
  ``named`` counts those of them that also name a branch and an entry range;
* ``crash``: a :class:`~gammastar.errors.ChunkError` (exit 1, not skippable);
* ``unchanged``: exit 0 and exactly the undamaged file's cut flow and pair counts (the bytes
  hit did not change what the selection uses, e.g. a value flipped into one that is cut anyway);
* ``silent``: exit 0 with changed numbers (the claim forbids it; the checks cannot see it).

Usage::

    python validation/scripts/corruption.py [--trials 10] [--bytes 16] [--compressions zlib,lz4]

The last line is one JSON object with the counts per compression and branch.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
BASKETS = 6
MUON = ("px", "py", "pz", "E", "charge")


def mock_events(work: Path, events: int, seed: int) -> dict:
    """The first ``events`` recorded events of a NA60-like mock (the branches the selection
    reads: ``event``, ``muon_*``, ``truth_channel``)."""
    import uproot

    from gammastar.config import load_config
    from gammastar.mock.generate import generate_file

    cfg = load_config(REPO / "analysis" / "na60_like.yaml").model_copy(
        update={"output": str(work / "mock")})  # fmt: skip
    path = work / "mock" / "mock.root"
    # about 4.6 recorded events per 100 sources: twice what is needed
    generate_file(cfg, path, events=max(events * 44, 20_000), seed=seed, force=True)
    with uproot.open(path) as f:
        d = f["events"].arrays(["event", *(f"muon_{c}" for c in MUON), "truth_channel"],
                               entry_stop=events)  # fmt: skip
    if len(d) < events:
        raise SystemExit(f"--events: the mock recorded only {len(d)} events")
    return d


def basketed(path: Path, d, compression) -> None:
    """``d`` written in :data:`BASKETS` baskets per branch (the middle ones can be damaged
    while the first and last entries stay readable)."""
    import awkward as ak
    import uproot

    edges = np.linspace(0, len(d), BASKETS + 1).astype(int)
    with uproot.recreate(path, compression=compression) as f:
        for k in range(BASKETS):
            s = d[edges[k]:edges[k + 1]]
            cols = {"event": s["event"],
                    "muon": ak.zip({c: s[f"muon_{c}"] for c in MUON}),
                    "truth_channel": s["truth_channel"]}  # fmt: skip
            if k == 0:
                f.mktree("events", {c: v.type for c, v in cols.items()})
            f["events"].extend(cols)


def main() -> None:
    import uproot

    from gammastar.config import config_from_dict
    from gammastar.errors import ChunkError, InputError
    from gammastar.selection.stage import select

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--bytes", type=int, default=16)
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--events", type=int, default=420, help="recorded events of the file")
    ap.add_argument("--compressions", default="zstd,none,zlib,lz4,lzma")
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
    events = mock_events(work, args.events, args.seed)
    known = {"zstd": uproot.ZSTD(5), "none": None, "zlib": uproot.ZLIB(1), "lz4": uproot.LZ4(1),
             "lzma": uproot.LZMA(1)}  # fmt: skip
    comps = {c: known[c] for c in args.compressions.split(",")}
    branches = ("muon_px", "muon_pz", "muon_E", "muon_charge")

    def run(path: Path) -> tuple[str, object]:
        cfg = config_from_dict(
            {
                "output": str(work / "r"),
                "input": {"files": [str(path)], "step_size": max(args.events // BASKETS, 1)},
                "beam": {"energy": 400.0, "interaction_lengths": 0.01},  # the mock's
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
        basketed(clean, events, comp)
        _, want = run(clean)
        table[cname] = {}
        for br in branches:
            tally = {"error": 0, "named": 0, "crash": 0, "unchanged": 0, "silent": 0}
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
                    named = re.search(r"branch(es)? '\w+'.*entries \d+-\d+", str(got))
                    tally["named"] += named is not None
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
                "events": args.events,
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
