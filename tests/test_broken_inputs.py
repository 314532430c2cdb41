"""Every CLI command over a catalogue of broken inputs: one `error:` line, exit 1 (2 for usage), no traceback,
and no file that existed before the command is changed or removed."""

from __future__ import annotations

import hashlib
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from miga.synth import generate_imigue, generate_smg
from stages.cli import app

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A tiny synthetic project (2025 iMiGUE layout, Kaggle SMG layout), ingested once so outputs exist to protect."""
    root = tmp_path_factory.mktemp("release")
    generate_imigue(root / "data/raw/imigue", "tiny", 5, edition="2025")
    generate_smg(root / "data/raw/smg", "tiny", 5, edition="kaggle2024")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"]["fusion"] = "none"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["ingest", "--dataset", "imigue"], ["ingest", "--dataset", "smg"], ["pose", "--dataset", "imigue"]):
        result = _invoke(root, command)
        assert result.exit_code == 0, result.output
    return root


def _invoke(cwd: Path, args: list[str]):
    import os

    before = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, args)
    finally:
        os.chdir(before)


def _edit_params(root: Path, change: Callable[[dict], None]) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    change(params)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _first(root: Path, pattern: str) -> Path:
    return sorted(root.glob(pattern))[0]


def _set(path: str, value):
    def change(params: dict) -> None:
        *parents, key = path.split(".")
        node = params
        for name in parents:
            node = node[name]
        node[key] = value
    return change


def _drop(path: str):
    def change(params: dict) -> None:
        *parents, key = path.split(".")
        node = params
        for name in parents:
            node = node[name]
        del node[key]
    return change


def _write(relative: str, text: str):
    return lambda root: (root / relative).parent.mkdir(parents=True, exist_ok=True) or (root / relative).write_text(text)


def _bad_label_cell(root: Path) -> None:
    label = _first(root, "data/raw/imigue/imigue_data_phase1/datasets/imigue_skeleton_train/*/*_label.csv")
    label.write_text("3,x,5\n" + label.read_text())


def _remove_train_labels(root: Path) -> None:
    _first(root, "data/raw/smg/smg_data_phase1/smg_skeleton_train/*/*_finelabels.csv").unlink()


def _remove_videos(root: Path) -> None:
    shutil.rmtree(root / "data/raw/imigue/imigue_rgb_phase1")


def _damage_video(root: Path) -> None:
    _first(root, "data/raw/imigue/imigue_rgb_phase1/train_data/*/*.mp4").write_bytes(b"not a video")


def _foreign_model(root: Path) -> None:
    """A model file of another shape for every stream, whichever of them params.yaml fuses."""
    from miga.track1.recipe import STREAMS

    (root / "models/track1").mkdir(parents=True, exist_ok=True)
    for stream in STREAMS:
        torch.save({"model": {"weight": torch.zeros(3)}}, root / f"models/track1/{stream}.pt")


def _submission_missing_ids(root: Path) -> None:
    (root / "sub.csv").write_text("Id,Target\n")


def _submission_out_of_range(root: Path) -> None:
    import polars as pl

    test = pl.read_parquet(root / "data/interim/imigue/manifest.parquet").filter(pl.col("split") == "test")
    rows = "".join(f"{sid},{99}\n" for sid in test["sample_id"])
    (root / "sub.csv").write_text("Id,Target\n" + rows)


@dataclass(frozen=True)
class Case:
    name: str
    args: list[str]
    params: Callable[[dict], None] | None = None
    files: Callable[[Path], None] | None = None
    exit_code: int = 1
    says: str = ""  # a word the error line must contain
    absent: tuple[str, ...] = ()  # modules hidden for the run (an optional extra not installed, wherever it is)


CASES = [
    Case("missing root", ["ingest", "--dataset", "imigue"], _set("datasets.imigue.root", "nowhere"), says="nowhere"),
    Case("unknown dataset format", ["ingest", "--dataset", "imigue"], _set("datasets.imigue.format", "avi"), says="format"),
    Case("unknown dataset", ["ingest", "--dataset", "kinetics"], says="kinetics"),
    Case("label row with a bad cell", ["ingest", "--dataset", "imigue"], files=_bad_label_cell, says="_label.csv"),
    Case("train labels missing", ["ingest", "--dataset", "smg"], files=_remove_train_labels, says="finelabels"),
    Case("no video for video pose", ["ingest", "--dataset", "imigue"], _set("datasets.imigue.pose", "mediapipe"),
         _remove_videos, says="video"),
    Case("no video for RGB fusion", ["ingest", "--dataset", "imigue"],
         lambda p: (_set("model.fusion", "late")(p), _set("model.streams", ["pose", "rgb"])(p)), _remove_videos, says="video"),
    Case("unreadable video", ["ingest", "--dataset", "imigue"], files=_damage_video, says=".mp4"),
    Case("test truth folder missing", ["ingest", "--dataset", "smg"], _set("datasets.smg.test_truth", "gone"), says="gone"),
    Case("unknown skeleton source", ["pose", "--dataset", "imigue"], _set("datasets.imigue.skeleton", "kinect"), says="skeleton"),
    Case("unknown pose backend", ["pose", "--dataset", "imigue"], _set("pose.backend", "openpose"), says="openpose"),
    Case("mmpose config missing", ["pose", "--dataset", "smg"], _set("datasets.smg.pose", "mmpose"), says="pose.mmpose.config"),
    Case("mmpose not installed", ["pose", "--dataset", "smg"],
         lambda p: (_set("datasets.smg.pose", "mmpose")(p), _set("pose.mmpose.config", "params.yaml")(p)), says="install-mmpose",
         absent=("mmpose", "mmpose.apis")),
    Case("missing params key", ["ingest", "--dataset", "smg"], _drop("datasets.smg.root"), says="datasets.smg.root"),
    Case("params not YAML", ["ingest", "--dataset", "smg"], files=_write("params.yaml", "datasets: [\n"), says="YAML"),
    Case("unknown fusion", ["track1", "train"], _set("model.fusion", "average"), says="model.fusion"),
    Case("unknown detector", ["track2", "train"], _set("track2.detector", "rnn"), says="track2.detector"),
    Case("model does not match params", ["track1", "predict"], files=_foreign_model,
         says=".pt: the saved model does not match params.yaml"),
    Case("submission file missing", ["submission", "check", "1", "absent.csv"], says="absent.csv"),
    Case("score: test Ids missing", ["score", "1", "sub.csv"], files=_submission_missing_ids, says="sub.csv"),
    Case("score: Target out of range", ["score", "1", "sub.csv"], files=_submission_out_of_range, says="sub.csv"),
    Case("score: bad track", ["score", "3", "sub.csv"], files=_submission_missing_ids, exit_code=2),
    Case("online: source missing", ["online", "absent_skeleton.csv"], exit_code=2),
    Case("render: unknown sample", ["render", "out.mp4", "--dataset", "imigue", "--sample", "9999_9"], exit_code=2),
]


def _snapshot(root: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file() and p.name != "params.yaml"}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_broken_input_is_one_line(case: Case, release: Path, tmp_path: Path, monkeypatch):
    for module in case.absent:
        monkeypatch.setitem(sys.modules, module, None)
    root = tmp_path / "project"
    shutil.copytree(release, root)
    if case.params:
        _edit_params(root, case.params)
    if case.files:
        case.files(root)
    before = _snapshot(root)
    result = _invoke(root, case.args)
    output = result.output
    assert result.exit_code == case.exit_code, output
    assert "Traceback" not in output and result.exception is None or isinstance(result.exception, SystemExit), output
    if case.exit_code == 1:
        errors = [line for line in output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, output
        assert case.says in errors[0], output
    after = _snapshot(root)
    changed = [str(p.relative_to(root)) for p, digest in before.items() if after.get(p) != digest]
    assert not changed, f"{case.name}: files changed or lost: {changed}"


def test_data_check_fails_on_a_broken_release(release: Path, tmp_path: Path):
    root = tmp_path / "project"
    shutil.copytree(release, root)
    _remove_train_labels(root)
    result = _invoke(root, ["data", "check", "smg"])
    assert result.exit_code == 1, result.output
    assert "error:" in result.output and "finelabels" in result.output and "Traceback" not in result.output


def test_data_check_passes_on_the_release(release: Path):
    result = _invoke(release, ["data", "check", "imigue"])
    assert result.exit_code == 0, result.output
    assert "2025 Kaggle" in result.output and "OK: 0 errors" in result.output
