"""`gammastar train`, `gammastar sample`, `gammastar validate`: the kinematics flow."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from gammastar.cli.options import (
    ConfigArg,
    ForceOpt,
    OutputOpt,
    SeedOpt,
    WaitOpt,
    document,
    given,
    load,
)
from gammastar.core import rundir


def train_command(
    config: ConfigArg,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from flow/checkpoint.pt.")
    ] = False,
    output: OutputOpt = None,
    force: ForceOpt = False,
    seed: SeedOpt = None,
    wait: WaitOpt = False,
) -> None:
    """Train the conditional flow p(qT, E | m) on the run directory's pairs.parquet.

    Writes flow/model.pt, flow/meta.json, flow/history.json and flow/loss.png.
    """
    cfg = load(config, output, lock=True, wait=wait)  # a bad config: refused before torch
    from gammastar.flow.model import load as load_flow
    from gammastar.flow.stage import train

    out = train(cfg, resume=resume, force=force, seed=seed, progress=sys.stderr.isatty()).path
    info = load_flow(out).meta["meta"]
    typer.echo(
        f"trained flow: {info['epochs_run']} epochs, best validation NLL "
        f"{info['best_val_loss']:.4f} (epoch {info['best_epoch'] + 1}); wrote {out}"
    )


def sample_command(
    config: ConfigArg,
    out_file: Annotated[Path, typer.Option("-o", "--out", help="Output file (.parquet or .root).")],
    n: Annotated[int, typer.Option("-n", min=1, help="Number of samples.")] = 100_000,
    mass: Annotated[
        float | None,
        typer.Option("--mass", help="A′ (γ*) mass in GeV (this or --mcp-mass is required)."),
    ] = None,
    mcp_mass: Annotated[
        float | None,
        typer.Option(
            "--mcp-mass",
            help="Millicharged-particle mass in GeV: χχ̄ pairs by the recipe of paper Eq. 8 "
            "(this or --mass is required).",
        ),
    ] = None,
    charge: Annotated[
        float, typer.Option("--charge", help="Millicharge in units of e (weights ∝ Q²).")
    ] = 1.0,
    extrapolate: Annotated[
        bool, typer.Option("--extrapolate", help="Allow masses outside the trained range.")
    ] = False,
    four_vectors: Annotated[
        bool, typer.Option("--four-vectors/--no-four-vectors", help="Add px, py, pz.")
    ] = True,
    output: OutputOpt = None,
    force: ForceOpt = False,
    seed: SeedOpt = None,
) -> None:
    """Sample A′ kinematics at --mass, or χχ̄ pairs for --mcp-mass, from the trained flow."""
    import numpy as np

    from gammastar.core.artifacts import make_meta
    from gammastar.errors import GammastarError
    from gammastar.flow.data import run_mass_spectrum
    from gammastar.flow.model import load as load_flow
    from gammastar.flow.model import write_samples
    from gammastar.source.mcp import sample_mcp

    if (mass is None) == (mcp_mass is None):
        raise GammastarError("give exactly one of --mass and --mcp-mass")
    cfg = load(config, output)
    model = load_flow(cfg.output_dir / rundir.FLOW_DIR)
    s = int(seed if seed is not None else cfg.seed)
    extra: dict = {}
    if mass is not None:
        cols = model.sample(mass, n, seed=s, extrapolate=extrapolate, four_vectors=four_vectors)
        cols["weight"] = np.full(n, 1.0 / n)
        extra = {"mode": "aprime", "mass": mass}
    else:
        spectrum = run_mass_spectrum(cfg)
        cols = sample_mcp(
            model,
            given(mcp_mass, "--mcp-mass"),
            n,
            spectrum=spectrum[:2],
            m_lepton=cfg.input.lepton_mass,
            q=charge,
            seed=s,
            extrapolate=extrapolate,
        )
        extra = {"mode": "mcp", "m_chi": mcp_mass, "q": charge, "spectrum_source": spectrum[2]}
    meta = make_meta(
        config_sha256=cfg.sha256,
        seed=s,
        inputs=[cfg.output_dir / rundir.FLOW_DIR / rundir.MODEL_FILE if model.path is None
                else model.path / rundir.MODEL_FILE],
        n=n,
        flow_sha256=model.meta.get("model_sha256"),
        **extra,
    )
    path = write_samples(out_file, cols, meta, force=force)
    typer.echo(f"wrote {n} samples to {path}")


def validate_command(
    config: ConfigArg,
    output: OutputOpt = None,
    force: ForceOpt = False,
    seed: SeedOpt = None,
    wait: WaitOpt = False,
) -> None:
    """k-NN KL validation of the flow against data in narrow mass windows.

    Writes validation.json and figures/flow_kl.png, figures/flow_kinematics.png.
    """
    cfg = load(config, output, lock=True, wait=wait)  # a bad config: refused before torch
    from gammastar.core.verdicts import n_inside
    from gammastar.flow.validate import validate

    res = document(validate(cfg, force=force, seed=seed))
    inside = n_inside(res)
    typer.echo(
        f"model-vs-data KL inside the data-vs-data 95% band at {inside}/{len(res['mass'])} "
        f"masses; wrote {cfg.output_dir / rundir.VALIDATION}"
    )
