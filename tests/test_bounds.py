"""Published bounds on the reach plot (gammastar.formats.bounds, reach.compare_with): HEPData YAML
tables and CSV files read in GeV and ε whatever their units, drawn on the reach figure and listed
in the report, and a bad file refused with one line naming the file and the column.

The bound files under tests/data/bounds are made-up numbers (their headers say so): the tests
need a contour, not a published one. PHENIX's HEPData table (a copy beside the repository,
../shared/data/bounds; skipped without it) is checked against its paper's stated limit; the
other published formats and the HEPData download: tests/test_bounds_published.py.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from _experiment import stated_config, stated_yaml
from _scans import made_up_scan

from gammastar.cli import main
from gammastar.errors import ConfigError, InputError
from gammastar.formats.bounds import read_bound, read_config_bounds
from gammastar.formats.bounds.draw import draw_bounds
from gammastar.reach.plots import plot_reach
from gammastar.reach.scan.settings import ScanResult

DATA = Path(__file__).parent / "data" / "bounds"
ISLAND = DATA / "synthetic_island.yaml"
BAND = DATA / "synthetic_band.csv"
PHENIX = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bounds"
    / "hepdata_ins1313628_phenix_figure5.yaml"
)  # fmt: skip


@pytest.fixture
def phenix() -> Path:
    """PHENIX's HEPData table, as the record ships it (skip when the copy is absent)."""
    if not PHENIX.is_file():
        pytest.skip(f"PHENIX's HEPData table is not at {PHENIX} (../shared/data/bounds)")
    return PHENIX


def test_a_hepdata_table_in_mev_and_eps_squared_is_read_in_gev_and_eps():
    b = read_bound(ISLAND)
    assert b.label == "synthetic island (test data)"
    assert b.reference.startswith("none: a made-up contour")
    assert b.shape == "contour"
    assert b.closed
    # M_{A'} in MeV/c^2 -> GeV; ε² -> ε (the file's numbers: 250 MeV, ε² = 1e-12, 4e-14, ...)
    assert b.mass == pytest.approx([0.25, 0.4, 0.6, 0.4, 0.25], rel=1e-15)
    assert b.eps == pytest.approx([1e-6, 2e-7, 1e-6, 1e-5, np.sqrt(4e-11)], rel=1e-15)
    assert b.eps_high is None
    assert "square root" in b.eps_from


def test_a_csv_band_runs_along_the_lower_edge_and_back_along_the_upper():
    b = read_bound(BAND, label="my label")
    assert b.label == "my label"  # the config's label wins over the file's
    assert b.shape == "band"
    # the row with '-' (nothing excluded at 0.45 GeV) is left out
    assert b.mass == pytest.approx([0.22, 0.30, 0.60])
    xs, ys = b.polygon()
    assert xs == pytest.approx([0.22, 0.30, 0.60, 0.60, 0.30, 0.22])
    assert ys == pytest.approx([2e-6, 1e-6, 1.5e-6, 8e-6, 2e-5, 5e-6])


@pytest.mark.parametrize(
    ("header", "row", "mass_gev"),
    [
        ("m [GeV], eps", "1e-5", 0.3),
        ("mass [MeV], epsilon", "1e-5", 0.0003),
        ("M_{A'} [GeV/c^2], ε", "1e-5", 0.3),
        ("$m_{A^\\prime}$ [GeV], $\\varepsilon$", "1e-5", 0.3),
        ("m_A' [MeV/c2], eps_high, eps_low", "2e-5, 1e-5", 0.0003),
    ],
)
def test_column_spellings(tmp_path, header, row, mass_gev):
    path = tmp_path / "b.csv"
    path.write_text(f"{header}\n0.3, {row}\n0.5, {row}\n")
    b = read_bound(path)
    assert b.mass[0] == pytest.approx(mass_gev)
    assert b.eps[0] == pytest.approx(1e-5)  # the lower edge, whatever the column order
    if b.eps_high is not None:
        assert b.eps_high[0] == pytest.approx(2e-5)


BAD = [
    # (file name, content, what the one line must name)
    ("typo.csv", "m [GeV], epsilom\n0.3, 1e-5\n0.4, 2e-5\n", "column 'epsilom'"),
    ("empty.csv", "m [GeV], eps\n", "no points under the columns 'm', 'eps'"),
    ("one.csv", "m [GeV], eps\n0.3, 1e-5\n", "1 complete point(s)"),
    ("kev.csv", "m [keV], eps\n300, 1e-5\n400, 2e-5\n", "column 'm': mass in keV"),
    ("nounit.csv", "m, eps\n0.3, 1e-5\n0.4, 2e-5\n", "column 'm': mass in none"),
    ("epsunit.csv", "m [GeV], eps [GeV]\n0.3, 1e-5\n0.4, 2e-5\n", "column 'eps': ε is dimension"),
    ("nan.csv", "m [GeV], eps\n0.3, nan\n0.4, 2e-5\n", "column 'eps', point 1"),
    ("negative.csv", "m [GeV], eps\n0.3, -1e-5\n0.4, 2e-5\n", "column 'eps', point 1"),
    ("word.csv", "m [GeV], eps\n0.3, small\n0.4, 2e-5\n", "'small' is not a number"),
    ("twoeps.csv", "m [GeV], eps, epsilon\n0.3, 1, 2\n0.4, 1, 2\n", "suffixes low and high"),
    ("ragged.csv", "m [GeV], eps\n0.3\n", "data row 1 has 1 fields"),
    ("shape.csv", "# shape: island\nm [GeV], eps\n0.3, 1\n0.4, 1\n", "'# shape: island'"),
    ("bounds.txt", "m [GeV], eps\n", "cannot tell the bound format from the suffix '.txt'"),
    (
        "bins.yaml",
        (
            "independent_variables:\n- header: {name: m, units: GeV}\n"
            "  values: [{value: 0.1}, {value: 0.2}]\n"
            "dependent_variables:\n- header: {name: eps}\n"
            "  values: [{low: 1e-5, high: 2e-5}, {low: 1e-5, high: 2e-5}]\n"
        ),
        "column 'eps': bins",
    ),
    (
        "typo.yaml",
        (
            "independent_variables:\n- header: {name: m, units: GeV}\n"
            "  values: [{value: 0.1}, {value: 0.2}]\n"
            "dependent_variables:\n- header: {name: epsillon}\n"
            "  values: [{value: 1e-5}, {value: 2e-5}]\n"
        ),
        "column 'epsillon'",
    ),
    ("notatable.yaml", "a: 1\n", "not a HEPData table"),
]


@pytest.mark.parametrize(("name", "content", "names"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_bound_file_is_one_line_naming_the_file_and_the_column(
    tmp_path, name, content, names
):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError) as err:
        read_bound(path)
    text = str(err.value)
    assert len(text.splitlines()) == 1
    assert text.startswith(str(path))
    assert names in text


def test_a_missing_bound_file(tmp_path):
    with pytest.raises(InputError, match="bound file not found"):
        read_bound(tmp_path / "nowhere.yaml")


def _config(tmp_path, compare_with, output="run"):
    return stated_config(
        {"name": "t", "output": output, "reach": {"compare_with": compare_with}},
        source=str(tmp_path / "cfg.yaml"),
    )


def test_compare_with_paths_are_relative_to_the_config(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "band.csv").write_text(BAND.read_text())
    cfg = _config(tmp_path, ["b/band.csv", {"file": str(ISLAND), "style": "dashed"}])
    (band, s1), (island, s2) = read_config_bounds(cfg)
    assert band.source == tmp_path / "b" / "band.csv"
    assert s1 == "filled"
    assert island.label == "synthetic island (test data)"
    assert s2 == "dashed"
    with pytest.raises(ConfigError, match="style"):
        _config(tmp_path, [{"file": "x.csv", "style": "dotted"}])


def test_the_reach_refuses_a_bad_bound_file_before_its_scan(tmp_path, capsys):
    """`gammastar reach` with a bound file in keV: exit 2, one line naming the file and the
    column, before anything is read or written (the yields file does not even exist)."""
    (tmp_path / "kev.csv").write_text("m [keV], eps\n300, 1e-5\n400, 2e-5\n")
    (tmp_path / "c.yaml").write_text(
        stated_yaml(
            "reach: {yields: nowhere.json, flow: null, n_pot: 1.0e17, target_interaction_lengths: "
            "dump, background: {mumu: 0}, background_kappa: {mumu: 1}, efficiency_uncertainty: 0, "
            "n_pot_rel_uncertainty: 0, compare_with: [kev.csv]}\n"
        )
    )
    assert main(["reach", str(tmp_path / "c.yaml"), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(tmp_path / "kev.csv") in err
    assert "column 'm': mass in keV" in err
    assert not (tmp_path / "o" / "reach.json").exists()


def _scan(masses=None) -> ScanResult:
    """A reach with a made-up Brazil band between 0.2 and 0.8 GeV."""
    lo, hi = np.full(7, 1e-7), np.full(7, 1e-4)
    bands = {b: (lo * f, hi / f) for b, f in (("0", 1), ("-2", 0.5), ("-1", 0.7), ("+1", 1.4))}
    bands["+2"] = (lo * 2, hi / 2)
    return made_up_scan(bands, masses)


def test_the_reach_plot_draws_each_bound_with_its_label():
    island, band = read_bound(ISLAND), read_bound(BAND)
    fig = plot_reach(_scan(), None, bounds=[(island, "filled"), (band, "dashed")])
    try:
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert island.label in labels
        assert band.label in labels
        # each bound's outline is a line through its points, closed
        drawn = [np.asarray(line.get_xydata()) for line in ax.get_lines()]
        for b in (island, band):
            xs, ys = b.polygon()
            want = np.column_stack([np.append(xs, xs[0]), np.append(ys, ys[0])])
            assert any(d.shape == want.shape and np.allclose(d, want) for d in drawn)
        # the filled one is a translucent region, the dashed one an outline only
        styles = {line.get_linestyle() for line in ax.get_lines() if line.get_color() != "k"}
        assert "--" in styles
    finally:
        plt.close(fig)


def test_the_report_lists_the_bounds_with_their_references(tmp_path):
    from gammastar.core.artifacts import make_meta, write_json
    from gammastar.report import build_report

    run = tmp_path / "run"
    band = {"mass": [0.3], "eps_low": [1e-7], "eps_high": [1e-4]}
    write_json(
        run / "reach.json",
        {
            "cl": 0.9,
            "expected": band,
            "bands": {k: band for k in ("-2", "-1", "+1", "+2")},
            "meta": make_meta(config_sha256=None, seed=1, stage="reach"),
        },
    )
    cfg = _config(tmp_path, [str(ISLAND), {"file": str(tmp_path / "gone.csv")}], output=str(run))
    page = build_report(cfg).path.read_text()
    section = page.split('<section id="reach">', 1)[1].split("</section>", 1)[0]
    assert "synthetic island (test data)" in section
    assert "none: a made-up contour" in section
    assert "gone.csv: bound file not found" in section  # a warning, the page still built


def test_the_phenix_table_reads_as_its_paper_states(phenix):
    """The PHENIX limit (Phys. Rev. C 91 (2015) 031901, HEPData ins1313628 "Figure 5", 90% CL):
    one point per 1 MeV bin at the bins' centres, 30 to 90 MeV; the abstract's "upper limits
    of O(2×10⁻⁶) on U-γ mixing [ε²] at 90% CL for 30 < m_U < 90 MeV": every ε² of the table
    between 2×10⁻⁶ and 4×10⁻⁶, read as ε (square root); everything above it excluded."""
    b = read_bound(phenix)
    assert b.shape == "above"
    assert not b.closed
    assert b.mass == pytest.approx(np.arange(30, 91) * 1e-3, rel=1e-12)
    assert b.mass_from == "$m_U$ (bin centres)"
    assert "square root" in b.eps_from
    assert np.all((b.eps**2 >= 2e-6) & (b.eps**2 <= 4e-6))
    for cite in ("Phys. Rev. C 91 (2015) 031901", "arXiv:1409.0851", "ins1313628", "90% CL"):
        assert cite in b.reference


def test_units_in_the_name_and_mass_bins_as_older_hepdata_records_write_them(tmp_path):
    """A HEPData table whose header carries its units in brackets after the name and whose
    mass column is bins: read in GeV at the bins' centres."""
    path = tmp_path / "old.yaml"
    path.write_text(
        "independent_variables:\n- header: {name: '$m_U$(MeV/$c^2$)'}\n"
        "  values: [{low: 29.5, high: 30.5}, {low: 30.5, high: 31.5}]\n"
        "dependent_variables:\n- header: {name: '$\\epsilon^2$'}\n"
        "  values: [{value: 4.0e-06}, {value: 9.0e-06}]\n"
    )
    b = read_bound(path)
    assert b.mass == pytest.approx([0.030, 0.031], rel=1e-12)
    assert b.eps == pytest.approx([2e-3, 3e-3], rel=1e-12)


def test_an_upper_limit_is_filled_up_to_the_top_and_widens_the_plot_to_show_it(phenix):
    """shape above: the region from the curve up is grey (to ε = 1, the axis clips it); the
    reach figure's ε range, the scan's 1e-8 … 1e-3, grows to twice the bound's largest ε in
    the figure's mass range."""
    b = read_bound(phenix)
    scan = _scan(masses=np.linspace(0.02, 0.8, 7))
    fig = plot_reach(scan, None, bounds=[(b, "filled")])
    try:
        ax = fig.axes[0]
        assert ax.get_ylim()[1] == pytest.approx(2 * b.eps.max(), rel=1e-12)
        assert ax.get_ylim()[0] == pytest.approx(1e-8, rel=1e-12)
        tops = [np.asarray(c.get_paths()[0].vertices)[:, 1].max() for c in ax.collections]
        assert any(t == pytest.approx(1.0) for t in tops)
    finally:
        plt.close(fig)
    fig, ax = plt.subplots()
    try:
        (handle,) = draw_bounds(ax, [(b, "line")])  # an outline only: no region
        assert not ax.collections
        assert handle.get_label() == b.label
    finally:
        plt.close(fig)
