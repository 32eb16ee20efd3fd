"""`gammastar generate` on the command line: outputs and one-line errors ("Bad input")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import uproot

from gammastar.cli import main

EFF_MAP = Path(__file__).resolve().parents[1] / "data" / "efficiency_na60_like.root"


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "analysis.yaml"
    path.write_text(
        "name: mocktest\n"
        "seed: 5\n"
        "output: run\n"
        "mock:\n"
        "  events: 20000\n"
        f"  efficiency_map: {EFF_MAP}\n"
        "  combinatorial: {pilot_events: 20000}\n"
    )
    return path


def one_line_error(capsys, rc, *words):
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("gammastar: error:")
    for w in words:
        assert w in err, err
    return err


def no_leftovers(directory: Path):
    return [p.name for p in directory.iterdir() if p.name.endswith(".part")] == []


def test_generate_writes_file_and_plots(config, tmp_path, capsys):
    out = tmp_path / "m.root"
    rc = main(
        [
            "generate",
            str(config),
            "-o",
            str(out),
            "--events",
            "15000",
            "--seed",
            "3",
            "--plots",
            str(tmp_path / "plots"),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "wrote" in text
    assert "N_POT" in text
    with uproot.open(out) as f:
        assert f["events"].num_entries > 0
        assert '"seed": 3' in str(f["meta"])
    # the two figures drawn (a blank or failed PNG is a few kB)
    for name in ("mock_mass.png", "mock_pt.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 10_000, name


def test_default_output_is_the_run_directory(config, tmp_path):
    assert main(["generate", str(config)]) == 0
    assert (tmp_path / "run" / "mock.root").exists()


def test_unknown_config_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("mock:\n  events: 10\n  colour: blue\n")
    out = tmp_path / "x.root"
    rc = main(["generate", str(bad), "-o", str(out)])
    one_line_error(capsys, rc, "mock.colour", "unknown key", str(bad.name))
    assert not out.exists()


def test_negative_event_count(config, tmp_path, capsys):
    out = tmp_path / "x.root"
    rc = main(["generate", str(config), "-o", str(out), "--events", "-5"])
    one_line_error(capsys, rc, "--events", "-5")
    assert not out.exists()
    assert no_leftovers(tmp_path)


def test_negative_event_count_in_config(tmp_path, capsys):
    bad = tmp_path / "neg.yaml"
    bad.write_text("mock:\n  events: -3\n")
    rc = main(["generate", str(bad), "-o", str(tmp_path / "x.root")])
    one_line_error(capsys, rc, "mock.events")


def test_unwritable_output_path(config, tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")
    out = blocker / "sub" / "x.root"
    rc = main(["generate", str(config), "-o", str(out)])
    one_line_error(capsys, rc, str(out))
    assert blocker.read_text() == "not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only directories")
def test_read_only_directory(config, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        rc = main(["generate", str(config), "-o", str(ro / "x.root")])
        one_line_error(capsys, rc, "not writable")
    finally:
        ro.chmod(0o700)


def test_existing_output_without_force(config, tmp_path, capsys):
    out = tmp_path / "m.root"
    out.write_bytes(b"precious")
    rc = main(["generate", str(config), "-o", str(out)])
    one_line_error(capsys, rc, "exists", "--force")
    assert out.read_bytes() == b"precious"
    assert no_leftovers(tmp_path)
    assert main(["generate", str(config), "-o", str(out), "--force", "--events", "5000"]) == 0
    with uproot.open(out) as f:
        assert "events" in f


def test_output_is_a_directory(config, tmp_path, capsys):
    rc = main(["generate", str(config), "-o", str(tmp_path), "--force"])
    one_line_error(capsys, rc, "directory")


def test_missing_efficiency_map(tmp_path, capsys):
    cfg = tmp_path / "a.yaml"
    cfg.write_text("mock:\n  events: 100\n  efficiency_map: /nonexistent/eff.root\n")
    rc = main(["generate", str(cfg), "-o", str(tmp_path / "x.root")])
    one_line_error(capsys, rc, "mock.efficiency_map", "/nonexistent/eff.root")
    assert not (tmp_path / "x.root").exists()


def test_failure_midway_leaves_nothing(config, tmp_path, monkeypatch):
    """An error during writing removes the temporary file and leaves no output; it is one
    line, exit 1, its traceback only with GAMMASTAR_DEBUG=1."""
    import gammastar.mock.ntuple as g

    def boom(chunk, *codes):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(g, "_truth_arrays", boom)
    out = tmp_path / "m.root"
    assert main(["generate", str(config), "-o", str(out)]) == 1
    assert not out.exists()
    assert no_leftovers(tmp_path)
    monkeypatch.setenv("GAMMASTAR_DEBUG", "1")
    with pytest.raises(RuntimeError, match="disk on fire"):
        main(["generate", str(config), "-o", str(out)])
    assert not out.exists()
    assert no_leftovers(tmp_path)


def test_pythia_backend_is_a_clear_error(tmp_path, capsys):
    try:
        import pythia8mc  # noqa: F401

        pytest.skip("pythia8mc installed")
    except ImportError:
        pass
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"mock:\n  events: 100\n  backend: pythia\n  efficiency_map: {EFF_MAP}\n")
    rc = main(["generate", str(cfg), "-o", str(tmp_path / "x.root")])
    one_line_error(capsys, rc, "pythia8mc", "not installed")


def test_all_cross_sections_zero(tmp_path, capsys):
    cfg = tmp_path / "z.yaml"
    cfg.write_text(
        "mock:\n  events: 100\n  efficiency_map: null\n"
        "  cross_sections: {eta: 0, eta_prime: 0, rho: 0, omega: 0, phi: 0}\n"
    )
    rc = main(["generate", str(cfg), "-o", str(tmp_path / "x.root")])
    one_line_error(capsys, rc, "mock.cross_sections")
