"""The reach's pyhf workspaces: a :class:`~gammastar.reach.stats.model.Model` as a pyhf spec
(:func:`build_spec`), a spec or a workspace file checked against pyhf's schema
(:func:`validate_spec`, :func:`load_workspace`), pyhf's model and data of a spec, and the
quiet and seeded pyhf calls (:func:`quiet_pyhf`, ``_numpy_seed``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from gammastar.errors import GammastarError
from gammastar.reach.stats.model import POI, Model

__all__ = ["build_spec", "load_workspace", "quiet_pyhf", "validate_spec"]


def build_spec(model: Model, *, observed: bool | None = None) -> dict[str, Any]:
    """The pyhf workspace spec (JSON-able dict) for ``model``.

    Observations: the observed counts if every channel has them (or ``observed=True``),
    else the background expectation (an Asimov background-only data set; the written
    ``meta`` says so).
    """
    use_obs = model.has_observed if observed is None else observed
    if use_obs and not model.has_observed:
        raise GammastarError("observed counts requested but not given for every channel")
    kpot = 1.0 + model.n_pot_unc
    channels, observations = [], []
    for c in model.channels:
        smods: list[dict[str, Any]] = [{"name": POI, "type": "normfactor", "data": None}]
        if model.n_pot_unc > 0:
            smods.append(
                {"name": "n_pot", "type": "normsys", "data": {"hi": kpot, "lo": 1.0 / kpot}}
            )
        for name, r in model.signal_nuisances.items():
            r_down = model.down(name)  # a two-sided one: hi = e^{w+}, lo = e^{-w-}
            if r > 0 or r_down > 0:
                smods.append(
                    {
                        "name": name,
                        "type": "normsys",
                        "data": {"hi": 1.0 + r, "lo": 1.0 / (1.0 + r_down)},
                    }
                )
        if c.eff_unc > 0:
            smods.append(
                {
                    "name": f"eff_{c.name}",
                    "type": "normsys",
                    "data": {"hi": 1.0 + c.eff_unc, "lo": 1.0 / (1.0 + c.eff_unc)},
                }
            )
        if np.any(c.mc_stat > 0):
            smods.append(
                {
                    "name": f"mcstat_{c.name}",
                    "type": "staterror",
                    "data": (np.asarray(c.mc_stat) * c.signal).tolist(),
                }
            )
        bmods: list[dict[str, Any]] = []
        if c.bkg_kappa > 1.0:
            bmods.append(
                {
                    "name": f"bkg_{c.name}",
                    "type": "normsys",
                    "data": {"hi": c.bkg_kappa, "lo": 1.0 / c.bkg_kappa},
                }
            )
        # pyhf needs a strictly positive total expectation in each bin
        bkg = np.maximum(c.background, 1e-9)
        channels.append(
            {
                "name": c.name,
                "samples": [
                    {"name": "signal", "data": c.signal.tolist(), "modifiers": smods},
                    {"name": "background", "data": bkg.tolist(), "modifiers": bmods},
                ],
            }
        )
        obs = c.observed if use_obs else c.background
        observations.append({"name": c.name, "data": np.asarray(obs, dtype=float).tolist()})
    poi_max = max(model.poi_max or _default_poi_max(model), 10.0)
    return {
        "channels": channels,
        "observations": observations,
        "measurements": [
            {
                "name": "reach",
                "config": {
                    "poi": POI,
                    "parameters": [{"name": POI, "bounds": [[0.0, poi_max]], "inits": [1.0]}],
                },
            }
        ],
        "version": "1.0.0",
    }


def _default_poi_max(model: Model) -> float:
    total_s = sum(float(c.signal.sum()) for c in model.channels)
    total_b = sum(float(c.background.sum()) for c in model.channels)
    return float(max(50.0, 20.0 * (1.0 + math.sqrt(total_b)))) / total_s


def validate_spec(spec: Mapping[str, Any], *, source: str = "workspace") -> Any:
    """Validate a spec against the pyhf JSON schema; return the :class:`pyhf.Workspace`.

    Raises:
        GammastarError: the spec is not a valid pyhf workspace (message names ``source``).
    """
    import pyhf

    try:
        with quiet_pyhf():
            pyhf.schema.validate(dict(spec), "workspace.json")
            return pyhf.Workspace(dict(spec))
    except (pyhf.exceptions.InvalidSpecification, pyhf.exceptions.InvalidWorkspaceOperation) as e:
        raise GammastarError(f"{source}: invalid pyhf workspace: {_short(e)}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise GammastarError(f"{source}: invalid pyhf workspace: {e}") from None


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def load_workspace(path: str) -> Any:
    """Read and validate a pyhf workspace JSON file."""
    import json

    try:
        with open(path) as f:
            spec = json.load(f)
    except FileNotFoundError:
        raise GammastarError(f"{path}: workspace not found") from None
    except (OSError, ValueError) as err:
        raise GammastarError(f"{path}: not a readable JSON workspace ({err})") from None
    spec = {k: v for k, v in spec.items() if k != "meta"} if isinstance(spec, dict) else spec
    return validate_spec(spec, source=str(path))


def _pyhf_model_data(spec_or_ws: Any) -> tuple[Any, Any]:
    import pyhf

    ws = spec_or_ws if isinstance(spec_or_ws, pyhf.Workspace) else validate_spec(spec_or_ws)
    with quiet_pyhf():
        model = ws.model()
        data = ws.data(model)
    return model, data


@contextlib.contextmanager
def quiet_pyhf() -> Iterator[None]:
    """Silence the jsonschema deprecation that pyhf 0.7.6 triggers (``RefResolver``)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"jsonschema\.RefResolver is deprecated", category=DeprecationWarning
        )
        yield


@contextlib.contextmanager
def _numpy_seed(seed: int | None) -> Iterator[None]:
    """pyhf's numpy backend samples toys from numpy's global RNG: seed it, then restore it."""
    state = np.random.get_state()  # noqa: NPY002
    if seed is not None:
        np.random.seed(seed % 2**32)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002
