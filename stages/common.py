"""What every stage shares: reading params.yaml and turning expected failures into clear exits."""

from __future__ import annotations

import functools
import sys
import warnings
from pathlib import Path

import typer
import yaml

from miga.contracts import ContractError
from miga.datasets import DatasetFormatError
from miga.errors import ConfigError, MigaError
from miga.project import interim  # noqa: F401  (the stages' one name for data/interim/<dataset>)
from miga.video import VideoError

PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="Parameters file (params.yaml).")
EXPECTED_ERRORS = (MigaError, ContractError, DatasetFormatError, VideoError, FileNotFoundError, IsADirectoryError)


class Params(dict):
    """A params.yaml section: a missing key is a ConfigError naming its full path, not a KeyError."""

    def __init__(self, data: dict, path: str = "", source: Path = Path("params.yaml")):
        super().__init__({k: Params(v, f"{path}{k}.", source) if isinstance(v, dict) else v for k, v in data.items()})
        self._path, self._source = path, source

    def __missing__(self, key):
        raise ConfigError(f"{self._source}: missing key '{self._path}{key}'")


def load_params(path: Path) -> Params:
    try:
        params = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: parameters file not found") from None
    except yaml.YAMLError as err:
        raise ContractError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from err
    if not isinstance(params, dict):
        raise ContractError(f"{path}: expected a mapping of stage sections")
    return Params(params, source=Path(path))


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


def track1_uses_rgb(config: dict) -> bool:
    """Does Track 1 read RGB: cross-attention fusion, or `rgb` among the streams late fusion (or `none`: the first) trains?"""
    model = config.get("model", {})
    fusion, streams = model.get("fusion", "none"), list(model.get("streams", ["pose", "rgb"]))
    return fusion == "crossattn" or "rgb" in (streams if fusion == "late" else streams[:1])
