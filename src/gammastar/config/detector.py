"""The long-lived-particle detector: ``detector`` (:class:`DetectorConfig`: its window keys
and shapes, checked through :mod:`gammastar.physics.volumes`) and ``events`` (the signal
events written for a detector simulation).
"""

from __future__ import annotations

import importlib
import math
from typing import Annotated, Any

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gammastar.config.base import NonNegFloat, PositiveFloat, Probability, Section, omit_unset


# --------------------------------------------------------------------------- detector
def _shape_error(key: tuple[str, ...], message: str, data: Any) -> ValidationError:
    """A validation error at ``detector.<key>`` with a one-line message."""
    return ValidationError.from_exception_data(
        "DetectorConfig",
        [
            {
                "type": PydanticCustomError("detector_shape", "{message}", {"message": message}),
                "loc": key,
                "input": data,
            }
        ],
    )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    except (TypeError, ValueError):
        return False


def _detector_shapes(data: dict[str, Any]) -> dict[str, Any]:
    """``detector:`` with ``volume``/``plane``/``daughters`` checked through their registries
    (:mod:`gammastar.physics.volumes`, imported here, not with this module), the window keys
    they imply filled in (a given one must agree) and the shapes stored as their finite
    mappings; raises ``ShapeError`` whose key starts with the detector key."""
    vol_mod = importlib.import_module("gammastar.physics.volumes")
    shape_error = importlib.import_module("gammastar.physics.volumes.checks").ShapeError

    def build(key: str, registry: Any) -> Any:
        if data.get(key) is None:
            return None
        try:
            return vol_mod.build(registry, data[key])
        except shape_error as err:
            raise shape_error((key, *err.key), err.message) from None

    if isinstance(data.get("daughters"), dict) and "efficiency" in data["daughters"]:
        raise shape_error(("daughters", "efficiency"), "give it once, as detector.efficiency")
    vol = build("volume", vol_mod.VOLUMES)
    plane = build("plane", vol_mod.PLANES)
    req = build("daughters", vol_mod.Requirements)

    # window key -> (the value the shapes imply, where it comes from)
    implied: dict[str, tuple[Any, str]] = {}
    if vol is not None:
        implied["l1"] = (vol.z1, "detector.volume.z1")
        implied["l2"] = (None if math.isinf(vol.z2) else vol.z2, "detector.volume.z2")
    if req is not None:
        implied["both_daughters"] = (req.require == "both", "detector.daughters.require")
        implied["min_daughter_energy"] = (req.min_energy, "detector.daughters.min_energy")
    both = req.require == "both" if req is not None else data.get("both_daughters") is True
    # no polar window: every direction, θ from 0 to π
    if req is not None and both:
        where = "detector.daughters.theta_window"
        window = req.theta_window or (0.0, math.pi)
    elif vol is not None and not both:
        where = f"detector.volume (shape {vol.name})"
        window = (vol.theta_min, vol.theta_max) if vol.name == "cone" else (0.0, math.pi)
    else:
        window = None
    if window is not None:
        implied["theta_min"] = (window[0], where)
        implied["theta_max"] = (window[1], where)
    if plane is not None:
        implied["plane_z"] = (plane.z, "detector.plane.z")
        if plane.name == "annulus":
            r_min, r_max = plane.r_min, plane.r_max
        elif plane.name == "circle":
            r_min, r_max = 0.0, plane.radius
        else:  # no radial edges: the annulus keys are open
            r_min, r_max = 0.0, math.inf
        implied["r_min"] = (r_min, f"detector.plane (shape {plane.name})")
        implied["r_max"] = (
            None if math.isinf(r_max) else r_max,
            f"detector.plane (shape {plane.name})",
        )
    for key, (value, where) in implied.items():
        if key in data and not _same(data[key], value):
            shown = f"{value:g}" if isinstance(value, float) else repr(value)
            raise shape_error(
                (key,),
                f"{data[key]!r} disagrees with {where}, which means {key} = {shown}; give it once",
            )

    if plane is not None:
        z1, z2 = (vol.z1, vol.z2) if vol is not None else (data.get("l1", 5.0), data.get("l2"))
        try:
            z2 = math.inf if z2 is None else float(z2)
        except (TypeError, ValueError):
            z2 = None  # a bad l2 is reported by its own field
        if z2 is not None and not plane.z > z2:
            raise shape_error(
                ("plane", "z"),
                f"the plane at z = {plane.z:g} m lies inside the decay volume (z from {z1:g} to "
                f"{z2:g} m); it must be downstream of it",
            )
    if req is not None and req.min_separation > 0 and plane is None and data.get("plane_z") is None:
        raise shape_error(("daughters", "min_separation"), "needs a detection plane (plane:)")

    out = dict(data)
    for key, (value, _) in implied.items():
        out.setdefault(key, value)
    for key, shape in (("volume", vol), ("plane", plane), ("daughters", req)):
        if shape is not None:
            out[key] = vol_mod.spec(shape)
    if req is not None:
        del out["daughters"]["efficiency"]  # detector.efficiency holds it
    return out


class DetectorConfig(Section):
    r"""Long-lived-particle detector geometry (paper App. B, docs/explanation/physics.md §9;
    gammastar.reach.acceptance).

    Distances are along the beam (z) from the A′ production point.

    Two ways to describe it. The window keys (``l1``, ``l2``, ``theta_min``, ``theta_max``,
    ``both_daughters``, ``min_daughter_energy``, ``plane_z``, ``r_min``, ``r_max``) are the
    axially symmetric detector; as shapes of :mod:`gammastar.physics.volumes` they are

    * without ``both_daughters``: the volume ``cone`` (θ_min ≤ θ < θ_max about the target,
      z1 = ``l1``, z2 = ``l2``, open for ``l2: null``), the A′ line itself at the plane
      (``daughters: {require: aprime}``);
    * with ``both_daughters``: the volume ``slab`` (z from ``l1`` to ``l2``), both daughters
      required (``daughters: {require: both, min_energy: <min_daughter_energy>,
      theta_window: [theta_min, theta_max]}``, the window on their directions);
    * ``plane_z``: the plane ``annulus`` (``r_min``, ``r_max``, z = ``plane_z``; no
      ``r_max``: no outer edge).

    ``volume``, ``plane`` and ``daughters`` give the shapes themselves (any registered shape,
    off axis, a beam hole, either daughter, a minimum separation). The window keys they imply
    are filled in (the z range always; the polar window, the daughters' cuts and the annulus
    where the shapes have them), and a window key given as well must agree with them. Sizes
    are positive, z2 > z1 ≥ 0, and the plane lies downstream of the volume (z > z2); each
    broken rule is one line naming its ``detector.`` key.
    """

    l1: NonNegFloat = 5.0
    """Start of the decay volume (or the shield length) in m. The defaults of ``l1``,
    ``theta_min`` and ``theta_max`` are the paper's mock detector, with ``mock:`` only: a
    config without ``mock:`` that has a ``reach``, ``events`` or ``idm`` section states them
    (or a ``volume`` that implies them)."""
    l2: PositiveFloat | None = None
    """End of the decay volume in m; ``None`` means no end (paper's mock detector)."""
    theta_min: NonNegFloat = 0.035
    """Lower edge of the polar-angle window (rad) on the A′ direction, or on both leptons'
    with ``both_daughters``: θ ≥ θ_min (:func:`gammastar.source.hits.detector_hits`)."""
    theta_max: PositiveFloat = 0.120
    """Upper edge of the polar-angle window (rad): θ < θ_max; without ``both_daughters`` the
    opening of the decay volume's ``cone``."""
    efficiency: Probability = 1.0
    """Constant selection (trigger, reconstruction, PID) efficiency."""
    both_daughters: bool = False
    """Decay A′ → ℓℓ isotropically and require both leptons inside the acceptance."""
    min_daughter_energy: NonNegFloat = 0.0
    """Minimum lepton energy in GeV (with ``both_daughters``)."""
    plane_z: PositiveFloat | None = None
    """Downstream detector plane (m) for a transverse acceptance r_min < r < r_max."""
    r_min: NonNegFloat = 0.0
    """Inner radius in m of the annulus at ``plane_z`` about the beam line: each line from
    the decay vertex (the A′'s, or each lepton's with ``both_daughters``) must cross the plane
    at r ≥ r_min (0: no hole)."""
    r_max: PositiveFloat | None = None
    """Outer radius in m of the annulus at ``plane_z`` (r ≤ r_max); ``None``: no outer edge."""
    z_steps: Annotated[int, Field(gt=0, le=1000)] = 24
    """Cells of the decay volume when the hit depends on the vertex (``plane_z``, or a
    ``plane`` with the shapes: cells along each A′ path inside the volume)."""
    volume: dict[str, Any] | None = None
    """The decay volume as a shape: ``shape:`` a key of
    :data:`gammastar.physics.volumes.VOLUMES` (``slab``, ``cone``, ``cylinder``, ``box``,
    ``frustum``) and its fields (m, rad; ``offset: [x0, y0]``); ``None``: the window keys'."""
    plane: dict[str, Any] | None = None
    """The detection plane as a shape: ``shape:`` a key of
    :data:`gammastar.physics.volumes.PLANES` (``rectangle``, ``circle``, ``annulus``), its
    fields, ``z`` downstream of the volume and an optional ``hole: {shape: circle|rectangle,
    ...}`` (centred on the beam line unless given a ``center``)."""
    daughters: dict[str, Any] | None = None
    """What the detector asks of the daughters (:class:`gammastar.physics.volumes.Requirements`):
    ``require`` (``both``, ``either`` or ``aprime``), ``min_energy`` (GeV), ``min_separation``
    at the plane (m), ``theta_window`` ([θ_min, θ_max] on their directions); the efficiency
    is ``efficiency``."""

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return omit_unset(handler(self), "volume", "plane", "daughters")

    @model_validator(mode="before")
    @classmethod
    def _shapes(cls, data: Any) -> Any:
        if not isinstance(data, dict) or all(
            data.get(k) is None for k in ("volume", "plane", "daughters")
        ):
            return data
        shape_error = importlib.import_module("gammastar.physics.volumes.checks").ShapeError
        try:
            return _detector_shapes(data)
        except shape_error as err:
            raise _shape_error(err.key, err.message, data) from None

    @model_validator(mode="after")
    def _check_order(self) -> DetectorConfig:
        if self.l2 is not None and self.l2 <= self.l1:
            raise ValueError(f"l2 ({self.l2}) must be larger than l1 ({self.l1})")
        if self.theta_max <= self.theta_min:
            raise ValueError(
                f"theta_max ({self.theta_max}) must be larger than theta_min ({self.theta_min})"
            )
        if self.plane_z is not None and (self.l2 is None or self.plane_z <= self.l2):
            raise ValueError(f"plane_z ({self.plane_z}) needs l2 set and smaller than plane_z")
        if self.r_max is not None and self.r_max <= self.r_min:
            raise ValueError(f"r_max ({self.r_max}) must be larger than r_min ({self.r_min})")
        return self


# --------------------------------------------------------------------------- events
class EventsConfig(Section):
    """Signal events for detector simulation (``gammastar events``, docs/howto/signal-events.md).

    The beam spot and the target's interaction length are the facility's: no defaults.
    """

    aprime_pdgid: int = 4900022
    """PDG id written for the A′ (default: Pythia 8 Hidden Valley ``gammav``)."""
    beam_spot_sigma: tuple[NonNegFloat, NonNegFloat] | None = None
    """Gaussian beam spot (σ_x, σ_y) at the target in m ([0, 0]: a point beam)."""
    mcp_pdgid: int | None = None
    """PDG id written for the millicharged χ (χ̄: its negative). No default: the PDG numbering
    has no code for a fractional charge ≪ e; choose one your Geant4 setup defines."""
    target_interaction_length: PositiveFloat | None = None
    """Nuclear interaction length λ_I of the target (dump) material in m: production depth
    ∝ e^{−z/λ_I} over the thickness ``reach.target_interaction_lengths`` (or the data's)."""
