"""What every stage shares: reading params.yaml and turning expected failures into clear exits."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import typer
import yaml

from miga.contracts import ContractError
from miga.datasets import DatasetFormatError
from miga.video import VideoError

PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="Parameters file (params.yaml).")
EXPECTED_ERRORS = (ContractError, DatasetFormatError, VideoError, FileNotFoundError)


def load_params(path: Path) -> dict:
    try:
        params = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: parameters file not found") from None
    except yaml.YAMLError as err:
        raise ContractError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(params, dict):
        raise ContractError(f"{path}: expected a mapping of stage sections")
    return params


def section(params: dict, name: str, path: Path = Path("params.yaml")) -> dict:
    try:
        return params[name]
    except KeyError:
        raise ContractError(f"{path}: no '{name}' section") from None


def dataset_entry(params: dict, name: str) -> dict:
    datasets = section(params, "datasets")
    if name not in datasets:
        raise ContractError(f"params: no dataset {name!r} under 'datasets' (have: {sorted(datasets)})")
    return datasets[name]


def interim(dataset: str) -> Path:
    return Path("data/interim") / dataset


def clean_errors(command):
    """Report expected failures (bad input files) as one line naming the file, exit code 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except EXPECTED_ERRORS as err:
            typer.secho(f"error: {err}", fg="red", err=True)
            sys.exit(1)

    return wrapper
