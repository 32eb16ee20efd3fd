"""Charge-asymmetric like-sign closure on the NA60-like mock (docs/explanation/method.md).

Claim: with a charge-asymmetric combinatorial background (N++ ≠ N−−) the geometric like-sign
estimate 2R√(N++N−−) (``background.ss_weight: binwise``) gives the generated OS combinatorial
count and a background-subtracted spectrum that closes on the cocktail (χ²/ndf ≈ 1), where the
arithmetic one (``constant``) overestimates it.

Generates a mock with a charge-asymmetric combinatorial background (``--mu-plus``, default
0.6; half of the recorded OS pairs combinatorial; ``--kick``: the toroid-like
charge-dependent acceptance), selects it with the geometric (``ss_weight: binwise``) and the
arithmetic (``constant``) like-sign estimator and compares, per estimator:

* the combinatorial estimate with the generated OS combinatorial count (truth channel);
* ``signal_m`` (raw OS − comb) with the OS pairs of the cocktail (truth channel), χ²/ndf over
  the 89 mass bins (variance: the generated OS combinatorial count of the bin plus the
  estimate's variance);
* ``unfolded_m`` (Σ weight, 1/ε) with the generator's ``truth`` tree (signal sources inside
  the acceptance, no efficiency, η → μμ excluded), above 0.25 GeV, as tests/test_select_closure.

Usage:  python validation/scripts/like_sign_closure.py [--events 3000000] [--mu-plus 0.6]
        [--kick 0] [--seed 7] [--workdir DIR]
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import uproot
from scipy import stats

from gammastar.cocktail_channels import Channel
from gammastar.config import load_config
from gammastar.mock.generate import generate_file
from gammastar.selection.stage import select

REPO = Path(__file__).resolve().parents[2]


def _config(mu_plus: float, kick: float, ss_weight: str):
    cfg = load_config(REPO / "analysis" / "na60_like.yaml")
    m = cfg.mock
    mock = m.model_copy(
        update={
            "combinatorial": m.combinatorial.model_copy(
                update={"mu_plus_fraction": mu_plus, "os_fraction": 0.5, "pilot_events": 40_000}
            ),
            "detector": m.detector.model_copy(update={"toroid_pt_kick": kick}),
        }
    )
    return cfg.model_copy(
        update={
            "mock": mock,
            "unfold": cfg.unfold.model_copy(
                # 1/ε alone, so that unfolded_m compares with the truth tree (sources inside
                # the acceptance): no acceptance map, no per-pair acceptance
                update={"outside_map": "nearest", "acceptance_map": None,
                        "lepton_acceptance": None, "decay_lambda_theta": 0.0}
            ),
            "background": cfg.background.model_copy(update={"ss_weight": ss_weight}),
        }
    )


def closure(res, path: Path) -> dict[str, float]:
    """The numbers of the module docstring for one select result."""
    h, df = res.histograms, res.pairs
    edges = h["signal_m"].axes[0].edges
    q, ch, m, w = (df[c].to_numpy() for c in ("charge", "channel", "m", "weight"))
    comb = ch == int(Channel.COMBINATORIAL)
    os_ = q == 0
    truth_os = np.histogram(m[os_ & ~comb], bins=edges)[0]
    comb_os = np.histogram(m[os_ & comb], bins=edges)[0]
    sig, cvar = h["signal_m"].values(), h["comb_m"].variances()
    var = comb_os + cvar
    ok = var > 0
    chi2_raw = float(np.sum((sig - truth_os)[ok] ** 2 / var[ok]))
    with uproot.open(path) as f:
        t = f["truth"].arrays(["channel", "m"], library="np")
    truth = np.histogram(t["m"][t["channel"] != int(Channel.ETA_MUMU)], bins=edges)[0]
    unf = h["unfolded_m"].values()
    sigp = os_ & ~comb
    var_u = np.histogram(m[sigp], bins=edges, weights=(w * w - w)[sigp])[0]
    var_u += np.histogram(m[~sigp], bins=edges, weights=(w * w)[~sigp])[0]
    c = 0.5 * (edges[1:] + edges[:-1])
    sel = (c > 0.25) & (truth > 0)
    chi2_unf = float(np.sum((unf - truth)[sel] ** 2 / var_u[sel]))
    est, err = res.counts["comb_estimate"], res.counts["comb_estimate_err"]
    n_comb = int(comb_os.sum())
    return {
        "os": int(os_.sum()),
        "pp": int((q == 2).sum()),
        "mm": int((q == -2).sum()),
        "comb_os_generated": n_comb,
        "comb_estimate": est,
        "comb_estimate_err": err,
        "comb_pull": (est - n_comb) / float(np.sqrt(err**2 + n_comb)),
        "signal_chi2": chi2_raw,
        "signal_ndf": int(ok.sum()),
        "signal_p": float(stats.chi2.sf(chi2_raw, int(ok.sum()))),
        "unfolded_chi2": chi2_unf,
        "unfolded_ndf": int(sel.sum()),
        "unfolded_p": float(stats.chi2.sf(chi2_unf, int(sel.sum()))),
        "signal": res.counts["signal"],
        "unfolded": res.counts["unfolded"],
        "pairs_weight_sum": float(w.sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=3_000_000)
    ap.add_argument("--mu-plus", type=float, default=0.6)
    ap.add_argument("--kick", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="like-sign-closure-"))
    path = work / "mock.root"
    generate_file(
        _config(a.mu_plus, a.kick, "binwise"), path, events=a.events, seed=a.seed, force=True
    )
    out = {"events": a.events, "mu_plus_fraction": a.mu_plus, "toroid_pt_kick": a.kick}
    for est in ("binwise", "constant"):
        res = select(_config(a.mu_plus, a.kick, est), [path], output=work / est, force=True)
        r = closure(res, path)
        out[est] = r
        print(
            f"{est:8s}: comb {r['comb_estimate']:.0f} ± {r['comb_estimate_err']:.0f} vs "
            f"generated {r['comb_os_generated']} ({r['comb_pull']:+.1f}σ); signal χ²/ndf "
            f"{r['signal_chi2']:.1f}/{r['signal_ndf']} (p {r['signal_p']:.2g}); unfolded χ²/ndf "
            f"{r['unfolded_chi2']:.1f}/{r['unfolded_ndf']} (p {r['unfolded_p']:.2g}); signal "
            f"{r['signal']:.1f}, unfolded {r['unfolded']:.1f} = Σ weight {r['pairs_weight_sum']:.1f}"
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
