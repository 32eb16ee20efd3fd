"""Published bounds read as their publishers ship them (gammastar.formats.bounds): DarkCast `.lmt`
tables, FORESEE-style polygons and HEPData tables, each checked against the first and last rows
of the file (copies under ../shared/data/bounds beside the repository, README.md there: the
tests skip without them); ε² read as ε; a HEPData reference downloaded once from a local server
and then read from the cache; the one-line error when the server cannot be reached; and the
ratios of a reach to a published contour on made-up contours whose ratios are known.
"""

from __future__ import annotations

import http.server
import logging
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from _experiment import stated_config

from gammastar.errors import InputError
from gammastar.formats.bounds import read_bound, read_config_bounds, read_entry, remote
from gammastar.formats.bounds.compare import compare_reach, excluded_range, ratio_ranges
from gammastar.formats.bounds.core import Bound
from gammastar.formats.bounds.remote import BoundUnavailable

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "bounds"
CHARM = "darkcast_CHARM_Tsai2019mtm.lmt"
NA62 = "foresee_bounds_NA62ee.txt"
PHENIX = "hepdata_ins1313628_phenix_figure5.yaml"


@pytest.fixture
def shared():
    """The directory of the published files (skip when absent)."""
    if not SHARED.is_dir():
        pytest.skip(f"the published bound files are not at {SHARED} (../shared/data/bounds)")
    return SHARED


def _rows(path: Path) -> list[list[float]]:
    """The file's numeric rows, as plain floats: the reference the readers are checked against."""
    out = []
    for line in path.read_text().splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            out.append([float(x) for x in s.split()])
    return out


# --------------------------------------------------------------------------- formats
def test_a_darkcast_lmt_table_is_a_band_in_gev_and_eps(shared):
    path = shared / CHARM
    rows = _rows(path)
    b = read_bound(path, units="eps")
    assert b.shape == "band"
    assert len(b.mass) == len(rows)
    # DarkCast's CHARM recast: first row 1.2 MeV, last 0.25 GeV (the file's own numbers)
    assert b.mass[0] == pytest.approx(rows[0][0], rel=1e-12) == pytest.approx(1.2e-3)
    assert b.mass[-1] == pytest.approx(rows[-1][0], rel=1e-12) == pytest.approx(0.25)
    assert b.eps[[0, -1]] == pytest.approx([rows[0][1], rows[-1][1]], rel=1e-12)
    assert b.eps_high[[0, -1]] == pytest.approx([rows[0][2], rows[-1][2]], rel=1e-12)
    assert np.all(b.eps < b.eps_high)


def test_eps_squared_is_read_as_eps(shared):
    """The same table read as ε²: ε = √(the file's number), the lower and upper edges alike."""
    path = shared / CHARM
    as_eps, as_eps2 = read_bound(path, units="eps"), read_bound(path, units="eps2")
    assert as_eps2.eps == pytest.approx(np.sqrt(as_eps.eps), rel=1e-12)
    assert as_eps2.eps_high == pytest.approx(np.sqrt(as_eps.eps_high), rel=1e-12)
    assert "square root" in as_eps2.eps_from


def test_a_foresee_polygon_is_a_closed_contour(shared):
    path = shared / NA62
    rows = _rows(path)
    b = read_bound(path, format="polygon", units="eps")
    assert b.shape == "contour"
    assert b.closed
    assert len(b.mass) == len(rows)
    assert [b.mass[0], b.eps[0]] == pytest.approx(rows[0], rel=1e-12)
    assert [b.mass[-1], b.eps[-1]] == pytest.approx(rows[-1], rel=1e-12)
    # NA62's e+e- contour (arXiv:2312.12055): from about 5 MeV to below 0.5 GeV, ε 1e-7 to 1e-3
    assert 4e-3 < b.mass.min() < 6e-3
    assert 0.3 < b.mass.max() < 0.6
    assert 1e-8 < b.eps.min() < 1e-6
    assert 1e-4 < b.eps.max() < 1e-2


def test_a_hepdata_table_of_eps_squared(shared):
    """PHENIX's table (HEPData ins1313628 "Figure 5"): ε² per 1 MeV mass bin from 30 to 90 MeV
    (bins read at their centres), read as ε; the abstract's "O(2×10⁻⁶) on ε² at 90% CL"."""
    import yaml

    path = shared / PHENIX
    b = read_bound(path)
    assert b.mass == pytest.approx(np.arange(30, 91) * 1e-3, rel=1e-12)
    # the first and last values of the table's ε² column, read with PyYAML alone
    values = yaml.safe_load(path.read_text())["dependent_variables"][0]["values"]
    assert b.eps[0] == pytest.approx(np.sqrt(float(values[0]["value"])), rel=1e-12)
    assert b.eps[-1] == pytest.approx(np.sqrt(float(values[-1]["value"])), rel=1e-12)
    assert np.all((b.eps**2 >= 2e-6) & (b.eps**2 <= 4e-6))
    with pytest.raises(InputError, match="is eps2, but the units given are eps"):
        read_bound(path, units="eps")


@pytest.mark.parametrize("kind", ["lmt", "polygon"])
def test_a_file_that_does_not_say_eps_or_eps2_is_refused_in_one_line(tmp_path, kind):
    path = tmp_path / f"b.{'lmt' if kind == 'lmt' else 'txt'}"
    path.write_text("0.01 1e-6 1e-4\n0.1 1e-7 1e-5\n" if kind == "lmt" else "0.01 1e-6\n0.1 1e-7\n")
    with pytest.raises(InputError) as err:
        read_bound(path, format=kind)
    text = str(err.value)
    assert len(text.splitlines()) == 1
    assert text.startswith(str(path))
    assert "units: eps or units: eps2" in text
    # a '# units:' line in the file says it
    path.write_text("# units: eps2\n" + path.read_text())
    assert read_bound(path, format=kind).eps[0] == pytest.approx(1e-3)


def test_an_unknown_suffix_asks_for_the_format(tmp_path):
    path = tmp_path / "b.dat"
    path.write_text("0.01 1e-6\n0.1 1e-7\n")
    with pytest.raises(InputError, match=r"b\.dat: cannot tell the bound format .* polygon"):
        read_bound(path)


def test_a_hepdata_table_with_one_column_per_confidence_level(tmp_path):
    """HEPData records give one dependent variable per CL, told apart by a qualifier."""
    path = tmp_path / "t.yaml"
    cols = "".join(
        f"- header: {{name: '$\\epsilon^2$'}}\n  qualifiers:\n  - {{name: CL, value: '{cl}%'}}\n"
        f"  values: [{{value: {v}e-6}}, {{value: {v}e-6}}]\n"
        for cl, v in (("90", 4), ("85", 9), ("80", 16))
    )
    path.write_text(
        "independent_variables:\n- header: {name: m, units: MeV}\n"
        "  values: [{value: 30}, {value: 40}]\ndependent_variables:\n" + cols
    )
    assert read_bound(path, column="85 %").eps == pytest.approx([3e-3, 3e-3])
    with pytest.raises(InputError, match="3 coupling columns"):
        read_bound(path)
    with pytest.raises(InputError, match=r"no coupling column is '95%'.*\(CL: 80%\)"):
        read_bound(path, column="95%")


def test_the_config_entry_takes_path_format_and_units(tmp_path, shared):
    cfg = stated_config(
        {"name": "t", "reach": {"compare_with": [
            {"path": str(shared / CHARM), "format": "lmt", "units": "eps"},
            {"file": str(shared / NA62), "format": "polygon", "units": "eps", "style": "line"},
        ]}},
        source=str(tmp_path / "cfg.yaml"),
    )  # fmt: skip
    (charm, s1), (na62, s2) = read_config_bounds(cfg)
    assert charm.shape == "band"
    assert s1 == "filled"
    assert na62.shape == "contour"
    assert s2 == "line"


# --------------------------------------------------------------------------- HEPData download
class _Server:
    """A local HTTP server answering HEPData's table download path with one file."""

    def __init__(self, content: bytes, path: str) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # http.server's name
                outer.hits.append(self.path)
                ok = self.path == path
                self.send_response(200 if ok else 404)
                self.end_headers()
                if ok:
                    self.wfile.write(content)

            def log_message(self, *args):  # quiet
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def hepdata(shared, tmp_path, monkeypatch):
    """The PHENIX table served at its HEPData download path; the cache in tmp_path."""
    server = _Server((shared / PHENIX).read_bytes(), "/download/table/ins1313628/Figure%205/1/yaml")
    monkeypatch.setenv("GAMMASTAR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(remote.URL_ENV, server.url)
    yield server
    server.close()


def _cfg(tmp_path, entries):
    return stated_config(
        {"name": "t", "reach": {"compare_with": entries}}, source=str(tmp_path / "cfg.yaml")
    )


def test_a_hepdata_reference_is_downloaded_once_then_read_from_the_cache(hepdata, tmp_path):
    cfg = _cfg(tmp_path, ["hepdata:ins1313628/Figure 5"])
    ((first, _style),) = read_config_bounds(cfg)
    assert hepdata.hits == ["/download/table/ins1313628/Figure%205/1/yaml"]
    cached = tmp_path / "cache" / "hepdata" / "ins1313628" / "Figure_5.v1.yaml"
    assert first.source == cached
    assert cached.read_bytes() == (SHARED / PHENIX).read_bytes()
    # what the table does not say comes from the known references: an upper limit, cited
    assert first.shape == "above"
    assert "arXiv:1409.0851" in first.reference
    assert first.mass == pytest.approx(np.arange(30, 91) * 1e-3, rel=1e-12)
    # the second read (and the short name of the same table) does not ask the server again
    ((again, _),) = read_config_bounds(_cfg(tmp_path, ["phenix_2015"]))
    assert len(hepdata.hits) == 1
    assert again.eps == pytest.approx(first.eps, rel=1e-15)


def test_a_missing_table_is_one_line_naming_the_reference(hepdata, tmp_path):
    entry = _cfg(tmp_path, ["hepdata:ins1313628/Figure 6"]).reach.compare_with[0]
    with pytest.raises(BoundUnavailable) as err:
        read_entry(entry, None)
    text = str(err.value)
    assert len(text.splitlines()) == 1
    assert text.startswith("hepdata:ins1313628/Figure 6: cannot download")
    assert "HTTP 404" in text
    assert not (tmp_path / "cache" / "hepdata" / "ins1313628" / "Figure_6.v1.yaml").exists()


def test_offline_the_reference_is_left_out_with_one_warning_line(tmp_path, monkeypatch, caplog):
    """No server listening on the port: one line saying how to get the table; the reach's
    bounds are drawn without it (the demo does not fail offline)."""
    with socket.socket() as s:  # a free port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("GAMMASTAR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(remote.URL_ENV, f"http://127.0.0.1:{port}")
    entry = _cfg(tmp_path, ["hepdata:ins1313628/Figure 5"]).reach.compare_with[0]
    with pytest.raises(BoundUnavailable) as err:
        read_entry(entry, None)
    text = str(err.value)
    assert len(text.splitlines()) == 1
    assert f"cannot download http://127.0.0.1:{port}/download/table/ins1313628/" in text
    assert "run once with network access, or give the table's YAML file by its path" in text
    with caplog.at_level(logging.WARNING, logger="gammastar.formats.bounds"):
        # read twice, as the reach stage does (its check, its figure): warned once
        for _ in range(2):
            assert read_config_bounds(_cfg(tmp_path, ["hepdata:ins1313628/Figure 5"])) == []
    (record,) = [r for r in caplog.records if r.name == "gammastar.formats.bounds"]
    assert len(record.getMessage().splitlines()) == 1
    assert "left out" in record.getMessage()


def test_a_malformed_reference(tmp_path):
    entry = _cfg(tmp_path, ["hepdata:ins1313628"]).reach.compare_with[0]
    with pytest.raises(InputError, match="a HEPData reference is hepdata:RECORD/TABLE"):
        read_entry(entry, None)


# --------------------------------------------------------------------------- comparison
def _bound(mass, eps, eps_high=None, shape="contour"):
    return Bound("b", "", np.asarray(mass, float), np.asarray(eps, float),
                 None if eps_high is None else np.asarray(eps_high, float),
                 shape, Path("b"), "eps")  # fmt: skip


def test_excluded_range_of_a_contour_interpolates_in_log_log():
    """A triangle (0.01, 1e-6) – (1, 1e-6) – (1, 1e-4): at m = 0.1, halfway in log m, the
    hypotenuse is at ε = 1e-5 (halfway in log ε); outside the masses nothing is excluded."""
    tri = _bound([0.01, 1.0, 1.0], [1e-6, 1e-6, 1e-4])
    lo, hi = excluded_range(tri, [0.1, 2.0])
    assert lo[0] == pytest.approx(1e-6, rel=1e-12)
    assert hi[0] == pytest.approx(1e-5, rel=1e-12)
    assert np.isnan(lo[1])
    assert np.isnan(hi[1])


def test_the_ratio_table_on_contours_with_known_ratios():
    """Ours is the published box (1e-7, 1e-4) over 0.01-1 GeV scaled by 2 at the bottom and 1/2
    at the top: every ratio is exactly that; a mass only we exclude and one only they do are
    counted apart, without a ratio. The box drawn as a band gives the same."""
    box = _bound([0.01, 1.0, 1.0, 0.01], [1e-7, 1e-7, 1e-4, 1e-4])
    band = _bound([0.01, 1.0], [1e-7, 1e-7], [1e-4, 1e-4], shape="band")
    m = np.array([0.005, 0.02, 0.1, 0.5, 0.9])
    ours_lo = np.array([3e-7, 2e-7, 2e-7, 2e-7, np.nan])
    ours_hi = np.array([1e-5, 5e-5, 5e-5, 5e-5, np.nan])
    for published in (box, band):
        t = compare_reach(m, ours_lo, ours_hi, published)
        assert t["both"].tolist() == [False, True, True, True, False]
        assert t["ratio_low"][1:4] == pytest.approx([2.0] * 3, rel=1e-12)
        assert t["ratio_high"][1:4] == pytest.approx([0.5] * 3, rel=1e-12)
        r = ratio_ranges(t)
        assert r["n"] == 3
        assert r["ours_only"] == 1
        assert r["theirs_only"] == 1
        assert r["low"] == pytest.approx([2.0, 2.0])
        assert r["high"] == pytest.approx([0.5, 0.5])
        assert r["mass"] == pytest.approx([0.02, 0.5])


def test_an_upper_limit_has_no_excluded_range():
    with pytest.raises(ValueError, match="above bound has no excluded"):
        excluded_range(_bound([0.03, 0.09], [1e-3, 1e-3], shape="above"), [0.05])


def test_remote_url_scheme():
    """HEPData's REST download of one table as YAML: /download/table/RECORD/TABLE/VERSION/yaml,
    the table's name quoted."""
    ref = remote.TableRef.parse("hepdata:ins1313628/Figure 5@2")
    assert ref.url("https://www.hepdata.net/") == (
        "https://www.hepdata.net/download/table/ins1313628/Figure%205/2/yaml"
    )
    assert os.path.basename(ref.cache_file() or "Figure_5.v2.yaml") == "Figure_5.v2.yaml"
