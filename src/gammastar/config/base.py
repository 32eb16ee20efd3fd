"""The base of the config's sections: :class:`Section` (unknown keys are errors, values
immutable), the constrained number types every section uses, :func:`_registered`, a
validator of a name against a registry imported only when a config is validated, and
:func:`omit_unset`, what a section's serializer leaves out so that old configs hash as before.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _registered(registry: str, what: str, *, always: tuple[str, ...] = ()) -> AfterValidator:
    """A validator of a name against a registry ``"module:NAME"`` (a mapping or tuple of names),
    imported when a config is validated, not with this module (the CLI starts without numpy
    and scipy); ``always``: names valid without looking (``auto``: a rule over the registry).
    """

    def check(v: str) -> str:
        if v in always:
            return v
        module, name = registry.split(":")
        known = (*always, *getattr(importlib.import_module(module), name))
        if v not in known:
            raise ValueError(f"unknown {what} {v!r}; one of {list(known)} ({module}.{name})")
        return v

    return AfterValidator(check)


def omit_unset(out: dict[str, Any], *keys: str) -> dict[str, Any]:
    """``out`` (a section's dump) without those of ``keys`` whose value is ``None``: a key
    added to a section after configs were written is left out when not given, so a config
    without it hashes as it did before the key existed and its runs stay up to date."""
    for key in keys:
        if out.get(key) is None:
            out.pop(key, None)
    return out


PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )
