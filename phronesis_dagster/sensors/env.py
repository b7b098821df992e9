"""The sensors' settings read from environment variables: one parser, so every setting refuses a
bad value the same way, naming its variable."""

from __future__ import annotations

import os
from collections.abc import Mapping


def non_negative_number(
    name: str, default: float, *, unit: str, env: Mapping[str, str] | None = None
) -> float:
    """The number in variable `name` (`default` when unset or empty). A value that is not a
    number, or is negative, is a `ValueError` naming the variable and the `unit` it is in."""
    env = os.environ if env is None else env
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of {unit}, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {raw!r}")
    return value
