"""Benchmark of the PYTHIA 8 mock backend (``mock.backend: pythia``): PYTHIA collisions per
second (pp and p+Pb with Angantyr, initialisation apart), and mock sources per second against
the parametric backend in the same process.

Three figures per PYTHIA mode: the initialisation time, collisions/s of the meson pool
(:func:`gammastar.mock.pythia.run_pool`) with the cocktail mesons' multiplicities per collision
(and their mean p_T, mean and standard deviation of the lab rapidity),
and sources/s of ``generate_file`` from that pool (decays, detector, writing) against the same
config with ``backend: parametric`` (the reference; ratio = PYTHIA / parametric, both timed
here after a warm-up generation, so the imports and the PDG tables are loaded). The total
time of a PYTHIA mock is init + collisions / (collisions/s) + sources / (sources/s).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/generate_pythia.py [--modes pp angantyr]
        [--collisions 2000] [--events 300000]

The CPU time (``cpu_s``) is printed next to the wall time: on a shared machine the wall time
measures the load as much as the generator. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NUCLEUS = {"angantyr": 1000822080}  # 208Pb


def _config(backend: str, mode: str, collisions: int):
    from gammastar.config import AnalysisConfig

    pythia = {"mode": mode, "collisions": collisions, "target_pdgid": NUCLEUS.get(mode)}
    if mode == "angantyr":  # the shipped config's Angantyr settings (its fitted sub-collisions)
        from gammastar.config import load_config

        shipped = load_config(REPO / "analysis" / "na60_like_pythia.yaml").mock.pythia
        pythia["settings"] = list(shipped.settings)
    return AnalysisConfig.model_validate({
        "seed": 1,
        "mock": {"backend": backend, "efficiency_map": str(REPO / "data" / "efficiency_na60_like.root"),
                 "pythia": pythia},
    })  # fmt: skip


def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", nargs="+", default=["pp", "angantyr"], choices=["pp", "angantyr"])
    ap.add_argument("--collisions", type=int, default=2000, help="PYTHIA collisions per mode")
    ap.add_argument("--events", type=int, default=300_000, help="mock sources per generation")
    args = ap.parse_args()
    from gammastar.mock.generate import generate_file
    from gammastar.mock.pythia import PythiaMesons, pythia_settings, run_pool

    out: dict = {"benchmark": "generate_pythia", "events": args.events, "modes": {}}
    with tempfile.TemporaryDirectory(prefix="gammastar-bench-") as tmp:
        path = Path(tmp) / "mock.root"
        para = _config("parametric", "pp", 1)
        generate_file(para, path, events=20_000, force=True)  # warm-up: imports, PDG tables
        _res, wall, cpu = _timed(lambda: generate_file(para, path, events=args.events, force=True))
        ref = {"seconds": wall, "cpu_s": cpu, "sources_per_s": args.events / wall,
               "sources_per_cpu_s": args.events / cpu}  # fmt: skip
        out["parametric"] = ref
        print(f"parametric: {args.events} sources in {wall:.1f} s (cpu {cpu:.1f} s): "
              f"{ref['sources_per_s']:.0f} sources/s")  # fmt: skip
        for mode in args.modes:
            cfg = _config("pythia", mode, args.collisions)
            settings = pythia_settings(cfg.mock.pythia, cfg.beam.energy, cfg.seed)
            pool, wall, cpu = _timed(lambda s=settings: run_pool(s, args.collisions))
            t_init = pool.init_seconds
            rate = args.collisions / max(wall - t_init, 1e-9)
            rate_cpu = args.collisions / max(cpu - pool.init_cpu_seconds, 1e-9)
            mesons = PythiaMesons(cfg, cfg.seed, pool=pool)
            gen = lambda c=cfg, m=mesons: generate_file(c, path, events=args.events, force=True,
                                                        mesons=m)  # fmt: skip
            _, g_wall, g_cpu = _timed(gen)
            r = {
                "init_s": t_init, "init_cpu_s": pool.init_cpu_seconds,
                "collisions_per_cpu_s": rate_cpu,
                "collisions": args.collisions, "collisions_per_s": rate,
                "pool_seconds": wall, "pool_cpu_s": cpu,
                "multiplicity_per_collision": mesons.multiplicity,
                "sigma_generated_mb": pool.sigma_mb,
                "spectra": {k: {"pt_mean": float(pool.pt[k].mean()), "y_mean": float(pool.y[k].mean()),
                                "y_std": float(pool.y[k].std())}
                            for k in pool.pt if pool.pt[k].size},
                "generate_seconds": g_wall, "generate_cpu_s": g_cpu,
                "sources_per_s": args.events / g_wall, "sources_per_cpu_s": args.events / g_cpu,
                "ratio_to_parametric": (args.events / g_wall) / ref["sources_per_s"],
                "cpu_ratio_to_parametric": ref["cpu_s"] / g_cpu,
            }  # fmt: skip
            out["modes"][mode] = r
            mult = ", ".join(f"{k} {v:.3f}" for k, v in mesons.multiplicity.items())
            print(f"{mode}: init {t_init:.1f} s (cpu {pool.init_cpu_seconds:.1f} s), {rate:.0f} "
                  f"collisions/s ({rate_cpu:.0f} per cpu s); "
                  f"per collision: {mult}")  # fmt: skip
            print(f"{mode}: {args.events} sources in {g_wall:.1f} s (cpu {g_cpu:.1f} s): "
                  f"{r['sources_per_s']:.0f} sources/s, {r['ratio_to_parametric']:.2f} x "
                  f"parametric ({r['cpu_ratio_to_parametric']:.2f} x in cpu time)")  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
