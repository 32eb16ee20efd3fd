"""The order of the extrapolation fit's parameters in its vectors and covariances
(:class:`Layout`): the shared ``y_mean`` and ``y_sigma`` where free, then one ``T`` per fit
group, then one ``a`` (the m_T power) per group where the powers are fitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Layout", "Parameters"]


class Parameters(NamedTuple):
    """A parameter vector unpacked (:meth:`Layout.unpack`): the shared ȳ and σ_y, and per fit
    group its T and m_T power a."""

    y_mean: float
    y_sigma: float
    t: NDArray[np.float64]
    a: NDArray[np.float64]


@dataclass(frozen=True)
class Layout:
    """Which parameters a vector holds and where: ``y_mean`` (when :attr:`y_mean` is free),
    ``y_sigma`` (when :attr:`y_sigma` is free), ``T_0 … T_{G−1}``, and ``a_0 … a_{G−1}``
    (when :attr:`power` is fitted), in that order.

    The fit's covariance (:attr:`Extrapolation.covariance`) always holds σ_y's row (zeros
    where σ_y is external); the optimiser's vector holds σ_y only where it is fitted.

    Example:
        >>> lay = Layout(2, y_mean=False, power=True)
        >>> lay.names
        ('y_sigma', 'T_0', 'T_1', 'a_0', 'a_1')
        >>> lay.index("a", 1), lay.index("y_sigma")
        (4, 0)
        >>> lay.unpack(lay.pack(3.37, 1.2, [0.2, 0.3], [0.5, 0.6]), y_mean=3.37).a.tolist()
        [0.5, 0.6]
    """

    n_groups: int
    y_mean: bool = True
    """ȳ is a parameter (fitted); ``False``: fixed, not in the vector."""
    y_sigma: bool = True
    """σ_y is a parameter; ``False``: fixed at an external value, not in the vector."""
    power: bool = False
    """One m_T power a per group is a parameter; ``False``: every group's a is fixed."""

    @classmethod
    def of(cls, n_groups: int, mu_fixed: float | None, sigma: float | None = None,
           power: float | None = 0.0) -> Layout:  # fmt: skip
        """The layout of the fit's arguments as :func:`fit_joint` takes them: ȳ fixed at
        ``mu_fixed`` unless ``None``, σ_y at ``sigma`` unless ``None``, the powers fitted
        where ``power`` is ``None``."""
        return cls(n_groups, mu_fixed is None, sigma is None, power is None)

    @property
    def head(self) -> int:
        """The number of shared parameters (ȳ, σ_y) in the vector."""
        return int(self.y_mean) + int(self.y_sigma)

    @property
    def size(self) -> int:
        return self.head + self.n_groups * (2 if self.power else 1)

    @property
    def names(self) -> tuple[str, ...]:
        """The parameters' names in order, as ``yields.json`` ``parameter_covariance`` writes
        them."""
        g = range(self.n_groups)
        return (("y_mean",) if self.y_mean else ()) + (("y_sigma",) if self.y_sigma else ()) + (
            tuple(f"T_{k}" for k in g) + (tuple(f"a_{k}" for k in g) if self.power else ()))  # fmt: skip

    def index(self, name: str, group: int = 0) -> int:
        """The position of ``y_mean``, ``y_sigma``, or fit group ``group``'s ``T`` or ``a``.

        Raises:
            KeyError: the layout does not hold that parameter.
        """
        if name == "y_mean" and self.y_mean:
            return 0
        if name == "y_sigma" and self.y_sigma:
            return int(self.y_mean)
        if name in ("T", "a") and 0 <= group < self.n_groups:
            if name == "T":
                return self.head + group
            if self.power:
                return self.head + self.n_groups + group
        raise KeyError(f"no free parameter {name!r} (group {group}) in this layout")

    def group_rows(self, group: int) -> list[int]:
        """The positions of fit group ``group``'s parameters in the order (T, [ȳ], [σ_y],
        [a]): those of the four (T, ȳ, σ_y, a) that the layout holds."""
        return ([self.index("T", group)] + ([self.index("y_mean")] if self.y_mean else [])
                + ([self.index("y_sigma")] if self.y_sigma else [])
                + ([self.index("a", group)] if self.power else []))  # fmt: skip

    @property
    def local(self) -> list[int]:
        """Which of a group's (T, ȳ, σ_y, a) the layout holds, in :meth:`group_rows` order."""
        return [0] + ([1] if self.y_mean else []) + ([2] if self.y_sigma else []) + (
            [3] if self.power else [])  # fmt: skip

    def pack(self, y_mean: float, y_sigma: float, t: ArrayLike,
             a: ArrayLike | None = None) -> NDArray[np.float64]:  # fmt: skip
        """The vector of these values (those the layout holds)."""
        head = ([y_mean] if self.y_mean else []) + ([y_sigma] if self.y_sigma else [])
        tail = list(np.asarray(t, dtype=np.float64))
        if self.power:
            tail += list(np.asarray(a, dtype=np.float64))
        return np.asarray(head + tail, dtype=np.float64)

    def unpack(self, q: ArrayLike, y_mean: float | None = None, y_sigma: float | None = None,
               power: float | None = 0.0) -> Parameters:  # fmt: skip
        """The values of the vector ``q``; what it does not hold from ``y_mean``, ``y_sigma``
        and ``power`` (every group's a)."""
        q = np.asarray(q, dtype=np.float64)
        mu = q[0] if self.y_mean else (np.nan if y_mean is None else y_mean)
        s = q[int(self.y_mean)] if self.y_sigma else (np.nan if y_sigma is None else y_sigma)
        g, h = self.n_groups, self.head
        t = q[h : h + g]
        a = q[h + g : h + 2 * g] if self.power else np.full(g, 0.0 if power is None else power)
        return Parameters(float(mu), float(s), t, a)
