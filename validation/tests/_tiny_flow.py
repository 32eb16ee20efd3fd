"""A tiny flow recipe and synthetic pairs for the tests that train real flows in seconds (the
same recipe and law as the product's tests/test_flow.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gammastar.config import config_from_dict

TINY = {
    "transforms": 2,
    "bins": 4,
    "hidden_features": [16],
    "epochs": 4,
    "points_per_epoch": 4000,
    "batch_size": 1000,
    "learning_rate": 5e-3,
    "checkpoint_every": 2,
    "workers": 1,
}


def synthetic_pairs(n: int = 20000, seed: int = 0) -> pd.DataFrame:
    """Unit-weight OS pairs with ln q_T ~ N(ln(0.3 + 0.4 m), 0.5), ln E ~ N(ln(20 + 10 m), 0.4),
    m in [0.22, 1.1] falling exponentially (the pairs.parquet columns the flow reads)."""
    rng = np.random.default_rng(seed)
    m = 0.22 + rng.exponential(0.3, 3 * n)
    m = m[m < 1.1][:n]
    k = m.size
    return pd.DataFrame({
        "event": np.arange(k), "m": m,
        "qT": rng.lognormal(np.log(0.3 + 0.4 * m), 0.5),
        "E": rng.lognormal(np.log(20.0 + 10.0 * m), 0.4),
        "charge": np.zeros(k, dtype=np.int8), "weight_raw": 1.0, "weight": 1.0,
        "channel": np.ones(k, dtype=np.int32),
    })  # fmt: skip


def make_config(tmp_path, **flow):
    """A config of the tiny recipe writing into ``tmp_path/run`` (seed 7)."""
    return config_from_dict(
        {
            "name": "t",
            "output": str(tmp_path / "run"),
            "seed": 7,
            "flow": {**TINY, **flow},
            # the experiment's keys (no defaults without `mock:`): the mock's beam; no
            # selection here, so no pair efficiency (the mock's map is refused outside the mock)
            "beam": {"energy": 400.0, "interaction_lengths": 0.01},
            "unfold": {"efficiency_map": None},
        },
        source=str(tmp_path / "a.yaml"),
    )
