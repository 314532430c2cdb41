"""A dataset's params entry (`datasets.<name>`) for the readers.

The readers index the entry (`entry["test_truth"]`): a validated params tree holds every key. A reader called
without an entry (a release read outside a project) reads the schema's defaults instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from miga.params import DatasetParams


def default_entry() -> dict:
    """The schema's defaults of a `datasets.<name>` entry: every key but `root` (which has none)."""
    return {name: field.default for name, field in DatasetParams.model_fields.items() if not field.is_required()}


def entry_or_default(entry: Mapping | None) -> Mapping:
    """`entry` as given, or `default_entry()` when there is none."""
    return default_entry() if entry is None else entry
