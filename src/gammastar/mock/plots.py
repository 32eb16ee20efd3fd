"""Plots of a mock ntuple: the NA60-like Fig. 1 analogue (paper Sec. III A).

* ``mass_spectra``: OS dimuon mass by truth channel (stacked) with the ++ and −− spectra
  and the like-sign estimate 2√(N++ N−−) of the combinatorial OS background, log y;
* ``pt_spectra``: pair pT of the recorded OS pairs by channel, log y.

With electrons in the file (``mock.leptons`` holding ``e``) the same two plots of the ee pairs
are drawn too (``mock_mass_ee``, ``mock_pt_ee``; 0–1.2 GeV).

Use :func:`plot_file` (also ``gammastar generate --plots DIR``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gammastar.cocktail_channels import Channel
from gammastar.core.figures import figure_style, save_figure
from gammastar.errors import InputError

COLORS = {
    Channel.COMBINATORIAL: "0.75",
    Channel.ETA_DALITZ: "tab:orange",
    Channel.ETA_MUMU: "tab:pink",
    Channel.ETAPRIME_DALITZ: "tab:olive",
    Channel.OMEGA_MUMU: "tab:blue",
    Channel.OMEGA_DALITZ: "tab:cyan",
    Channel.RHO_MUMU: "tab:purple",
    Channel.PHI_MUMU: "tab:green",
    Channel.PI0_DALITZ_EE: "tab:red",
    Channel.ETA_DALITZ_EE: "tab:orange",
    Channel.ETAPRIME_DALITZ_EE: "tab:olive",
    Channel.OMEGA_EE: "tab:blue",
    Channel.OMEGA_DALITZ_EE: "tab:cyan",
    Channel.RHO_EE: "tab:purple",
    Channel.PHI_EE: "tab:green",
    Channel.CONVERSION: "tab:brown",
    Channel.COMBINATORIAL_EE: "0.75",
}
"""One colour per channel, the same in every plot."""


def flavours(path: str | Path) -> list[str]:
    """The lepton collections of a mock file's ``events`` tree (``muon``, ``electron``)."""
    import uproot

    try:
        with uproot.open(path) as f:
            keys = set(f["events"].keys())
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except Exception as err:  # noqa: BLE001 - any unreadable file is a user input error
        raise InputError(f"{path}: not a readable mock ntuple ({err})") from None
    return [c for c in ("muon", "electron") if f"{c}_E" in keys]


def pair_table(path: str | Path, lepton: str = "muon") -> dict[str, np.ndarray]:
    """Reconstructed pair variables (m, pT, charge sum, channel) of a mock file's events
    (the ``lepton`` collection: ``muon`` or ``electron``)."""
    import awkward as ak
    import uproot

    names = [f"{lepton}_{k}" for k in ("px", "py", "pz", "E", "charge")]
    try:
        with uproot.open(path) as f:
            ev = f["events"].arrays([*names, "truth_channel"])
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except Exception as err:  # noqa: BLE001 - any unreadable file is a user input error
        raise InputError(f"{path}: not a readable mock ntuple ({err})") from None
    two = ak.num(ev[names[3]]) >= 2
    ev = ev[two]

    def first2(x: Any) -> tuple[np.ndarray, np.ndarray]:
        return ak.to_numpy(x[:, 0]).astype(np.float64), ak.to_numpy(x[:, 1]).astype(np.float64)

    px, py, pz, e = (first2(ev[k]) for k in names[:4])
    q1, q2 = first2(ev[names[4]])
    sx, sy, sz, se = px[0] + px[1], py[0] + py[1], pz[0] + pz[1], e[0] + e[1]
    m = np.sqrt(np.clip(se**2 - sx**2 - sy**2 - sz**2, 0.0, None))
    return {
        "m": m,
        "pT": np.hypot(sx, sy),
        "charge": (q1 + q2).astype(np.int8),
        "channel": ak.to_numpy(ev.truth_channel).astype(np.int32),
    }


def _save(fig: Any, out: Path, force: bool) -> Path:
    return save_figure(fig, out, force=force, dpi=120)


def plot_file(
    path: str | Path,
    outdir: str | Path,
    *,
    bins: int = 110,
    mass_range: tuple[float, float] = (0.2, 1.3),
    fmt: str = "png",
    force: bool = True,
) -> list[Path]:
    """Draw the OS/SS mass spectra by channel and the pT spectra of a mock file.

    Arguments:
        path: the mock ROOT file.
        outdir: output directory (created).
        bins: number of mass bins over ``mass_range``.
        fmt: image format (png, pdf, ...).
        force: overwrite existing plots.

    Returns:
        The written files (``mock_mass.<fmt>``, ``mock_pt.<fmt>``; with electrons also
        ``mock_mass_ee.<fmt>``, ``mock_pt_ee.<fmt>``).
    """
    written = []
    for lepton in flavours(path):
        if lepton == "muon":
            written += _plot(path, outdir, "muon", bins, mass_range, fmt, force)
        else:
            written += _plot(path, outdir, "electron", 120, (0.0, 1.2), fmt, force)
    return written


def _plot(path, outdir, lepton, bins, mass_range, fmt, force) -> list[Path]:
    import mplhep
    from matplotlib.figure import Figure

    t = pair_table(path, lepton)
    ll, suffix = (r"\mu\mu", "") if lepton == "muon" else ("ee", "_ee")
    outdir = Path(outdir)
    edges = np.linspace(mass_range[0], mass_range[1], bins + 1)
    os_ = t["charge"] == 0
    channels = [c for c in Channel if np.any(os_ & (t["channel"] == int(c)))]
    labels = [c.label for c in channels]
    written = []

    with figure_style():
        fig = Figure(figsize=(9, 7))
        ax = fig.subplots()
        hs = [np.histogram(t["m"][os_ & (t["channel"] == int(c))], edges)[0] for c in channels]
        if hs:
            mplhep.histplot(
                hs,
                edges,
                stack=True,
                histtype="fill",
                label=labels,
                color=[COLORS[c] for c in channels],
                ax=ax,
                alpha=0.7,
            )
        h_os = np.histogram(t["m"][os_], edges)[0]
        h_pp = np.histogram(t["m"][t["charge"] == 2], edges)[0]
        h_mm = np.histogram(t["m"][t["charge"] == -2], edges)[0]
        mplhep.histplot(h_os, edges, histtype="errorbar", color="k", label="OS (all)", ax=ax)
        mplhep.histplot(h_pp, edges, histtype="step", color="tab:red", label="$++$", ax=ax)
        mplhep.histplot(h_mm, edges, histtype="step", color="tab:blue", label="$--$", ax=ax)
        mplhep.histplot(
            2.0 * np.sqrt(h_pp * h_mm),
            edges,
            histtype="step",
            color="tab:gray",
            ls="--",
            label="2 sqrt(N++ N--)",
            ax=ax,
        )
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.5)
        ax.set_xlabel(rf"$m_{{{ll}}}$ [GeV]")
        ax.set_ylabel(f"pairs / {1000 * (edges[1] - edges[0]):.0f} MeV")
        ax.set_ylim(top=30 * max(1, h_os.max()))
        ax.legend(fontsize="x-small", ncol=3, loc="upper center")
        ax.set_title("NA60-like mock data", fontsize="small")
        written.append(_save(fig, outdir / f"mock_mass{suffix}.{fmt}", force))

        fig = Figure(figsize=(9, 7))
        ax = fig.subplots()
        pt_edges = np.linspace(0.0, 3.0, 61)
        for c in channels:
            sel = os_ & (t["channel"] == int(c))
            h = np.histogram(t["pT"][sel], pt_edges)[0]
            mplhep.histplot(h, pt_edges, histtype="step", label=c.label, color=COLORS[c], ax=ax)
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.5)
        ax.set_xlabel(r"pair $p_T$ [GeV]")
        ax.set_ylabel("OS pairs / 50 MeV")
        ax.legend(fontsize="x-small")
        written.append(_save(fig, outdir / f"mock_pt{suffix}.{fmt}", force))
    return written
