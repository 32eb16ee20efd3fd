"""The impact of each named nuisance on the excluded signal strength, and its ranking plot.

Offers :func:`impact` (each nuisance at ±1σ, the upper limit on the signal redone) and
:func:`plot_impact` (the ranking plot of the reach report).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from gammastar.core.figures import figure_style, save_figure
from gammastar.reach.stats import upper_limit

__all__ = ["impact", "plot_impact"]



def impact(
    model: Any,
    boundaries: Callable[[float], tuple[float, float]],
    *,
    cl: float,
    method: str,
    seed: int | None,
    s_up: float,
) -> dict[str, dict[str, Any]]:
    r"""Shift of s_up and of ε_low/ε_high at one mass with each nuisance fixed at ±1σ.

    A rate nuisance of the signal (``n_pot`` and the named ones, log-normal width
    ln(1 + r)) fixed at ±1σ scales the signal by (1 + r)^{±1} (a two-sided one by 1 + r and
    1/(1 + r₋)) and leaves the other nuisances free: s_up(±1σ) = s_up(model without it)
    divided by that scale, in events of the nominal
    prediction N_sig(m, ε) (so that the ε boundaries follow from N_sig = s_up(±1σ)). A
    background ``bkg_<channel>`` fixed at ±1σ scales that background by κ^{±1}. The ranking
    follows cabinetry's impact (pre-fit, ±1σ, the rest profiled; here integrated, as in the
    exact construction).

    Arguments:
        model: the mass point's :class:`gammastar.reach.stats.model.Model`.
        boundaries: ``s → (ε_low, ε_high)`` where N_sig(ε) = s at this mass (the reach's
            :func:`gammastar.reach.signal.eps_boundaries` on its N_sig; passed in: the reach
            imports this module).
        cl, method, seed: as the reach's limit.
        s_up: the nominal median expected limit.

    Returns:
        ``{name: {"+1": {"s_up", "eps_low", "eps_high"}, "-1": {...}}}``.

    References:
        cabinetry ``fit.ranking`` (impact of a nuisance fixed at ±1σ); Cousins & Highland,
        Nucl. Instrum. Meth. A 320 (1992) 331 (integrated nuisances).
    """
    import copy


    def limit(mod: Any) -> float:
        return float(upper_limit(mod, cl=cl, method=method, seed=seed, hint=s_up).expected["0"])

    def row(s: float) -> dict[str, float | None]:
        lo, hi = boundaries(s)
        return {
            "s_up": s,
            "eps_low": float(lo) if np.isfinite(lo) else None,
            "eps_high": float(hi) if np.isfinite(hi) else None,
        }

    out: dict[str, dict[str, Any]] = {}
    rates = {"n_pot": (model.n_pot_unc,) * 2,
             **{k: (r, model.down(k)) for k, r in model.signal_nuisances.items()}}  # fmt: skip
    for name, (r, r_down) in rates.items():
        if not (r > 0 or r_down > 0):
            continue
        mod = copy.deepcopy(model)
        if name == "n_pot":
            mod.n_pot_unc = 0.0
        else:
            mod.signal_nuisances[name] = 0.0
            mod.signal_down.pop(name, None)
        base = limit(mod)
        out[name] = {"+1": row(base / (1.0 + r)), "-1": row(base * (1.0 + r_down))}
    for ci, c in enumerate(model.channels):
        if not c.bkg_kappa > 1.0 or not np.any(c.background > 0):
            continue
        res = {}
        for key, power in (("+1", 1.0), ("-1", -1.0)):
            mod = copy.deepcopy(model)
            ch = mod.channels[ci]
            ch.background = ch.background * c.bkg_kappa**power
            ch.bkg_kappa = 1.0
            res[key] = row(limit(mod))
        out[f"bkg_{c.name}"] = res
    return out


def plot_impact(table: Mapping[str, Any], path: Any = None, *, title: str = "") -> Any:
    """The impact table as a ranking plot: per nuisance (rows, largest first) the relative
    shift of the median expected s_up at +1σ (filled) and −1σ (open), one marker colour per
    mass (cabinetry's ranking plot, on s_up instead of the POI); the ratio s_up(±1σ)/s_up on a
    logarithmic axis when a nuisance moves it by more than a factor 1.5 (a log-normal's ±1σ
    are then symmetric), the masses' legend beside the axes.

    Returns:
        The matplotlib figure (saved to ``path`` when given).
    """
    import matplotlib.pyplot as plt

    nominal = np.asarray(table["nominal"]["s_up"], dtype=float)
    names = list(table["nuisances"])
    shifts = {
        n: {
            side: np.asarray(table["nuisances"][n][side]["s_up"], dtype=float) / nominal - 1.0
            for side in ("+1", "-1")
        }
        for n in names
    }
    names.sort(key=lambda n: np.nanmax(np.abs(np.r_[shifts[n]["+1"], shifts[n]["-1"]])))
    ratios = 1.0 + np.array([np.r_[s["+1"], s["-1"]] for s in shifts.values()]).ravel()
    ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
    log = ratios.size > 0 and float(np.max(np.abs(np.log(ratios)))) > np.log(1.5)
    off = 1.0 if log else 0.0  # plotted: the ratio on a log axis, else the relative shift
    with figure_style():
        fig, ax = plt.subplots(figsize=(10, 2.2 + 0.6 * len(names)), layout="constrained")
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for k, m in enumerate(table["mass"]):
            y = np.arange(len(names)) + 0.15 * (k - (len(table["mass"]) - 1) / 2)
            c = colours[k % len(colours)]
            up = [shifts[n]["+1"][k] + off for n in names]
            ax.scatter(up, y, color=c, label=f"m = {m:.3f} GeV")
            dn = [shifts[n]["-1"][k] + off for n in names]
            ax.scatter(dn, y, facecolors="none", edgecolors=c)
        ax.axvline(off, color="grey", lw=1)
        ax.set_yticks(np.arange(len(names)), names)
        if log:
            from matplotlib import ticker

            half = 1.15 * float(np.max(np.abs(np.log(ratios))))
            ax.set_xscale("log")
            ax.set_xlim(np.exp(-half), np.exp(half))
            ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 3.0)))
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_locator(ticker.NullLocator())
            ax.set_xlabel(r"$s_{\rm up}(\pm1\sigma)/s_{\rm up}$ (filled: +1σ, open: −1σ)")
        else:
            ax.set_xlabel(r"$s_{\rm up}(\pm1\sigma)/s_{\rm up} - 1$ (filled: +1σ, open: −1σ)")
        ax.margins(x=0.08)
        fig.legend(fontsize="x-small", loc="outside lower center", ncols=min(len(table["mass"]), 2))
        if title:
            ax.set_title(title, fontsize="small")
        if path is not None:

            save_figure(fig, path, dpi=100)
    return fig
