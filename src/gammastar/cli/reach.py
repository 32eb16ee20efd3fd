"""`gammastar reach` and `gammastar acceptance`: LLP acceptance and the CLs reach."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gammastar.cli import ConfigArg, ForceOpt, OutputOpt, WaitOpt, app, load


@app.command("reach")
def reach_command(
    config: ConfigArg,
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            help="auto or a method of gammastar.reach.stats.METHODS: exact, toys, asymptotic, ... "
            "(default: the config's).",
        ),
    ] = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Expected (±1σ, ±2σ) and observed CLs exclusion in (m_A′, ε).

    Writes reach.json, workspaces/*.json (pyhf; `pyhf cls FILE --test-poi S` gives CLs for S
    signal events), acceptance.npz and figures/reach.png in the run directory.
    """
    from gammastar.cli import lock_run
    from gammastar.errors import ConfigError
    from gammastar.reach.stage import check_config, run_reach
    from gammastar.reach.stats import METHODS

    cfg = load(config, output)
    check_config(cfg)  # a missing statistics input: one line, before the run directory exists
    lock_run(cfg.output_dir, wait=wait)
    if method is not None:
        if method != "auto" and method not in METHODS:
            raise ConfigError(f"--method: {method!r} is not one of auto, {', '.join(METHODS)}")
        cfg = cfg.model_copy(update={"reach": cfg.reach.model_copy(update={"method": method})})
    res = run_reach(cfg, force=force).document
    n_excl = sum(v is not None for v in res["expected"]["eps_low"])
    typer.echo(
        f"reach: {n_excl}/{len(res['expected']['mass'])} masses excluded at "
        f"{res['cl']:.0%} CL (expected, {res['meta']['method']}); wrote {cfg.output_dir}/reach.json"
    )


@app.command("acceptance")
def acceptance_command(
    config: ConfigArg,
    compare: Annotated[
        Path | None,
        typer.Option(
            "--compare",
            help="Second flow (e.g. trained without background): Fig. 9/10 analogues.",
        ),
    ] = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Acceptance vs cτ at three masses (and with --compare the relative-difference map).

    Writes acceptance_ctau.npz, figures/acceptance_ctau.png (+ figures/acceptance_reldiff.png).
    """
    import numpy as np

    from gammastar.core import rundir
    from gammastar.core.artifacts import atomic_path, check_writable, make_meta
    from gammastar.reach.acceptance import acceptance_grid, plot_acceptance_comparison
    from gammastar.source.geometry import Geometry
    from gammastar.source.production import load_yields, sampler_from_config

    cfg = load(config, output, lock=True, wait=wait)
    out = cfg.output_dir
    rd = rundir.RunDir(out)
    curves_png, reldiff_png = rundir.stage_figures("acceptance")
    for name in (rundir.ACCEPTANCE_CTAU, rundir.ACCEPTANCE_CTAU_JSON, curves_png):
        check_writable(out / name, force)
    ypath = cfg.resolve(cfg.reach.yields)
    # the kinematics of the reach: with fiducial-region yields, the flow inside the region
    # and the yields' fitted model outside it (labelled), as `gammastar reach` uses them
    yields = load_yields(ypath) if ypath.exists() else None
    sampler, desc = sampler_from_config(cfg, yields)
    geometry = Geometry.from_config(cfg.detector)
    lo, hi = getattr(sampler, "mass_range", (0.25, 1.0))
    masses = np.linspace(max(lo, 0.22), hi, 16)
    curve_m = tuple(float(x) for x in np.quantile(masses, [0.1, 0.5, 0.9]))
    ctaus = np.geomspace(1e-3, 1e3, 61)
    if compare is not None:
        from gammastar import flow

        other = flow.load(compare)
        res = plot_acceptance_comparison(
            sampler,
            other,
            geometry,
            masses_curve=curve_m,
            masses_map=masses,
            ctaus=ctaus,
            n=cfg.reach.samples,
            seed=cfg.seed,
            labels=(f"{desc}", f"{compare}"),
            path_curves=str(out / curves_png),
            path_map=str(out / reldiff_png),
        )
        acc, rel = res["acc_a"], res["rel_diff"]
    else:
        import matplotlib.pyplot as plt

        acc = acceptance_grid(sampler, masses, ctaus, geometry, n=cfg.reach.samples, seed=cfg.seed)
        rel = None
        fig, ax = plt.subplots()
        for k in (1, 7, 14):
            ax.loglog(ctaus, acc[k], label=f"m = {masses[k]:.3g} GeV")
        ax.set_xlabel(r"$c\tau$ [m]")
        ax.set_ylabel("acceptance")
        ax.legend()
        with atomic_path(out / curves_png, force=force) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
        plt.close(fig)
    with atomic_path(out / rundir.ACCEPTANCE_CTAU, force=force) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            mass=masses,
            ctau=ctaus,
            acceptance=acc,
            rel_diff=rel if rel is not None else np.empty(0),
        )
    meta = make_meta(
        config_sha256=cfg.section_sha256("detector", "reach", "seed"),
        seed=cfg.seed,
        stage="acceptance",
        sampler=desc,
        compare=str(compare) if compare else None,
    )
    rd.write_json(
        rundir.ACCEPTANCE_CTAU_JSON,
        {"mass": masses, "ctau": ctaus, "acceptance": acc, "meta": meta},
        force=force,
    )
    typer.echo(f"acceptance: wrote {rd.path(rundir.ACCEPTANCE_CTAU)}")
