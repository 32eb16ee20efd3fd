"""Benchmark of `gammastar generate`: events/s and peak memory for 1e6 and 1e7 events.

Each measurement runs in a fresh subprocess (one core: OMP_NUM_THREADS=1), timing the
``generate_file`` call and reading the process's peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which includes the interpreter and imports).

Reference: the same generation without chunking (one chunk holding every event) at 1e6 and
2e6 events, to show what the chunked streaming saves in memory; the un-chunked 1e7 run is not
run (shared machine) but extrapolated linearly from the two reference points.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/generate.py [--sizes 1000000 10000000]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/generate.py --leptons e  # dielectrons

``--leptons`` sets ``mock.leptons`` (``mu``, ``e`` or ``mu,e``); the CPU time of the child
(``cpu_s``) is printed next to the wall time, since on a shared machine the wall time measures
the load as much as the generator.

The last line of the output is one JSON object with all figures. Target:
1e7 events in under 60 s on one core, peak memory under 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
t_start = time.perf_counter()
from gammastar.config import AnalysisConfig
from gammastar.config.mock import MockConfig
from gammastar.mock.generate import generate_file
events, chunk, path, eff = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
leptons = sys.argv[5].split(",")
cfg = AnalysisConfig(seed=1, mock=MockConfig(efficiency_map=eff, leptons=leptons))
t0 = time.perf_counter()
c0 = time.process_time()
res = generate_file(cfg, path, events=events, chunk_size=chunk, force=True)
t1 = time.perf_counter()
import os
print(json.dumps({
    "events": events, "chunk_size": chunk, "seconds": t1 - t0, "leptons": leptons,
    "cpu_s": time.process_time() - c0,
    "seconds_with_imports": t1 - t_start,
    "events_per_s": events / (t1 - t0),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "n_events_written": res.n_events_written, "file_mb": os.path.getsize(path) / 2**20,
}))
"""


def run(events: int, chunk: int, workdir: Path, leptons: str = "mu") -> dict:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    path = workdir / f"mock_{events}_{chunk}.root"
    eff = str(REPO / "data" / "efficiency_na60_like.root")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(events), str(chunk), str(path), eff, leptons],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    path.unlink(missing_ok=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--chunk-size", type=int, default=500_000)
    ap.add_argument("--reference-sizes", type=int, nargs="*", default=[1_000_000, 2_000_000])
    ap.add_argument("--leptons", default="mu", help="mock.leptons: mu, e or mu,e")
    args = ap.parse_args()
    results: dict = {"chunked": []}
    with tempfile.TemporaryDirectory(prefix="gammastar-bench-") as tmp:
        work = Path(tmp)
        for n in args.sizes:
            r = run(n, args.chunk_size, work, args.leptons)
            results["chunked"].append(r)
            print(
                f"chunked   {n:>10d} events: {r['seconds']:7.2f} s (cpu {r['cpu_s']:.2f} s), "
                f"{r['events_per_s']:10.0f} ev/s, "
                f"peak {r['peak_rss_mb']:7.0f} MB, {r['n_events_written']} written"
            )
        results["reference_unchunked"] = []
        for n in args.reference_sizes:
            r = run(n, n, work, args.leptons)
            results["reference_unchunked"].append(r)
            print(
                f"reference {n:>10d} events (one chunk): {r['seconds']:7.2f} s, "
                f"{r['events_per_s']:10.0f} ev/s, peak {r['peak_rss_mb']:7.0f} MB"
            )
    refs = results["reference_unchunked"]
    if len(refs) >= 2:
        (n1, r1), (n2, r2) = [(r["events"], r["peak_rss_mb"]) for r in refs[:2]]
        slope = (r2 - r1) / (n2 - n1)
        results["reference_unchunked_extrapolated_1e7_mb"] = r1 + slope * (10_000_000 - n1)
        print(
            "reference extrapolated to 1e7 events (one chunk): "
            f"{results['reference_unchunked_extrapolated_1e7_mb']:.0f} MB"
        )
    # like for like: the same size chunked and in one chunk
    by_size = {r["events"]: r for r in results["chunked"]}
    results["unchunked_over_chunked"] = {}
    for r in refs:
        c = by_size.get(r["events"])
        if c is None:
            continue
        ratio = {"peak_rss": r["peak_rss_mb"] / c["peak_rss_mb"],
                 "seconds": r["seconds"] / c["seconds"]}  # fmt: skip
        results["unchunked_over_chunked"][str(r["events"])] = ratio
        print(f"{r['events']} events, one chunk / chunked: peak memory {ratio['peak_rss']:.2f}x, "
              f"time {ratio['seconds']:.2f}x")
    big = max(results["chunked"], key=lambda r: r["events"])
    results["target"] = {
        "events": big["events"],
        "seconds": big["seconds"],
        "under_60_s": big["seconds"] < 60,
        "peak_rss_mb": big["peak_rss_mb"],
        "under_2_gb": big["peak_rss_mb"] < 2048,
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
