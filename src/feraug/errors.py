"""User-facing errors. The CLI prints these as one line and exits non-zero (no traceback)."""

from __future__ import annotations


class FeraugError(Exception):
    """Base class for errors caused by the user's input or environment."""


class DataError(FeraugError):
    """Bad or missing data: names the file (and row) and what is wrong."""


class ConfigError(FeraugError):
    """Invalid configuration value or combination of options."""


class CheckpointError(FeraugError):
    """Missing, corrupt or incompatible checkpoint."""
