"""What every stage shares: reading params.yaml and turning expected failures into clear exits."""

from __future__ import annotations

import functools
import sys
import warnings
from pathlib import Path

import typer

from miga.contracts import ContractError
from miga.datasets import DatasetFormatError
from miga.errors import MigaError
from miga.params import load_params
from miga.project import interim

__all__ = ["EXPECTED_ERRORS", "PARAMS_OPTION", "clean_errors", "dataset_entry", "interim", "load_params"]
from miga.video import VideoError

PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="Parameters file (params.yaml).")
EXPECTED_ERRORS = (MigaError, ContractError, DatasetFormatError, VideoError, OSError)  # OSError: a missing, unreadable or full file


def dataset_entry(params: dict, name: str) -> dict:
    datasets = params["datasets"]
    if name not in datasets:
        raise ContractError(f"params: no dataset {name!r} under 'datasets' (have: {sorted(datasets)})")
    return datasets[name]


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    typer.secho(f"warning: {message}", fg="yellow", err=True)


def clean_errors(command):
    """Report expected failures (bad input files, bad params) as one line naming the cause, exit code 1.

    Warnings print as one `warning:` line each while the command runs.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        shown = warnings.showwarning
        warnings.showwarning = _one_line_warning
        try:
            return command(*args, **kwargs)
        except EXPECTED_ERRORS as err:
            typer.secho(f"error: {' '.join(str(err).split())}", fg="red", err=True)
            sys.exit(1)
        finally:
            warnings.showwarning = shown

    return wrapper
