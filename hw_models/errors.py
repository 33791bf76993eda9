"""Errors of the hardware models. The command line prints a ``CostModelError`` as ``error: ...``
without a traceback."""
from __future__ import annotations


class CostModelError(ValueError):
    """A network, energy table, floorplan or option given to the hardware models is invalid."""


def bad(what: str, value, allowed) -> CostModelError:
    """One message shape: what, the value given, what is allowed."""
    return CostModelError(f"{what}: got {value!r}; allowed: {allowed}")
