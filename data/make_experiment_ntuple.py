"""Make the ntuple and efficiency map of Tutorial 3 (docs/tutorial/03-own-data-to-reach.md).

Run from the folder the files should go to::

    python ../data/make_experiment_ntuple.py [--events N] [--seed S]

It writes two files the way a fixed-target dimuon experiment would, nothing in them the
package's mock would write:

* ``tx_efficiency.root``: the experiment's pair efficiency, a TH2D ``h_eff_m_pt`` (x = dimuon
  mass, 0–1.5 GeV in 20 MeV bins; y = pair pT, 0–4 GeV in 100 MeV bins), values at the bin
  centres of ε(m, pT) = 0.85 · [1 − 0.6 exp(−(m' − 0.2)/0.25)] · [1 − 0.3 exp(−pT/0.5)],
  m' = max(m, 0.2 GeV): a smooth stand-in of the same shape as data/make_efficiency_map.py's.
* ``tx_dimuons.root``: a TTree ``reco``, one entry per recorded event, with ``run`` (int32),
  ``evt_number`` (int64), ``nmu`` (int32) and the jagged muon momenta in spectrometer
  coordinates, ``mu_p`` (GeV), ``mu_theta``, ``mu_phi`` (rad, float32), ``mu_q`` (int32):
  the ``jagged_pthetaphi`` layout under the experiment's own names. No truth branches, no
  metadata.

The events are the package's NA60-like mock (``gammastar.generate`` on
``analysis/na60_like.yaml``) with the target changed to tungsten, 0.02 λ_I thick, and this
map applied as the detector's efficiency, so that the physics is sensible and the map is the
one the events were recorded with. The experiment's exposure, the protons on target that
its beam monitors would give, is printed (the mock's equivalent N_POT); the tutorial's config
states it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import awkward as ak
import hist
import numpy as np
import uproot
import yaml

import gammastar

REPO = Path(__file__).resolve().parents[1]
NTUPLE, EFFICIENCY = "tx_dimuons.root", "tx_efficiency.root"
EPS0, M0, A, B, C, D = 0.85, 0.20, 0.60, 0.25, 0.30, 0.50

TARGET = {  # tungsten (PDG atomic and nuclear properties: A = 183.84, λ_I = 191.9 g/cm²)
    "energy": 400.0,
    "target": "W",
    "interaction_lengths": 0.02,
    "target_mass_number": 183.84,
    "sigma_inel_mb": 1591.0,  # A/(N_A λ_I)
}


def efficiency(m: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """ε(m, pT) of the module docstring (GeV)."""
    mm = np.maximum(m, M0)
    return EPS0 * (1.0 - A * np.exp(-(mm - M0) / B)) * (1.0 - C * np.exp(-pt / D))


def write_efficiency(path: Path) -> None:
    """The experiment's map, a TH2D ``h_eff_m_pt``, to ``path``."""
    h = hist.Hist(
        hist.axis.Regular(75, 0.0, 1.5, name="m", label="m [GeV]"),
        hist.axis.Regular(40, 0.0, 4.0, name="pT", label="p_T [GeV]"),
        storage=hist.storage.Double(),
    )
    m, pt = np.meshgrid(h.axes[0].centers, h.axes[1].centers, indexing="ij")
    h.view()[...] = efficiency(m, pt)
    with uproot.recreate(path) as f:
        f["h_eff_m_pt"] = h


def mock_config(work: Path, map_path: Path, events: int, seed: int) -> Path:
    """The shipped NA60-like mock config on the tungsten target with the experiment's map."""
    data = yaml.safe_load((REPO / "analysis" / "na60_like.yaml").read_text(encoding="utf-8"))
    data.update(name="tx_mock", output=str(work / "run"), seed=seed)
    data["beam"] = {**TARGET, "n_pot": "from_input"}
    data["mock"].update(events=events, efficiency_map=str(map_path), target="W")
    data["unfold"]["efficiency_map"] = str(map_path)
    path = work / "tx_mock.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def convert(mock: Path, path: Path) -> int:
    """The mock's recorded muons to the experiment's tree ``reco``; returns the entries."""
    with uproot.open(mock) as f:
        ev = f["events"].arrays(["event", "muon_px", "muon_py", "muon_pz", "muon_charge"])
    px, py, pz = ev["muon_px"], ev["muon_py"], ev["muon_pz"]
    pt = np.hypot(px, py)
    tree = {
        "run": np.full(len(ev), 4711, dtype=np.int32),
        "evt_number": ak.to_numpy(ev["event"]).astype(np.int64),
        "mu": ak.zip(
            {
                "p": ak.values_astype(np.hypot(pt, pz), np.float32),
                "theta": ak.values_astype(np.arctan2(pt, pz), np.float32),
                "phi": ak.values_astype(np.arctan2(py, px), np.float32),
                "q": ak.values_astype(ev["muon_charge"], np.int32),
            }
        ),
    }
    with uproot.recreate(path) as f:
        # one counter "nmu" for the jagged record's branches "mu_p", "mu_theta", ...
        f.mktree(
            "reco",
            {k: v.type if k == "mu" else v.dtype for k, v in tree.items()},
            field_name=lambda outer, inner: f"{outer}_{inner}",
            counter_name=lambda counted: f"n{counted}",
        )
        f["reco"].extend(tree)
    return len(ev)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=600_000, help="generated mock sources")
    parser.add_argument("--seed", type=int, default=2718)
    parser.add_argument("--out", type=Path, default=Path("."), help="folder of the two files")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    map_path = (args.out / EFFICIENCY).resolve()
    write_efficiency(map_path)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = mock_config(Path(tmp), map_path, args.events, args.seed)
        res = gammastar.generate(cfg, Path(tmp) / "mock.root", progress=False)
        n = convert(res.path, args.out / NTUPLE)
        meta = json.loads(str(uproot.open(res.path)["meta"]))
    print(f"wrote {args.out / NTUPLE} ({n} events, tree 'reco') and {args.out / EFFICIENCY}")
    print(f"protons on target: {meta['n_pot']:.4g}")


if __name__ == "__main__":
    main()
