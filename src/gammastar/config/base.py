"""The base of the config's sections: :class:`Section` (unknown keys are errors, values
immutable), the constrained number types every section uses and :func:`_registered`, a
validator of a name against a registry imported only when a config is validated.
"""

from __future__ import annotations

import importlib
from typing import Annotated

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


PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )
