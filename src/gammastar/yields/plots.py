"""Figures of the yields stage: the analogues of the paper's Fig. 2 (A′) and Fig. 3 (χχ̄), and
the data-driven A′ yield beside the standard generator-level recipe (:func:`plot_standard_recipe`).

Both take the ``yields.json`` document (:func:`gammastar.yields.stage.compute_yields`) and
draw in the package's figure style (:func:`gammastar.core.figures.figure_style`) on log
scales, with units on the axes and the statistical error as a band.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from gammastar.core.figures import figure_style, save_figure


def _figure() -> Any:
    """A figure and its axes, outside pyplot (no backend chosen, nothing left open)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 7))
    return fig, fig.subplots()


def _pos(values: Any) -> np.ndarray:
    """Array with None (JSON null) and non-positive entries as NaN (not drawn on log axes)."""
    a = np.asarray([np.nan if v is None else v for v in np.atleast_1d(values)], dtype=float)
    return np.where(a > 0, a, np.nan)


def _phase_space_line(doc: dict[str, Any]) -> str:
    """Second title line naming the phase space of the data-driven yield."""
    ps = doc.get("meta", {}).get("phase_space")
    text = {
        "full": "full phase space (unfolded for acceptance × efficiency)",
        "detector_acceptance": "inside the detector acceptance (efficiency only)",
        "fiducial": "full phase space (fiducial region measured; the rest a fitted model)",
    }.get(ps)
    return f"\n{text}" if text else ""


def _save(fig: Any, path: str | os.PathLike[str], force: bool, meta: dict | None = None) -> None:
    """Write the figure atomically; PDF/PNG carry the run's version, config hash and N_POT."""

    suffix = (os.path.splitext(os.fspath(path))[1] or ".pdf").lstrip(".").lower()
    meta = meta or {}
    subject = (
        f"gammastar {meta.get('gammastar_version')}; config_sha256={meta.get('config_sha256')}; "
        f"n_pot={meta.get('n_pot')} ({meta.get('n_pot_source')})"
    )
    info = {"Creator": "gammastar yields", "Subject": subject} if suffix == "pdf" else None
    if suffix == "png":
        info = {"Software": "gammastar yields", "Description": subject}
    # the style's margins hold these figures' labels and two-line titles: no "tight" bounding
    # box, which draws the whole figure once more to measure it
    save_figure(fig, path, force=force, default_format=suffix, metadata=info)


def _value_and_error(section: dict[str, Any], key: str) -> tuple[np.ndarray, np.ndarray]:
    """A yield (``key``) and its ``stat_err`` for the log scale (non-positive values → NaN;
    NaN errors → 0)."""
    return _pos(section[key]), np.nan_to_num(_pos(section["stat_err"]))


@figure_style()
def plot_aprime(doc: dict[str, Any], path: str | os.PathLike[str], *, force: bool = False) -> None:
    """Fig. 2 analogue: data-driven A′ yield per POT per ε² with the bremsstrahlung band.

    The data-driven yield is a step line per merged mass bin with its ±1σ statistical band;
    bins flagged ``negative`` or ``empty`` are not drawn on the log scale.
    """
    ap = doc["aprime"]
    edges = np.asarray(ap["bin_edges"], dtype=float)
    y, e = _value_and_error(ap, "per_pot_per_eps2")
    fig, ax = _figure()
    ax.stairs(y, edges, color="black", lw=2, label="data-driven (Eq. 6)")
    lo = np.clip(y - e, y * 1e-3, None)
    ax.stairs(
        y + e, edges, baseline=lo, fill=True, color="black", alpha=0.25, label=r"stat. $\pm1\sigma$"
    )
    th = doc.get("theory", {}).get("brems_aprime")
    if th:
        m = np.asarray(th["mass"], dtype=float)
        ax.plot(
            m, _pos(th["per_pot_per_eps2"]), color="tab:red", lw=1.5, label="p bremsstrahlung (FWW)"
        )
        cut = th.get("cutoff_gev", [])
        lab = rf"$\Lambda$ = {cut[0]:.2g}–{cut[2]:.2g} GeV" if len(cut) == 3 else "band"
        ax.fill_between(
            m, _pos(th["low"]), _pos(th["high"]), color="tab:red", alpha=0.25, label=lab
        )
    sr = doc.get("standard_recipe")
    if isinstance(sr, dict):
        ax.stairs(_pos(sr["per_pot_per_eps2"]), np.asarray(sr["bin_edges"], dtype=float),
                  color="tab:blue", lw=1.5, label="standard recipe (meson decays, mixing, brems)")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel(r"$m_{A'}$ [GeV]")
    ax.set_ylabel(r"$N_{A'} / (N_{\mathrm{POT}}\, \varepsilon^2)$")
    ax.set_xlim(edges[0], edges[-1])
    finite = y[np.isfinite(y)]
    if finite.size:
        ax.set_ylim(finite.min() / 30, finite.max() * 30)
    n_pot = doc.get("meta", {}).get("n_pot")
    title = r"$A^\prime$ yield per POT" + (f" ($N_{{POT}}$ = {n_pot:.2g})" if n_pot else "")
    ax.set_title(title + _phase_space_line(doc), fontsize=18)
    ax.legend(fontsize=14)
    _save(fig, path, force, doc.get("meta"))


@figure_style()
def plot_mcp(doc: dict[str, Any], path: str | os.PathLike[str], *, force: bool = False) -> None:
    """Fig. 3 analogue: χχ̄ yield per POT per Q² vs m_χ with bremsstrahlung, π0 and J/ψ lines."""
    mc = doc["mcp"]
    m = np.asarray(mc["mass"], dtype=float)
    y, e = _value_and_error(mc, "per_pot_per_q2")
    fig, ax = _figure()
    flags = mc.get("flags") or [[] for _ in m]
    lower = np.array(["below_data_range" in f for f in flags], dtype=bool)
    ax.plot(m, y, "-", color="black", lw=2)
    ax.plot(m[~lower], y[~lower], "o", color="black", label="data-driven (Eq. 8)")
    if lower.any():
        ax.plot(
            m[lower],
            y[lower],
            "o",
            mfc="white",
            color="black",
            label=r"lower bound ($2m_\chi$ below the data)",
        )
    ax.fill_between(m, np.clip(y - e, y * 1e-3, None), y + e, color="black", alpha=0.25)
    th = doc.get("theory", {})
    if "brems_mcp" in th:
        b = th["brems_mcp"]
        ax.plot(
            b["mass"], _pos(b["per_pot_per_q2"]), color="tab:red", lw=1.5, label="p bremsstrahlung"
        )
        ax.fill_between(b["mass"], _pos(b["low"]), _pos(b["high"]), color="tab:red", alpha=0.25)
    for key, color, label in (
        ("pi0_mcp", "tab:blue", r"$\pi^0 \to \gamma\chi\bar\chi$"),
        ("jpsi_mcp", "tab:green", r"$J/\psi \to \chi\bar\chi$"),
    ):
        if key in th:
            ax.plot(
                th[key]["mass"], _pos(th[key]["per_pot_per_q2"]), color=color, lw=1.5, label=label
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$m_\chi$ [GeV]")
    ax.set_ylabel(r"$N_{\chi\bar\chi} / (N_{\mathrm{POT}}\, Q_\chi^2)$")
    ax.set_title(r"$\chi\bar\chi$ yield per POT" + _phase_space_line(doc), fontsize=18)
    ax.legend(fontsize=14)
    _save(fig, path, force, doc.get("meta"))


# the channels drawn one by one (the others are in the total)
_RECIPE_LINES = (
    ("pi0", r"$\pi^0 \to \gamma A'$", "tab:orange"),
    ("eta", r"$\eta \to \gamma A'$", "tab:green"),
    ("omega", r"$\omega \to \pi^0 A'$", "tab:purple"),
    ("rho_mixing", r"$A'$–$\rho$ mixing", "tab:brown"),
    ("omega_mixing", r"$A'$–$\omega$ mixing", "tab:pink"),
    ("phi_mixing", r"$A'$–$\phi$ mixing", "tab:olive"),
    ("brems", "p bremsstrahlung", "tab:red"),
)


@figure_style()
def plot_standard_recipe(
    doc: dict[str, Any], path: str | os.PathLike[str], *, force: bool = False
) -> None:
    """The data-driven A′ yield (Eq. 6) beside the standard recipe (``standard_recipe``), its
    main channels and, below, the ratio data-driven / standard against mass: with |F| = 1
    (FORESEE's convention) and with the decays' transition form factors."""
    from matplotlib.figure import Figure

    sr, ap = doc["standard_recipe"], doc["aprime"]
    edges = np.asarray(sr["bin_edges"], dtype=float)
    y = _pos(ap["per_pot_per_eps2"])
    fig = Figure(figsize=(9, 9))
    ax, rx = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [2.2, 1], "hspace": 0.05}
    )
    ax.stairs(y, edges, color="black", lw=2, label="data-driven (Eq. 6)")
    ax.stairs(_pos(sr["per_pot_per_eps2"]), edges, color="tab:blue", lw=2,
              label="standard recipe, all channels")  # fmt: skip
    if "per_pot_per_eps2_foresee" in sr:
        ax.stairs(_pos(sr["per_pot_per_eps2_foresee"]), edges, color="tab:blue", lw=1.2, ls=":",
                  label="FORESEE's channels only")  # fmt: skip
    for key, label, color in _RECIPE_LINES:
        if key in sr["channels"]:
            ax.stairs(_pos(sr["channels"][key]), edges, color=color, lw=1, ls="--", label=label)
    ax.set_yscale("log")
    finite = y[np.isfinite(y)]
    if finite.size:
        ax.set_ylim(finite.min() / 30, finite.max() * 5)
    ax.set_ylabel(r"$N_{A'} / (N_{\mathrm{POT}}\, \varepsilon^2)$")
    src = sr.get("meson_yields_source", {}).get("kind", "?")
    ax.set_title(f"Data-driven vs standard recipe (mesons per POT: {src})", fontsize=16)
    ax.legend(fontsize=10, ncol=2)
    r, re = _pos(sr["ratio_data_driven"]), np.nan_to_num(_pos(sr["ratio_data_driven_err"]))
    rx.stairs(r, edges, color="tab:blue", lw=1.5, label=r"|F| = 1 (FORESEE)")
    rx.stairs(r + re, edges, baseline=np.clip(r - re, 1e-3, None), fill=True, color="tab:blue",
              alpha=0.25)  # fmt: skip
    rff = sr.get("ratio_data_driven_form_factors")
    if rff is not None:
        rx.stairs(_pos(rff), edges, color="black", lw=1.2, label="with form factors")
    rx.axhline(1.0, color="grey", lw=1)
    rx.set_yscale("log")
    rx.set_ylim(0.1, 20)
    rx.set_ylabel("data / recipe")
    rx.set_xlabel(r"$m_{A'}$ [GeV]")
    rx.set_xlim(edges[0], edges[-1])
    rx.legend(fontsize=10)
    _save(fig, path, force, doc.get("meta"))
