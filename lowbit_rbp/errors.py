"""The project's error types: each names the bad value and what is allowed."""


class LowbitError(Exception):
    """Base class: an error a user can act on (printed without a traceback by the CLI)."""


class ConfigError(LowbitError, ValueError):
    """A configuration value is unknown, out of range or inconsistent."""


class DataError(LowbitError):
    """A data file is missing, truncated or fails its checksum."""


def bad_value(what: str, value, allowed) -> ConfigError:
    """One message shape for every bad value: what, the value given, what is allowed."""
    return ConfigError(f"{what}: got {value!r}; allowed: {allowed}")
