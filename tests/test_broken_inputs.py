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

from miga.synth import generate_imigue, generate_smg
from tests.conftest import invoke_cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A tiny synthetic project (2025 iMiGUE layout, Kaggle SMG layout), ingested once so outputs exist to protect."""
    root = tmp_path_factory.mktemp("release")
    generate_imigue(root / "data/raw/imigue", "tiny", 5, edition="2025")
    generate_smg(root / "data/raw/smg", "tiny", 5, edition="kaggle2024")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["track1"]["model"]["fusion"] = "none"
    params["track2"]["model"].update(layers=2, channels=8, ensemble=1)
    params["track2"]["train"].update(epochs=1, windows_per_epoch=2, window=64, affine_copies=0)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["ingest", "--dataset", "imigue"], ["ingest", "--dataset", "smg"], ["pose", "--dataset", "imigue"],
                    ["pose", "--dataset", "smg"], ["track2", "train"]):
        result = invoke_cli(root, command)
        assert result.exit_code == 0, result.output
    return root


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


def _copy_skeleton(root: Path, name: str = "probe_skeleton.csv") -> Path:
    source = _first(root, "data/raw/smg/**/Sample0036_skeleton.csv")
    shutil.copy(source, root / name)
    return root / name


def _old_output(relative: str, text: str = "an earlier run's output\n"):
    """An output a previous run wrote: the broken run must leave it as it was."""
    return _write(relative, text)


def _both(*changes):
    def change(target) -> None:
        for one in changes:
            one(target)
    return change


def _stream_release(sample_ids: list[str]):
    """A stream-format dataset at data/raw/clips whose samples.csv lists `sample_ids` (train, val, test, ...)."""
    def make(root: Path) -> None:
        folder = root / "data/raw/clips"
        folder.mkdir(parents=True)
        (folder / "dataset.yaml").write_text("layout: kinect20\nfps: 30\nclasses: [a, b]\n")
        splits = ["train", "val", "test"]
        rows = "".join(f"{sid},{i},{splits[i % 3]}\n" for i, sid in enumerate(sample_ids))
        (folder / "samples.csv").write_text("sample_id,subject,split\n" + rows)
        (folder / "segments.csv").write_text("sample_id,label,start_frame,end_frame\n")
        header = "frame," + ",".join(f"j{j}_{c}" for j in range(20) for c in ("x", "y", "score"))
        for sid in sample_ids:
            if "/" not in sid:
                (folder / f"{sid}.csv").write_text(header + "\n" + "".join(f"{t}" + ",0.5" * 60 + "\n" for t in range(40)))
    return make


_CLIPS = {"root": "data/raw/clips", "format": "stream"}


def _label_file(root: Path) -> Path:
    return _first(root, "data/raw/imigue/imigue_data_phase1/datasets/imigue_skeleton_train/*/*_label.csv")


def _empty_label_file(root: Path) -> None:
    _label_file(root).write_bytes(b"")


def _label_file_a_folder(root: Path) -> None:
    path = _label_file(root)
    path.unlink()
    path.mkdir()


def _label_file_missing(root: Path) -> None:
    _label_file(root).unlink()


def _light_hand_cell(value: str):
    def damage(root: Path) -> None:
        path = _first(root, "data/raw/imigue/imigue_data_phase1/datasets/imigue_skeleton_train/*/*_light_hand.csv")
        lines = path.read_text().splitlines()
        row = next(i for i, line in enumerate(lines) if line[:1].isdigit())
        cells = lines[row].split(",")
        cells[3] = value
        lines[row] = ",".join(cells)
        path.write_text("\n".join(lines) + "\n")
    return damage


def _torch_file(relative: str, *, truncate: bool):
    def write(root: Path) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not truncate:
            path.write_bytes(b"")
            return
        torch.save({"model": {"weight": torch.zeros(64, 64)}, "epoch": 1}, path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return write


def _stale_keypoints(root: Path) -> None:
    """keypoints.parquet from before a re-ingest: one clip of the manifest is not in it."""
    from miga.io import KeypointStore, write_keypoints

    path = root / "data/interim/imigue/keypoints.parquet"
    store = KeypointStore(path)
    kept = {sid: (store.start_frame(sid), store[sid]) for sid in store.ids[1:]}
    write_keypoints(kept, store.layout, path, source=store.source)


def _score_file(name: str, scores) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        import polars as pl

        pl.DataFrame({"sample_id": ["0001_0", "0002_0"], "split": ["test", "test"], "label": [None, None],
                      "scores": scores}, schema_overrides={"label": pl.Int64}).write_parquet(root / name)
    return write


def _empty_crops(root: Path) -> None:
    """An RGB crop cache that holds no clip (their videos were missing)."""
    from miga.track1.rgb import build_crop_cache

    build_crop_cache({}, root / "data/interim/imigue/rgb_crops", size=8, progress=False)


_ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n" \
              "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"


_EMOTIONS = "data/raw/imigue/video_emotions.csv"
_EMOTION_EVENTS = ["emotion", "events", "--source", "labels"]

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
    Case("no video for RGB fusion", ["track1", "train"],
         lambda p: (_set("track1.model.fusion", "late")(p), _set("track1.model.streams", ["pose", "rgb"])(p)),
         _empty_crops, says="rgb_crops"),
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
    Case("unknown fusion", ["track1", "train"], _set("track1.model.fusion", "average"), says="track1.model.fusion"),
    Case("unknown detector", ["track2", "train"], _set("track2.model.detector", "rnn"), says="track2.model.detector"),
    Case("model does not match params", ["track1", "predict"], files=_foreign_model,
         says=".pt: the saved model does not match params.yaml"),
    Case("submission file missing", ["submission", "check", "1", "absent.csv"], says="absent.csv"),
    Case("score: test Ids missing", ["score", "1", "sub.csv"], files=_submission_missing_ids, says="sub.csv"),
    Case("score: Target out of range", ["score", "1", "sub.csv"], files=_submission_out_of_range, says="sub.csv"),
    Case("score: bad track", ["score", "3", "sub.csv"], files=_submission_missing_ids, exit_code=2),
    Case("online: source missing", ["online", "absent_skeleton.csv"], exit_code=2),
    Case("online: no trained detector", ["online", "probe_skeleton.csv"], files=lambda root: _copy_skeleton(root) and
         (root / "models/track2/model.pt").unlink(), says="model.pt"),
    Case("render: unknown sample", ["render", "out.mp4", "--dataset", "imigue", "--sample", "9999_9"], exit_code=2),
    # issue 24: a wrong number, a lost file or a traceback before
    Case("per-stream epochs -1 keeps the model", ["track1", "train"], _set("track1.train.per_stream.tcn.epochs", -1),
         _old_output("models/track1/tcn.pt"), says="track1.train.per_stream.tcn.epochs"),
    Case("track2 epochs -1 keeps the model", ["track2", "train"], _set("track2.train.epochs", -1), _old_output("models/track2/model.pt"),
         says="track2.train.epochs"),
    Case("evaluate.split typo keeps the metrics", ["track2", "evaluate"], _set("evaluate.split", "tset"),
         _old_output("metrics/track2.json", "{}"), says="evaluate.split"),
    Case("'false' is not a boolean", ["pose", "--dataset", "smg"], _set("datasets.smg.mirror", "false"), says="datasets.smg.mirror"),
    Case("epochs 'ten'", ["track1", "train"], _set("track1.train.epochs", "ten"), says="track1.train.epochs"),
    Case("batch_size 0", ["track1", "train"], _set("track1.train.batch_size", 0), says="track1.train.batch_size"),
    Case("track2.epochs a list", ["track2", "train"], _set("track2.train.epochs", [2]), says="track2.train.epochs"),
    Case("datasets.imigue null", ["ingest", "--dataset", "imigue"], _set("datasets.imigue", None), says="datasets.imigue"),
    Case("root a number", ["ingest", "--dataset", "imigue"], _set("datasets.imigue.root", 5), says="datasets.imigue.root"),
    Case("track2.threads 0", ["track2", "train"], _set("track2.train.threads", 0), says="track2.train.threads"),
    Case("unknown params key", ["track2", "train"], _set("track2.train.epoch", 3), says="track2.train.epoch"),
    Case("YAML alias bomb", ["ingest", "--dataset", "smg"], files=_write("params.yaml", _ALIAS_BOMB), says="alias"),
    Case("sample id an absolute path", ["ingest", "--dataset", "clips"], _set("datasets.clips", _CLIPS),
         _stream_release(["s1", "s2", "/tmp/miga-outside/a3"]), says="not a plain name"),
    Case("sample id climbing out", ["ingest", "--dataset", "clips"], _set("datasets.clips", _CLIPS),
         _stream_release(["s1", "s2", "..", "s4"]), says="not a plain name"),
    Case("online --out is the source", ["online", "probe_skeleton.csv", "--out", "probe_skeleton.csv"], files=_copy_skeleton,
         exit_code=2),
    Case("online failing keeps --out", ["online", "bad_skeleton.csv", "--out", "out.jsonl"],
         files=_both(_write("bad_skeleton.csv", "1,2,x\n"), _old_output("out.jsonl")), says="bad_skeleton.csv"),
    Case("online: corrupt tuning file", ["online", "probe_skeleton.csv"], files=_both(_copy_skeleton, _write("metrics/track2_tuning.json", "{")),
         says="track2_tuning.json"),
    Case("online --hop 0", ["online", "probe_skeleton.csv", "--hop", "0"], files=_copy_skeleton, exit_code=2),
    Case("online --window 0", ["online", "probe_skeleton.csv", "--window", "0"], files=_copy_skeleton, exit_code=2),
    Case("label file 0 bytes", ["ingest", "--dataset", "imigue"], files=_empty_label_file, says="_label.csv"),
    Case("label file a folder", ["ingest", "--dataset", "imigue"], files=_label_file_a_folder, says="_label.csv"),
    Case("label file missing", ["ingest", "--dataset", "imigue"], files=_label_file_missing, says="_label.csv"),
    Case("empty cell in video_subjects.csv", ["ingest", "--dataset", "imigue"],
         files=_write("data/raw/imigue/video_subjects.csv", "video,subject\n1,\n"), says="video_subjects.csv"),
    Case("inf coordinate", ["pose", "--dataset", "imigue"], files=_light_hand_cell("inf"), says="_light_hand.csv"),
    Case("coordinate beyond float32", ["pose", "--dataset", "imigue"], files=_light_hand_cell("1e39"), says="_light_hand.csv"),
    Case("score 2: ID beyond 64 bits", ["score", "2", "sub2.csv"],
         files=_write("sub2.csv", "ID,class,start_frame,end_frame,sample_id\n99999999999999999999,1,0,5,36\n"), says="sub2.csv"),
    Case("model file 0 bytes", ["track1", "predict"], files=_torch_file("models/track1/tcn.pt", truncate=False), says="tcn.pt"),
    Case("truncated checkpoint", ["track1", "train"], files=_torch_file("checkpoints/track1/tcn.pt", truncate=True),
         says="delete checkpoints/track1/tcn.pt"),
    Case("keypoints older than the manifest", ["rgb"], files=_stale_keypoints, says="keypoints.parquet"),
    Case("ensemble member of the wrong shape", ["track1", "ensemble"], _set("track1.ensemble.members", [{"file": "m.parquet"}]),
         _score_file("m.parquet", [[0.5, 0.5], [0.2, 0.8]]), says="m.parquet"),
    Case("ensemble weight not a number", ["track1", "ensemble"], _set("track1.ensemble.members", [{"file": "m.parquet", "weight": "heavy"}]),
         says="track1.ensemble.members"),
    Case("ensemble NaN scores", ["track1", "ensemble"], _set("track1.ensemble.members", [{"file": "m.parquet"}]),
         _score_file("m.parquet", [[float("nan")] * 32, [1 / 32] * 32]), says="non-finite"),
    # issue 28: the emotion stage's labels (video_emotions.csv in the root) and its params
    Case("emotion: video_emotions.csv missing", _EMOTION_EVENTS, files=lambda root: (root / _EMOTIONS).unlink(), says="video_emotions.csv"),
    Case("emotion: video_emotions.csv garbled", _EMOTION_EVENTS, files=lambda root: (root / _EMOTIONS).write_bytes(b"\xff\xfe\x00\x81\x00"),
         says="video_emotions.csv"),
    Case("emotion: video_emotions.csv without header", _EMOTION_EVENTS, files=_write(_EMOTIONS, "0001,win\n"), says="video_emotions.csv"),
    Case("emotion: unknown emotion", _EMOTION_EVENTS, files=_write(_EMOTIONS, "video,emotion\n0001,happy\n"), says="'happy'"),
    Case("emotion: unknown video", _EMOTION_EVENTS, files=_write(_EMOTIONS, "video,emotion\n0001,win\n0999,lose\n"), says="0999"),
    Case("emotion: run before events keeps the metrics", ["emotion", "run"], files=_old_output("metrics/emotion.json", "{}"),
         says="labels.parquet"),
    Case("emotion: track1 source without Track 1 scores", ["emotion", "events", "--source", "track1"], says="track1_scores.parquet"),
    Case("emotion: unknown source", ["emotion", "run"], _set("emotion.source", "track3"), says="emotion.source"),
    Case("emotion: folds 1", ["emotion", "run"], _set("emotion.folds", 1), says="emotion.folds"),
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
    result = invoke_cli(root, case.args)
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
    assert not Path("/tmp/miga-outside").exists(), f"{case.name}: wrote outside the project"


def test_data_check_fails_on_a_broken_release(release: Path, tmp_path: Path):
    root = tmp_path / "project"
    shutil.copytree(release, root)
    _remove_train_labels(root)
    result = invoke_cli(root, ["data", "check", "smg"])
    assert result.exit_code == 1, result.output
    assert "error:" in result.output and "finelabels" in result.output and "Traceback" not in result.output


def test_data_check_passes_on_the_release(release: Path):
    result = invoke_cli(release, ["data", "check", "imigue"])
    assert result.exit_code == 0, result.output
    assert "2025 Kaggle" in result.output and "OK: 0 errors" in result.output


def _stream_project(root: Path) -> None:
    """A stream-format dataset `clips` (ids s1..s6; s3 and s6 test) with one gesture per sequence, ingested, as Track 2's dataset."""
    _stream_release(["s1", "s2", "s3", "s4", "s5", "s6"])(root)
    (root / "data/raw/clips/segments.csv").write_text(
        "sample_id,label,start_frame,end_frame\n" + "".join(f"s{i},{i % 2},{5 + i},{20 + i}\n" for i in range(1, 7)))
    _edit_params(root, _both(_set("datasets.clips", _CLIPS), _set("track2.dataset", "clips")))
    result = invoke_cli(root, ["ingest", "--dataset", "clips"])
    assert result.exit_code == 0, result.output


def test_score_2_reads_any_datasets_ids(release: Path, tmp_path: Path):
    """`miga score 2` on a stream dataset (test ids s3, s6): the exact truth scores F1 1, half of it 2/3; the
    checker, the scorer and `track2 evaluate` agree (before: ids rebuilt as Sample0003, F1 0 without a word)."""
    root = tmp_path / "project"
    shutil.copytree(release, root)
    _stream_project(root)
    header = "ID,class,start_frame,end_frame,sample_id\n"
    (root / "exact.csv").write_text(header + "1,2,8,23,3\n2,1,11,26,6\n")  # class base 1: label 0 -> class 1
    (root / "half.csv").write_text(header + "1,2,8,23,3\n")
    assert invoke_cli(root, ["submission", "check", "2", "exact.csv"]).exit_code == 0
    exact = invoke_cli(root, ["score", "2", "exact.csv"])
    assert exact.exit_code == 0 and "F1 official 1.0000" in exact.output and "on 2 sequences" in exact.output, exact.output
    half = invoke_cli(root, ["score", "2", "half.csv", "--out", "half.json"])
    assert half.exit_code == 0, half.output
    import json

    scored = json.loads((root / "half.json").read_text())
    assert scored["official"]["recall"] == pytest.approx(0.5) and scored["official"]["f1"] == pytest.approx(2 / 3)
    (root / "elsewhere.csv").write_text(header + "1,1,0,5,36\n")  # an SMG number: not a sequence of this dataset
    checked = invoke_cli(root, ["submission", "check", "2", "elsewhere.csv"])
    assert checked.exit_code == 1 and "not a test sequence" in checked.output


def test_checker_refuses_what_the_scorer_cannot_read(release: Path, tmp_path: Path):
    root = tmp_path / "project"
    shutil.copytree(release, root)
    (root / "sub2.csv").write_text("ID,class,start_frame,end_frame,sample_id\n99999999999999999999,1,0,5,36\n")
    checked = invoke_cli(root, ["submission", "check", "2", "sub2.csv"])
    assert checked.exit_code == 1 and "64-bit integer range" in checked.output and "Traceback" not in checked.output


def test_data_check_reports_a_missing_label_file(release: Path, tmp_path: Path):
    root = tmp_path / "project"
    shutil.copytree(release, root)
    _label_file_missing(root)
    result = invoke_cli(root, ["data", "check", "imigue"])
    assert result.exit_code == 1 and "_label.csv" in result.output and "Traceback" not in result.output, result.output


def test_online_reports_a_closed_output(monkeypatch):
    import io

    from miga.track2.sources import emit

    sink = io.StringIO()
    sink.close()
    gesture = type("G", (), {"label": 0, "start_frame": 1, "end_frame": 2, "score": 0.5, "decided_at": 3, "delay": 1})()
    from miga.errors import MigaError

    with pytest.raises(MigaError, match="output was closed"):
        emit(sink, gesture)


def test_evaluate_refuses_a_hand_edited_tuning_file(release: Path, tmp_path: Path):
    """`track2 evaluate` reports the choice and each candidate's val F1 from the tuning file: an edit there is one
    error naming the file, not a metric that names a candidate it does not score; the metrics already written stay."""
    import json

    root = tmp_path / "project"
    shutil.copytree(release, root)
    for command in (["track2", "predict"], ["track2", "evaluate"]):
        result = invoke_cli(root, command)
        assert result.exit_code == 0, result.output
    path, metrics = root / "metrics/track2_tuning.json", root / "metrics/track2.json"
    written, kept = path.read_text(), metrics.read_bytes()
    tuning = json.loads(written)
    other = next(name for name in tuning["candidates"] if name != tuning["chosen"])
    edits = {"chosen": lambda t: t.update(chosen=other),
             "val_f1": lambda t: t["candidates"][other].update(val_f1="0.9"),
             "stride": lambda t: t["candidates"]["window_logreg"].update(stride=0)}
    for says, edit in edits.items():
        edited = json.loads(written)
        edit(edited)
        path.write_text(json.dumps(edited))
        result = invoke_cli(root, ["track2", "evaluate"])
        assert result.exit_code == 1 and "track2_tuning.json" in result.output and says in result.output, result.output
        assert "Traceback" not in result.output and metrics.read_bytes() == kept
    path.write_text(written)
    assert invoke_cli(root, ["track2", "evaluate"]).exit_code == 0
