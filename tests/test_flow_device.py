"""Where the flow trains (``flow.device``): the device's resolution, the GPU's recipe, and the
device-agnostic training path (zuko's density, the rows and the model moved to the device)
that a GPU runs, exercised here on the CPU; on a machine with CUDA the last test trains there.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from _phys_figures import skip_loss_figure
from _tolerance import EPS32
from test_flow import TINY, make_config, synthetic_pairs

from gammastar.config.flow import FlowConfig
from gammastar.errors import ConfigError
from gammastar.flow.data import training_data
from gammastar.flow.model import load
from gammastar.flow.stage import ensemble_workers, train
from gammastar.flow.training import Backend, fit, resolve_device

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _no_loss_figure(monkeypatch):
    skip_loss_figure(monkeypatch)


def test_auto_is_the_cpu_without_cuda_and_cuda_with_it(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cpu") == "cpu"  # asked for: the CPU even beside a GPU


def test_cuda_without_a_gpu_is_one_line_naming_the_key(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError) as err:
        resolve_device("cuda")
    assert str(err.value).startswith("flow.device:")
    assert "\n" not in str(err.value)
    # the stage refuses before it reads or writes anything
    cfg = make_config(tmp_path, device="cuda")
    with pytest.raises(ConfigError, match=r"^flow\.device:"):
        train(cfg, pairs=synthetic_pairs(500))
    assert not (tmp_path / "run" / "flow").exists()


def test_the_cpu_keeps_the_configured_recipe_and_a_gpu_scales_it():
    """The CPU trains with batch_size and learning_rate as given; a GPU with cuda_batch_size
    and the learning rate × √(batch ratio) (Backend.of's square-root rule)."""
    cfg = FlowConfig(batch_size=4096, learning_rate=5e-3, cuda_batch_size=16384)
    cpu = Backend.of(cfg, "cpu")
    assert (cpu.device, cpu.fused, cpu.batch_size) == ("cpu", True, 4096)
    assert cpu.learning_rate == pytest.approx(5e-3, rel=EPS32)
    gpu = Backend.of(cfg, "cuda")
    assert (gpu.device, gpu.fused, gpu.batch_size) == ("cuda", False, 16384)
    assert gpu.learning_rate == pytest.approx(5e-3 * math.sqrt(4), rel=EPS32)
    same = Backend.of(cfg.model_copy(update={"cuda_batch_size": None}), "cuda")
    assert same.batch_size == 4096
    assert same.learning_rate == pytest.approx(5e-3, rel=EPS32)


def test_one_process_per_ensemble_on_a_gpu(monkeypatch):
    cfg = FlowConfig(ensemble=3, workers=3)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert ensemble_workers(cfg) == 3
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert ensemble_workers(cfg) == 1  # the members one after the other on the GPU


def test_the_gpus_path_on_the_cpu_trains_as_the_compiled_kernels():
    """The device-agnostic path (zuko's torch density, what a GPU runs) with the CPU's recipe
    follows the compiled kernels' training: the same initial weights and draws (both seeded on
    the CPU), densities equal to float32 rounding. Tolerance: per point the two densities
    differ by ≲ FLOW_OPS · eps32 · |ln p| ≈ 1e-4 (tests/_tolerance.py), and the 16 AdamW steps
    of these 2 epochs move each weight by ≤ lr per step whatever the gradient's rounding, so
    the losses agree to well within 1e-3 of their value ~3 (the seeds' spread: ~0.05)."""
    cfg = FlowConfig(**{**TINY, "epochs": 2})
    data = training_data(synthetic_pairs(6000), cfg, source="synthetic", seed=7, holdout_seed=7)
    fused = fit(data, cfg, seed=7)
    agnostic = fit(data, cfg, seed=7, backend=Backend("cpu", False, cfg.batch_size, 5e-3))
    assert agnostic.device["kernels"] == "zuko"
    assert fused.device["kernels"] == "compiled"
    np.testing.assert_allclose(agnostic.history["val"], fused.history["val"], rtol=1e-3)
    np.testing.assert_allclose(agnostic.history["train"], fused.history["train"], rtol=1e-3)
    assert agnostic.history["val"][-1] < agnostic.history["val"][0]  # it learns
    assert all(p.device.type == "cpu" for p in agnostic.flow.parameters())


def test_meta_records_the_device_and_threads(tmp_path):
    """flow/meta.json says where and how the flow was trained; torch's threads during the
    training are at most the process's cores, and restored after it."""
    from gammastar.core.threads import usable_cores

    before = torch.get_num_threads()
    cfg = make_config(tmp_path, epochs=1)
    out = train(cfg, pairs=synthetic_pairs(3000)).path
    assert torch.get_num_threads() == before
    dev = json.loads((out / "meta.json").read_text())["meta"]["device"]
    assert dev["kind"] == resolve_device("auto")
    assert 1 <= dev["torch_threads"] <= usable_cores()
    assert dev["batch_size"] == Backend.of(cfg.flow).batch_size
    assert json.loads((out / "meta.json").read_text())["meta"]["seed"] == 7


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_trained_on_cuda_loads_and_samples_on_the_cpu(tmp_path):
    """On a GPU: the flow trains there (device recorded) and its model.pt holds CPU tensors,
    so that a CPU-only machine loads it (weights_only) and samples it."""
    cfg = make_config(tmp_path, device="cuda", epochs=2)
    out = train(cfg, pairs=synthetic_pairs(8000)).path
    info = json.loads((out / "meta.json").read_text())["meta"]
    assert info["device"]["kind"] == "cuda"
    sd = torch.load(out / "model.pt", weights_only=True)  # no map_location: CPU tensors
    assert all(v.device.type == "cpu" for v in sd.values())
    s = load(out).sample(0.5, 2000, seed=1)
    assert np.all(np.isfinite(s["qT"]))
    assert np.all(s["qT"] > 0)
