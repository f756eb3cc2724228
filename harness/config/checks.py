"""The error every config check raises, and the checks the schemas share."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A config value that is not allowed; the message names the field, value and choices."""


def require_choice(field_name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Refuse a value outside `choices`, naming the field and every valid choice."""
    if value not in choices:
        raise ConfigError(
            f"{field_name}={value!r} is not valid; choose one of: {', '.join(choices)}"
        )


def require_positive(field_name: str, value: float | int | None, allow_zero: bool = False) -> None:
    """Refuse a negative value (and zero unless `allow_zero`); None passes."""
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{field_name}={value!r} is not valid; it must be {bound}")
