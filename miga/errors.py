"""Errors a user can fix (a bad file, a bad parameter, a missing extra); the CLI prints each as one line."""

from __future__ import annotations


class MigaError(ValueError):
    """Base of the errors that name their cause for the user; never a bug in miga."""


class ConfigError(MigaError):
    """A parameter is missing or has a value miga does not know."""


class MissingExtraError(MigaError, ImportError):
    """An optional backend's packages are not installed; the message says how to install them."""
