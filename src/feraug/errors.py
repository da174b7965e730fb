"""User-facing errors. The CLI prints these as one line and exits non-zero (no traceback)."""

from __future__ import annotations

from typing import Any, TypeVar

M = TypeVar("M")


class FeraugError(Exception):
    """Base class for errors caused by the user's input or environment."""


class DataError(FeraugError):
    """Bad or missing data: names the file (and row) and what is wrong."""


class ConfigError(FeraugError):
    """Invalid configuration value or combination of options."""


class CheckpointError(FeraugError):
    """Missing, corrupt or incompatible checkpoint."""


class DivergedError(FeraugError):
    """A training run whose loss or weights stopped being finite; nothing of it was kept as
    a result."""


def validate_config(model_class: type[M], values: dict[str, Any], source: str,
                    whole: str = "config") -> M:
    """``model_class`` (a pydantic model) validated from ``values``, or one ConfigError line
    ``"SOURCE: field: problem; ..."`` (``whole`` names problems that concern no one field)."""
    from pydantic import ValidationError

    try:
        return model_class.model_validate(values)  # type: ignore[attr-defined]
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or whole}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigError(f"{source}: {problems}") from None
