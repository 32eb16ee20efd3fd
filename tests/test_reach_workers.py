"""The reach's mass points on worker processes (``reach.workers``, ``gammastar reach --workers``;
gammastar.reach.scan.workers): the same results as one process, the number recorded, errors
as in one process."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from _tolerance import EPS64, reorder_tol
from test_reach import NA62_LIKE, NA62_STATS, cli_reach_config, make_config, synthetic_yields

from gammastar.errors import ConfigError, InputError
from gammastar.physics.sampling import ParametricSampler
from gammastar.reach.scan import scan, workers
from gammastar.reach.scan.settings import ScanResult, ScanSettings
from gammastar.reach.signal import BOUNDARY_XTOL
from gammastar.source.geometry import Geometry
from gammastar.source.production import load_yields

SAMPLES = 1500

# A worker computes a mass point's signal with the same code and the same seed as the scan's
# own process; what may differ is the order of roundings (BLAS on one thread there). The
# acceptance is a mean over SAMPLES samples, so it and N_sig move by at most
# reorder_tol(SAMPLES, scale). A limit is a root in ln s found to brentq's xtol 1e-6 + rtol 1e-7
# |ln s| (reach.stats.exact.limit; |ln s| < 10 here): two searches on functions equal to their
# rounding differ by at most twice that. A boundary is a root in ln ε to BOUNDARY_XTOL, moved
# by the limit's difference over the slope d ln N_sig / d ln ε, at least 1 at a boundary here
# (N_sig ∝ ε² for long lifetimes, falling exponentially at ε_high).
LIMIT_REL = 2 * (1e-6 + 1e-7 * 10)


def settings(tmp_path, **kw):
    y = load_yields(synthetic_yields(tmp_path / "y.json"))
    return ScanSettings(
        geometry=Geometry(**NA62_LIKE),
        yields=y,
        n_pot=1.4e17,
        channels=("mumu", "ee"),
        background=NA62_STATS["background"],
        background_kappa=NA62_STATS["background_kappa"],
        n_pot_unc=0.2,
        efficiency_uncertainty=0.029,
        samples=SAMPLES,
        seed=11,
        **kw,
    )


def assert_same_grid(got, want):
    np.testing.assert_allclose(
        got, want, rtol=0, atol=reorder_tol(SAMPLES, np.abs(want).max(), EPS64)
    )


def assert_same_scan(par: ScanResult, ser: ScanResult, limit_rel: float = LIMIT_REL) -> None:
    """Every number of two scans of one grid within the tolerances above (``limit_rel``: the
    limits' relative tolerance, the method's root search's)."""
    assert_same_grid(par.nsig, ser.nsig)
    assert_same_grid(par.acceptance, ser.acceptance)
    if ser.acceptance_members is not None:
        assert par.acceptance_members is not None
        assert_same_grid(par.acceptance_members, ser.acceptance_members)
    assert [lim is None for lim in par.limits] == [lim is None for lim in ser.limits]
    for a, b in zip(par.limits, ser.limits, strict=True):
        if b is not None:
            assert a is not None
            assert a.method == b.method
            for band, v in b.expected.items():
                assert a.expected[band] == pytest.approx(v, rel=limit_rel)
    assert set(par.boundaries) == set(ser.boundaries)
    for band, pair in ser.boundaries.items():
        for got, want in zip(par.boundaries[band], pair, strict=True):
            assert np.array_equal(np.isnan(got), np.isnan(want)), band
            ok = ~np.isnan(want)
            tol = 2 * BOUNDARY_XTOL + limit_rel
            np.testing.assert_allclose(np.log(got[ok]), np.log(want[ok]), rtol=0, atol=tol)
    assert par.method == ser.method


def test_workers_give_the_serial_scan(tmp_path, monkeypatch):
    """Two processes (this one and a worker) against one: the same acceptance, N_sig, ensemble
    spread, limits and boundaries at every mass (the 0.2 GeV point has only ee open: a skipped
    μμ channel keeps its index), and the number of processes recorded. While the worker
    starts (seconds: a fresh interpreter's imports) this process computes the last mass not
    yet sent (a mass takes milliseconds here), and the results stay in mass order."""
    here = []
    compute = workers._compute

    def counted(ctx, job, limits):
        here.append(job.index)
        return compute(ctx, job, limits)

    monkeypatch.setattr(workers, "_compute", counted)  # this process's, not the worker's
    st = settings(tmp_path)
    masses, eps = np.array([0.2, 0.3, 0.55, 0.65, 0.8, 1.05]), np.geomspace(1e-8, 1e-3, 18)
    nominal = ParametricSampler()
    # the nominal among the members (its row reused by identity, in a worker too) and a
    # second, harder spectrum: the kinematic_model spread and its second pass
    ensemble = [nominal, ParametricSampler(temperature=0.3)]
    ser = scan(masses, eps, sampler=nominal, settings=st, ensemble=ensemble)
    par = scan(masses, eps, sampler=nominal, settings=dataclasses.replace(st, workers=2),
               ensemble=ensemble)  # fmt: skip
    assert (ser.workers, par.workers) == (1, 2)
    # the serial scan: every mass with a yield here (the synthetic yields start above 0.2)
    assert here[:5] == [1, 2, 3, 4, 5]
    assert here[5:] == [5]  # 4 masses sent (twice the processes), the last one here
    assert ser.kinematic is not None
    assert par.kinematic is not None
    assert [r["mass"] for r in par.kinematic] == [r["mass"] for r in ser.kinematic]
    assert_same_scan(par, ser)


def test_auto_keeps_a_short_scan_here(tmp_path):
    """``auto``: a scan whose masses take far less than WORKER_START_SECONDS (a few ms each)
    starts no process."""
    st = settings(tmp_path, workers="auto")
    res = scan([0.3, 0.5, 0.7], np.geomspace(1e-8, 1e-3, 10), sampler=ParametricSampler(),
               settings=st)  # fmt: skip
    assert res.workers == 1


def test_workers_refuse_what_does_not_pickle(tmp_path):
    """A sampler defined in a function cannot be sent to a worker: one line naming the key
    (``auto`` would keep it here instead)."""

    class Local(ParametricSampler):
        pass

    st = settings(tmp_path, workers=2)
    with pytest.raises(ConfigError, match=r"reach\.workers: 2 processes .* reach\.workers: 1"):
        scan([0.3, 0.5], np.geomspace(1e-8, 1e-3, 10), sampler=Local(), settings=st)


class RefusesAMass(ParametricSampler):
    """The analytic sampler refusing one mass with an input error (module level: a worker
    imports it to unpickle it)."""

    def __init__(self, bad: float) -> None:
        super().__init__()
        self.bad = bad

    def sample(self, mass, n, seed=None):
        if math.isclose(mass, self.bad):
            raise InputError(f"sampler: no kinematics at m = {mass:g} GeV")
        return super().sample(mass, n, seed=seed)


@pytest.mark.slow
def test_a_worker_error_is_the_serial_error(tmp_path):
    """An input error raised in a worker reaches the caller as the same class and one-line
    message as in one process."""
    masses, eps = np.array([0.3, 0.5, 0.7, 0.9]), np.geomspace(1e-8, 1e-3, 10)
    errors = []
    for n in (1, 2):
        st = settings(tmp_path, workers=n)
        with pytest.raises(InputError) as info:
            scan(masses, eps, sampler=RefusesAMass(0.7), settings=st)
        errors.append((type(info.value), str(info.value)))
    assert errors[0] == errors[1] == (InputError, "sampler: no kinematics at m = 0.7 GeV")


@pytest.mark.slow
def test_reach_json_with_workers(tmp_path, monkeypatch):
    """``run_reach`` with ``auto`` forced to a pool (the first two masses here, which time
    the scan, the rest on two processes: this one and a worker) writes the reach.json of one
    process, ``meta.workers`` apart."""
    from _phys_figures import skip_reach_figures

    from gammastar.reach.stage import run_reach

    skip_reach_figures(monkeypatch)
    docs, results = {}, {}
    for n in (1, "auto"):
        if n == "auto":
            monkeypatch.setattr(workers, "WORKER_START_SECONDS", 1e-9)
            monkeypatch.setattr(workers, "allowed_cpus", lambda: 2)
        cfg = make_config(tmp_path / str(n), mass_points=5, samples=SAMPLES, workers=n)
        res = run_reach(cfg)
        docs[n], results[n] = res.document, res.scan
    assert docs[1]["meta"]["workers"] == 1
    assert docs["auto"]["meta"]["workers"] == 2
    assert_same_scan(results["auto"], results[1])
    for key in ("expected", "bands"):
        assert docs["auto"][key].keys() == docs[1][key].keys()
    assert docs["auto"]["signal_limit"]["method"] == docs[1]["signal_limit"]["method"]


def test_cli_workers_option_and_config_key(tmp_path, capsys, monkeypatch):
    """``gammastar reach --workers 1`` and ``--workers auto`` override ``reach.workers``
    (recorded in meta.workers; the 3 masses of a few ms each stay in one process with auto);
    0 processes or a word is refused on the command line and in the config, naming the option
    or key."""
    import json

    from _experiment import stated
    from _phys_figures import skip_reach_figures

    from gammastar.cli import main
    from gammastar.config import config_from_dict

    skip_reach_figures(monkeypatch)
    cfgd = cli_reach_config(tmp_path, mass_points=3, eps_points=12, samples=500, workers=4)
    assert main(["reach", str(tmp_path / "a.yaml"), "--workers", "1"]) == 0
    doc = json.loads((tmp_path / "run" / "reach.json").read_text())
    assert doc["meta"]["workers"] == 1
    assert main(["reach", str(tmp_path / "a.yaml"), "--force", "--workers", "auto"]) == 0
    doc = json.loads((tmp_path / "run" / "reach.json").read_text())
    assert doc["meta"]["workers"] == 1
    capsys.readouterr()
    for bad in ("0", "many"):
        assert main(["reach", str(tmp_path / "a.yaml"), "--force", "--workers", bad]) == 2
        assert "--workers" in capsys.readouterr().err
    for v in (0, "many"):
        bad = stated({**cfgd, "reach": {**cfgd["reach"], "workers": v}})
        with pytest.raises(ConfigError, match=r"reach\.workers: .*integer >= 1\) or 'auto'") as e:
            config_from_dict(bad, str(tmp_path / "b.yaml"))
        assert "\n" not in str(e.value)  # one line, not one per member of the union


@pytest.mark.slow
def test_limits_without_a_warm_start_go_to_the_workers(tmp_path, monkeypatch):
    """``asymptotic`` takes no warm start (its limit does not depend on the previous mass's):
    the workers compute each mass's limit with its signal, none is left to the scan's process,
    and the limits are the serial scan's."""
    import gammastar.reach.scan as scan_module

    # backgrounds of tens of events: the asymptotic formulae's regime
    st = settings(tmp_path, method="asymptotic")
    st = dataclasses.replace(st, background={"mumu": 40.0, "ee": 40.0})
    masses, eps = np.array([0.3, 0.8]), np.geomspace(1e-8, 1e-3, 12)
    ser = scan(masses, eps, sampler=ParametricSampler(), settings=st)

    def here(*args, **kw):
        raise AssertionError("a limit computed in the scan's process")

    monkeypatch.setattr(scan_module, "_mass_limit", here)
    par = scan(masses, eps, sampler=ParametricSampler(),
               settings=dataclasses.replace(st, workers=2))  # fmt: skip
    assert par.workers == 2
    assert ser.method == par.method == "asymptotic"
    # pyhf's TOMS 748 search to rtol 1e-5 (reach.stats.calculators._asymptotic_limit): twice it
    assert_same_scan(par, ser, limit_rel=2e-5)
