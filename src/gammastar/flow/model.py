"""The trained flow as an object: density, sampling, save and load.

Offers :class:`FlowModel` (``log_prob`` and ``sample`` of p(q_T, E | m) in GeV, with the
preprocessing of :mod:`gammastar.flow.data`), :func:`save_model` / :func:`load` (``flow/model.pt``,
a plain ``state_dict`` loaded with ``weights_only=True``, and ``flow/meta.json``),
:func:`log_prob` (the fused density of the compiled training kernels) and :func:`write_samples`.
Sampling uses the compiled exact inverse (:mod:`gammastar.flow._sampling_kernels`), or zuko's own
inverse transform for a flow structure the compiled sampler does not handle.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from gammastar.core import rundir
from gammastar.core.artifacts import atomic_path, load_json, sha256_file
from gammastar.errors import GammastarError
from gammastar.flow import _training_kernels as _flow_training
from gammastar.flow._sampling_kernels import CompiledSampler, UnsupportedFlow
from gammastar.flow.architecture import BOUND, SLOPE, build_flow
from gammastar.flow.data import Preprocessing

if TYPE_CHECKING:
    import torch

MODEL_FORMAT = "gammastar-flow"
MODEL_FORMAT_VERSION = 1
PHYSICAL_REDRAWS = 20
"""Redraws of unphysical samples (E² < m² + q_T²) in :meth:`FlowModel.sample`."""


def log_prob(flow, x: torch.Tensor, c: torch.Tensor, bins: int) -> torch.Tensor:
    """ln p(x | c) of the zuko ``flow`` for x (N, 2), c (N, 1) (standardised space); fused;
    differentiable.

    The splines run in one compiled kernel per step with hand-derived gradients
    (:mod:`gammastar.flow._training_kernels`); zuko's ``flow(c).log_prob(x)`` is the reference that
    the tests compare it with.
    """

    return _flow_training.log_prob(flow, x, c, bins, BOUND, SLOPE)


def zuko_log_prob(flow, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """ln p(x | c) by zuko's own transforms (``flow(c).log_prob(x)``): torch operations only,
    so on any device (the GPU's training, :class:`gammastar.flow.training.Backend`);
    differentiable. The reference of the fused :func:`log_prob`."""
    return flow(c).log_prob(x)


class ZukoSampler:
    """Exact sampling with zuko's own inverse transform (the reference of the compiled
    sampler; used for a flow structure that :class:`gammastar.flow._sampling_kernels.CompiledSampler`
    does not handle)."""

    def __init__(self, flow) -> None:
        self.flow = flow

    def __call__(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Map latent ``z`` (n, 2) to standardised features (n, 2); ``c`` is (1, 1) or (n, 1)."""
        return self.flow(c.expand(z.shape[0], c.shape[1])).transform.inv(z)


class FlowModel:
    """A trained conditional flow with its preprocessing: sample and evaluate p(q_T, E | m)."""

    def __init__(
        self,
        flow,
        preprocessing: Preprocessing,
        arch: Mapping[str, Any],
        mass_range: tuple[float, float],
        meta: Mapping[str, Any] | None = None,
        path: Path | None = None,
    ) -> None:
        self.flow = flow.eval()
        self.pre = preprocessing
        self.arch = dict(arch)
        self.mass_range = (float(mass_range[0]), float(mass_range[1]))
        self.meta = dict(meta or {})
        self.path = path
        self._sampler: Any = None

    # --------------------------------------------------------------------- internals
    def _check_mass(self, m: np.ndarray, extrapolate: bool) -> None:
        lo, hi = self.mass_range
        if extrapolate or m.size == 0:
            return
        if np.any(m < lo) or np.any(m > hi):
            bad = m[(m < lo) | (m > hi)]
            raise GammastarError(
                f"mass {float(bad[0]):.4g} GeV is outside the trained range [{lo:.4g}, {hi:.4g}] "
                f"GeV of the flow{f' {self.path}' if self.path else ''}; "
                "pass extrapolate=True (--extrapolate) to sample there anyway"
            )

    @property
    def sampler(self) -> Any:
        """The exact inverse of the flow: the compiled sampler
        (:class:`gammastar.flow._sampling_kernels.CompiledSampler`), or zuko's inverse
        (:class:`ZukoSampler`) for a flow structure that the compiled one does not handle."""
        if self._sampler is None:

            bins = int(self.arch["bins"])
            slope = float(self.arch.get("slope", SLOPE))
            bound = float(self.arch.get("bound", BOUND))
            try:
                self._sampler = CompiledSampler(self.flow, bins, slope, bound)
            except UnsupportedFlow:
                self._sampler = ZukoSampler(self.flow)
        return self._sampler

    # ----------------------------------------------------------------------- API
    def log_prob(self, mass, qT, E, *, extrapolate: bool = False) -> np.ndarray:
        """ln p(q_T, E | m) in GeV⁻² (density in the original variables).

        Outside the support (q_T < 0 or E ≤ 0) the result is −inf, without warnings; q_T = 0
        is evaluated at the floor q_T = 1e-6 GeV of the log transform. NaN inputs give NaN.
        """
        import torch

        qT = np.asarray(qT, dtype=np.float64)
        E = np.asarray(E, dtype=np.float64)
        m = np.broadcast_to(np.asarray(mass, dtype=np.float64), qT.shape).copy()
        self._check_mass(m, extrapolate)
        outside = (qT < 0) | (E <= 0)
        if outside.any():  # evaluate a harmless point there, then overwrite with −inf
            qT = np.where(outside, 1.0, qT)
            E = np.where(outside, 1.0, E)
        x = torch.as_tensor(self.pre.features(qT, E), dtype=torch.float32)
        c = torch.as_tensor(self.pre.context(m), dtype=torch.float32)
        out = np.empty(len(qT))
        with torch.inference_mode():
            for s in range(0, len(qT), 1 << 16):
                sl = slice(s, s + (1 << 16))
                out[sl] = log_prob(self.flow, x[sl], c[sl], int(self.arch["bins"])).numpy()
        out += self.pre.log_jacobian(qT, E)
        out[outside] = -np.inf
        return out

    def sample_standardised(
        self, mass, n: int, seed: int | None = None, chunk: int = 1 << 16
    ) -> np.ndarray:
        """Samples in the standardised log space (float32), shape (n, 2); no mass check.

        The latent points are drawn from a torch generator seeded with ``seed``, in chunks of
        ``chunk`` points (the stream does not depend on the thread count); the flow's inverse
        runs on ``torch.get_num_threads()`` threads, with a result that does not depend on them.
        """
        import torch

        gen = torch.Generator().manual_seed(
            int(seed) if seed is not None else cast(int, np.random.SeedSequence().entropy) % 2**63
        )
        masses = np.asarray(mass, dtype=np.float64)
        fixed = masses.ndim == 0
        sampler = self.sampler
        z = np.empty((n, 2), dtype=np.float32)
        zt = torch.from_numpy(z)
        for s in range(0, n, chunk):
            k = min(chunk, n - s)
            torch.randn((k, 2), generator=gen, out=zt[s : s + k])
        if fixed:
            c = self.pre.context(masses.reshape(1)).astype(np.float32)
        else:
            c = self.pre.context(masses.reshape(-1)).astype(np.float32)
        if isinstance(sampler, ZukoSampler):  # zuko fallback
            out = np.empty((n, 2), dtype=np.float32)
            with torch.inference_mode():
                for s in range(0, n, chunk):
                    cc = torch.from_numpy(c if fixed else c[s : s + chunk])
                    out[s : s + chunk] = sampler(zt[s : s + chunk], cc).numpy()
            return out
        return sampler(z, float(c[0, 0]) if fixed else c[:, 0], threads=torch.get_num_threads())

    def sample(
        self,
        mass,
        n: int | None = None,
        seed: int | None = None,
        *,
        extrapolate: bool = False,
        four_vectors: bool = False,
        physical: bool = True,
    ) -> dict[str, np.ndarray]:
        """Draw (q_T, E) from p(q_T, E | m).

        Arguments:
            mass: one mass (GeV) for all samples, or an array of n masses.
            n: number of samples (default: ``len(mass)``).
            seed: random seed (``None``: fresh entropy); the same seed gives the same samples.
            extrapolate: allow masses outside the trained range.
            four_vectors: also return ``px``, ``py``, ``pz`` (uniform azimuth, pz > 0) and ``phi``.
            physical: redraw the rare samples with E² < m² + q_T² (no real p_z), up to
                :data:`PHYSICAL_REDRAWS` times; samples still unphysical after that raise
                (the flow then puts most of its probability where no p_z exists).

        Returns:
            dict of float64 arrays ``m``, ``qT``, ``E`` (+ four-vector columns).

        Raises:
            GammastarError: a mass outside the trained range and not ``extrapolate``;
                with ``physical``, samples still unphysical after the redraws.
        """
        masses = np.asarray(mass, dtype=np.float64)
        if masses.ndim == 0:
            if n is None:
                raise GammastarError("sample: give n for a single mass")
            m = np.full(int(n), float(masses))
        else:
            m = masses.ravel()
            if n is not None and n != len(m):
                raise GammastarError(f"sample: n={n} but {len(m)} masses given")
        n = len(m)
        self._check_mass(m, extrapolate)
        rng = np.random.default_rng(seed)
        todo = None  # None: all samples (first attempt, no index arrays); then the redraws
        first_bad = 0
        for _attempt in range(PHYSICAL_REDRAWS + 1):
            sub_seed = int(rng.integers(2**63))
            mt = m if todo is None else m[todo]
            mm = float(masses) if masses.ndim == 0 else mt
            x = self.sample_standardised(mm, len(mt), seed=sub_seed).astype(np.float64)
            q, e = self.pre.inverse(x)
            if todo is None:
                qT, E = q, e
            else:
                qT[todo], E[todo] = q, e
            if not physical:
                break
            bad = np.flatnonzero(e * e < mt * mt + q * q)
            if todo is None:
                first_bad = bad.size
            todo = bad if todo is None else todo[bad]
            if todo.size == 0:
                break
        if physical and todo is not None and todo.size:
            where = f"m = {float(masses):.4g} GeV" if masses.ndim == 0 else "the given masses"
            raise GammastarError(
                f"sample: {todo.size} of {n} samples at {where} still have E² < m² + q_T² after "
                f"{PHYSICAL_REDRAWS} redraws ({first_bad / n:.1%} unphysical in the first "
                f"draw); the flow{f' {self.path}' if self.path else ''} puts most of its "
                "probability outside the physical region there (physical=False keeps them)"
            )
        out = {"m": m, "qT": qT, "E": E}
        if four_vectors:
            phi = rng.uniform(0.0, 2 * np.pi, n)
            out["phi"] = phi
            out["px"] = qT * np.cos(phi)
            out["py"] = qT * np.sin(phi)
            out["pz"] = np.sqrt(np.clip(E**2 - m**2 - qT**2, 0.0, None))
        return out


def save_model(
    directory: str | os.PathLike[str],
    flow,
    pre: Preprocessing,
    arch: Mapping[str, Any],
    mass_range: tuple[float, float],
    meta: Mapping[str, Any],
    *,
    force: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model.pt`` (state_dict) and ``meta.json`` atomically into ``directory``."""
    import torch

    directory = Path(directory)
    model_path = directory / rundir.MODEL_FILE
    with atomic_path(model_path, force=force) as tmp:
        # CPU tensors: a model trained on a GPU loads where there is none
        torch.save({k: v.detach().to("cpu", copy=True) for k, v in flow.state_dict().items()}, tmp)
    info = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "architecture": dict(arch),
        "preprocessing": pre.to_json(),
        "mass_range": [float(mass_range[0]), float(mass_range[1])],
        "model_sha256": sha256_file(model_path),
        **dict(extra or {}),
        "meta": dict(meta),
    }
    rundir.write_artifact(directory / rundir.MODEL_META_FILE, info, "flow_meta.json", force=True)
    return directory


def resolve_model_dir(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.is_file():
        return p.parent
    if (p / rundir.MODEL_FILE).exists() or (p / rundir.MODEL_META_FILE).exists():
        return p
    if (p / "flow").is_dir():
        return p / "flow"
    raise GammastarError(f"{p}: no flow model here (expected model.pt and meta.json)")


def load(path: str | os.PathLike[str]) -> FlowModel:
    """Load a trained flow: the run directory, its ``flow/`` directory or ``flow/model.pt``.

    Raises:
        GammastarError: missing, foreign, tampered or inconsistent files (one clear line).
    """
    import torch

    d = resolve_model_dir(path)
    meta_path, model_path = d / rundir.MODEL_META_FILE, d / rundir.MODEL_FILE
    info = load_json(meta_path, what="flow metadata file")
    if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT:
        raise GammastarError(f"{meta_path}: not a gammastar flow metadata file")
    if info.get("format_version") != MODEL_FORMAT_VERSION:
        raise GammastarError(
            f"{meta_path}: flow format version {info.get('format_version')!r}; "
            f"this gammastar reads {MODEL_FORMAT_VERSION}"
        )
    if not model_path.exists():
        raise GammastarError(f"{model_path}: flow weights not found")
    if sha256_file(model_path) != info.get("model_sha256"):
        raise GammastarError(
            f"{model_path}: checksum does not match {meta_path.name} (modified or foreign file)"
        )
    rundir.validate(info, "flow_meta.json", where=str(meta_path))  # version and schema
    try:
        arch = info["architecture"]
        pre = Preprocessing.from_json(info["preprocessing"])
        mass_range = tuple(info["mass_range"])
        flow = build_flow(arch)
    except GammastarError:
        raise
    except Exception as err:  # noqa: BLE001 (reported as a GammastarError)
        raise GammastarError(f"{meta_path}: invalid flow metadata ({err})") from None
    try:
        state = torch.load(model_path, map_location="cpu", weights_only=True)
        flow.load_state_dict(state)
    except Exception as err:  # noqa: BLE001 (reported as a GammastarError)
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise GammastarError(f"{model_path}: not a loadable flow state_dict ({msg})") from None
    return FlowModel(flow, pre, arch, mass_range, meta=info, path=d)


def write_samples(
    path: str | os.PathLike[str],
    columns: Mapping[str, np.ndarray],
    meta: Mapping[str, Any],
    *,
    force: bool = False,
) -> Path:
    """Write samples as parquet (``.parquet``) or a ROOT TTree ``samples`` (``.root``).

    The metadata goes into the parquet schema metadata (key ``gammastar``) or, in ROOT, a
    TObjString ``meta`` holding the JSON.
    """
    path = Path(path)
    text = json.dumps(meta, default=str)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".root"):
        raise GammastarError(f"{path}: output must end in .parquet or .root")
    with atomic_path(path, force=force) as tmp:
        if suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.table({k: np.asarray(v) for k, v in columns.items()})
            table = table.replace_schema_metadata({"gammastar": text})
            pq.write_table(table, tmp)
        else:
            import uproot

            with uproot.recreate(tmp) as f:
                f["samples"] = {k: np.asarray(v) for k, v in columns.items()}
                f["meta"] = text
    return path
