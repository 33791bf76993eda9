"""Errors of the cost model. A ``CostModelError`` is a ``ConfigError`` (hence a ``LowbitError``),
so the command line prints it as ``error: ...`` without a traceback."""
from __future__ import annotations

from lowbit_rbp.errors import ConfigError


class CostModelError(ConfigError):
    """A network, energy table, floorplan or option given to the cost model is invalid."""


def bad(what: str, value, allowed) -> CostModelError:
    """One message shape: what, the value given, what is allowed."""
    return CostModelError(f"{what}: got {value!r}; allowed: {allowed}")
