"""The emotion stage (issue 28): features of an MG sequence, the emotion labels reader, person-disjoint cross-validation,
the model against chance on a synthetic hidden state, `miga convert imigue-labels` (real table when present) and the
stage end to end on a release that holds only label files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from miga.contracts import ContractError
from miga.emotion import events as ev
from miga.emotion.features import TIMING_NAMES, MgSequence, bag_features, feature_matrix, timing_features
from miga.emotion.labels import read_video_emotions
from miga.emotion.model import Design, Settings, cross_validate, person_folds
from miga.synth.emotion import IMIGUE_LOSE_COUNTS, IMIGUE_WIN_COUNTS, class_log_ratios, draw_emotions
from tests.conftest import REALDATA, invoke_cli

REPO = Path(__file__).resolve().parents[2]
REAL = REALDATA / "imigue_real"
FAST = Settings(C=1.0, depth=2, learning_rate=0.1, iterations=20, min_leaf=5, folds=3, seed=0)


# ---------------------------------------------------------------- features


def test_features_of_an_event_sequence():
    # 3 classes, class 2 = non-MG; 25 fps, 3000 frames = 2 minutes; events given out of order
    seq = MgSequence.of([1, 0, 2, 0], [100, 0, 2000, 50], [149, 49, 2099, 99], frames=3000, fps=25.0)
    assert seq.starts.tolist() == [0, 50, 100, 2000] and seq.classes.tolist() == [0, 0, 1, 2]
    assert seq.minutes == pytest.approx(2.0)
    bag = bag_features(seq, 3)
    assert bag[:3].tolist() == pytest.approx([0.5, 0.25, 0.25])  # share of the events
    assert bag[3:6].tolist() == pytest.approx([100 / 3000, 50 / 3000, 100 / 3000])  # share of the video's time
    assert bag[6] == pytest.approx(2.0)  # 4 MGs in 2 minutes
    timing = dict(zip(TIMING_NAMES, timing_features(seq, non_mg=2)))
    assert timing["log_events"] == pytest.approx(np.log1p(4)) and timing["mgs_per_minute"] == pytest.approx(2.0)
    assert timing["time_in_events"] == pytest.approx(250 / 3000)
    assert timing["median_pause"] == pytest.approx(1 / 25)  # pauses: 1, 1 and 1851 frames
    assert timing["overlap_share"] == 0.0 and timing["non_mg_share"] == pytest.approx(0.25)
    assert timing["variety"] == pytest.approx(3 / 4) and timing["repeat_share"] == pytest.approx(1 / 3)
    assert timing["first_onset"] == 0.0
    assert [timing[k] for k in ("first_third", "middle_third", "last_third")] == pytest.approx([0.75, 0.0, 0.25])
    empty = MgSequence.of([], [], [], frames=1500, fps=25.0)
    assert feature_matrix([seq, empty], ["bag", "timing"], 3, 2).shape == (2, 7 + len(TIMING_NAMES))
    assert np.isfinite(feature_matrix([empty], ["bag", "timing"], 3, 2)).all()


# ---------------------------------------------------------------- the labels reader


@pytest.mark.parametrize("content, says", [
    (None, "not found"),
    ("folder", "a folder"),
    (b"\xff\xfe\x00\x81garbled", "not a UTF-8"),
    ("vid,state\n0001,win\n", "header"),
    ("video,emotion\n", "no data rows"),
    ("video,emotion\n0001,win,extra\n", "3 cells"),
    ("video,emotion\n0001,happy\n", "'happy' is neither win nor lose"),
    ("video,emotion\n0001,win\n0001,lose\n", "listed again"),
    ("video,emotion\n0001,win\n0999,lose\n", "video 0999 is not in the release"),
    ("video,emotion\n../x,win\n", "not a plain name"),
])
def test_labels_reader_errors_are_one_line_naming_the_file(tmp_path: Path, content, says):
    path = tmp_path / "video_emotions.csv"
    if content == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ContractError) as caught:
        read_video_emotions(tmp_path, "imigue", known={"0001", "0002"})
    message = str(caught.value)
    assert str(path) in message and says in message and "\n" not in message, message


def test_labels_reader_reads_numbers_as_release_names(tmp_path: Path):
    (tmp_path / "video_emotions.csv").write_text("Video,Emotion\n7,Win\n0012,lose\n\n")
    assert read_video_emotions(tmp_path, "imigue") == {"0007": "win", "0012": "lose"}
    assert read_video_emotions(tmp_path, "smg") == {"Sample0007": "win", "Sample0012": "lose"}
    assert read_video_emotions(tmp_path / "absent", "imigue", required=False) == {}


def test_events_refuse_an_emotion_of_a_video_not_in_the_manifest():
    manifest = pl.DataFrame({"sample_id": ["0001_0", "0001_1"], "dataset": ["imigue"] * 2, "split": ["train"] * 2,
                             "subject": [1, 1], "fps": [25.0, 25.0], "start_frame": [0, 10], "end_frame": [9, 19], "label": [3, 31]})
    table = ev.clip_videos(manifest, {"0001": "win"}, class_names=[str(c) for c in range(32)], non_mg=31)
    assert table["classes"].to_list() == [[3, 31]] and table["frames"].to_list() == [20]
    with pytest.raises(ContractError, match="0002"):
        ev.clip_videos(manifest, {"0001": "win", "0002": "lose"}, class_names=[str(c) for c in range(32)], non_mg=31)


# ---------------------------------------------------------------- the model


def _hidden_state_set(seed: int, people: int = 40, per_person: int = 3) -> tuple[Design, list[MgSequence]]:
    """Videos whose state is drawn by miga.synth.emotion from their clips (classes from the pooled real mix), as the
    synthetic generator draws it: win videos show the won matches' class mix, to first order."""
    rng = np.random.default_rng(seed)
    pooled = np.asarray(IMIGUE_WIN_COUNTS, float) + np.asarray(IMIGUE_LOSE_COUNTS, float)
    sequences, classes, minutes = [], [], []
    for _ in range(people * per_person):
        n = int(rng.integers(20, 40))
        cls = rng.choice(32, size=n, p=pooled / pooled.sum())
        lengths = rng.integers(20, 80, size=n)
        gaps = rng.integers(0, 40, size=n)
        starts = np.cumsum(gaps + np.r_[0, lengths[:-1]])
        ends = starts + lengths - 1
        sequences.append(MgSequence.of(cls, starts, ends, int(ends[-1]) + 1, 25.0))
        classes.append(cls.tolist())
        minutes.append(sequences[-1].minutes)
    names = [f"{i:04d}" for i in range(len(sequences))]
    emotions = draw_emotions(rng, names, classes, minutes, log_ratios=2.0 * class_log_ratios())  # twice the real evidence per clip
    y = np.array([emotions[n] == "win" for n in names], np.int64)
    parts = {p: feature_matrix(sequences, [p], 32, 31) for p in ("bag", "timing")}
    return Design(parts, y, np.repeat(np.arange(people), per_person)), sequences


def test_person_disjoint_folds_keep_a_persons_videos_in_one_fold():
    design, _ = _hidden_state_set(1, people=12, per_person=3)
    folds = person_folds(design, 5, seed=3)
    assert len(folds) == 5
    seen = np.concatenate([test for _, test in folds])
    assert sorted(seen.tolist()) == list(range(len(design.y)))  # every video tested once
    for train, test in folds:
        assert not set(design.groups[train]) & set(design.groups[test])
    fold_of = {}
    for k, (_, test) in enumerate(folds):
        for person in design.groups[test]:
            assert fold_of.setdefault(int(person), k) == k
    assert person_folds(design, 5, seed=3)[0][1].tolist() == folds[0][1].tolist()  # deterministic for a seed


def test_videos_that_only_train_join_every_fold_whose_people_they_do_not_share():
    design, _ = _hidden_state_set(1, people=12, per_person=3)
    scored = np.arange(len(design.y)) < 24  # people 0-7 are scored; 8-11 only train
    design = Design(design.parts, design.y, design.groups, scored)
    folds = person_folds(design, 4, seed=3)
    assert sorted(np.concatenate([test for _, test in folds]).tolist()) == list(range(24))
    for train, test in folds:
        assert not set(design.groups[train]) & set(design.groups[test])
        assert set(range(24, 36)) <= set(train.tolist())
    plain = person_folds(Design(design.parts, design.y, design.groups), 4, seed=3)
    assert [t.tolist() for _, t in plain] != [t.tolist() for _, t in folds]  # the scored videos alone decide the folds
    assert [t.tolist() for _, t in person_folds(design.subset(np.arange(24)), 4, seed=3)] == [t.tolist() for _, t in folds]


def test_more_labelled_videos_in_the_training_parts_lift_the_scored_accuracy():
    """`emotion.train_splits: [train, val]`: the same scored videos and folds, with 160 people's videos more to learn from."""
    design, _ = _hidden_state_set(0, people=200, per_person=1)
    scored = np.arange(200) < 40
    alone = cross_validate(design.subset(np.flatnonzero(scored)), "logreg", FAST, repeats=2)
    more = cross_validate(Design(design.parts, design.y, design.groups, scored), "logreg", FAST, repeats=2)
    assert more["videos"] == alone["videos"] == 40 and more["train_only_videos"] == 160 and alone["train_only_videos"] == 0
    assert more["models"]["logreg"]["roc_auc"] >= alone["models"]["logreg"]["roc_auc"] + 0.1, (more["models"], alone["models"])


def test_model_beats_the_majority_on_a_hidden_state_that_shifts_the_class_mix():
    design, _ = _hidden_state_set(0)
    assert 0.25 < design.y.mean() < 0.75
    result = cross_validate(design, "logreg", FAST, repeats=1)
    model, majority = result["models"]["logreg"], result["models"]["majority"]
    assert result["people"] == 40 and result["folds"] == 3
    assert model["balanced_accuracy"] >= 0.65 and model["roc_auc"] >= 0.7, model
    assert model["balanced_accuracy"] >= majority["balanced_accuracy"] + 0.1, (model, majority)
    again = cross_validate(design, "logreg", FAST, repeats=1)
    assert again["models"]["logreg"] == model  # deterministic


# ---------------------------------------------------------------- convert, then the stage on a label-only release


@pytest.mark.skipif(not (REAL / "labels_dev.csv").is_file(), reason=f"real iMiGUE label table absent ({REAL}/labels_dev.csv)")
def test_convert_imigue_labels_on_the_real_table(tmp_path: Path):
    out = tmp_path / "release"
    result = invoke_cli(tmp_path, ["convert", "imigue-labels", str(REAL / "labels_dev.csv"), str(out),
                                "--protocol", str(REAL / "protocol.csv")])
    assert result.exit_code == 0, result.output
    assert "102 train videos" in result.output and "51 win, 51 lose" in result.output
    emotions = read_video_emotions(out, "imigue")
    assert len(emotions) == 259 and sum(e == "win" for e in emotions.values()) == 208
    train = sorted(p.name for p in (out / "imigue_data_phase1/datasets/imigue_skeleton_train").iterdir())
    assert len(train) == 102 and sorted(emotions[v] for v in train).count("win") == 51
    with open(REAL / "protocol.csv") as handle:
        protocol = {f"{int(r['id']):04d}" for r in csv.DictReader(handle) if r["kind"] == "emotion_video" and r["split"] == "train"}
    assert set(train) == protocol
    labels = sorted(out.rglob("0298_label.csv"))
    assert len(labels) == 1 and len(labels[0].read_text().splitlines()) == 56  # its README: video 298 has 56 rows
    assert not list(out.rglob("*.mp4")) and not list(out.rglob("*_light_hand.csv"))


def _label_table(path: Path) -> Path:
    """A small iMiGUE label table (labels_dev.csv columns): 8 people x 2 videos, lost matches richer in class 5."""
    rng = np.random.default_rng(7)
    header = "video_id,label_id,start_time,start_frame,end_time,end_frame,class,subject_id,subject_gender,subject_nationality,win_or_lose"
    lines = [header]
    for video in range(1, 17):
        subject, won = (video + 1) // 2, video % 4 in (1, 2)
        frame = 0
        for k in range(int(rng.integers(8, 14))):
            raw = 6 if (not won and rng.random() < 0.5) else int(rng.choice([1, 2, 3, 99]))
            length = int(rng.integers(20, 60))
            lines.append(f"{video},{k},0,{frame},0,{frame + length - 1},{raw},{subject},M,X,{'Win' if won else 'Lose'}")
            frame += length + int(rng.integers(0, 30))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_convert_errors_name_the_file_and_keep_a_release_clean(tmp_path: Path):
    table = _label_table(tmp_path / "labels.csv")
    lines = table.read_text().splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines[:3] + [lines[3].replace(",Win", ",Draw").replace(",Lose", ",Draw")]) + "\n")
    result = invoke_cli(tmp_path, ["convert", "imigue-labels", str(bad), "out"])
    assert result.exit_code == 1 and result.output.count("error:") == 1 and "bad.csv: data row 3" in result.output, result.output
    assert invoke_cli(tmp_path, ["convert", "imigue-labels", str(table), "out"]).exit_code == 0  # cross-subject split
    assert invoke_cli(tmp_path, ["convert", "imigue-labels", str(table), "out"]).exit_code == 0  # the same again: same files
    protocol = tmp_path / "protocol.csv"
    protocol.write_text("kind,split,id\n" + "".join(f"emotion_video,train,{v}\n" for v in range(1, 13)))
    result = invoke_cli(tmp_path, ["convert", "imigue-labels", str(table), "out", "--protocol", str(protocol)])
    assert result.exit_code == 1 and "would not write" in result.output, result.output  # stale files of the other split


def _label_release(tmp_path: Path, train_videos: range, **emotion) -> Path:
    """A project over a label-only release converted from `_label_table` (emotion protocol: `train_videos` train, 13-16
    test, the rest val), with `emotion` params, ingested and its label events built."""
    table = _label_table(tmp_path / "labels.csv")
    protocol = tmp_path / "protocol.csv"
    protocol.write_text("kind,split,id\n" + "".join(f"emotion_video,train,{v}\n" for v in train_videos)
                        + "".join(f"emotion_video,test,{v}\n" for v in range(13, 17)))
    project = tmp_path / "project"
    project.mkdir()
    assert invoke_cli(project, ["convert", "imigue-labels", str(table), "rel", "--protocol", str(protocol)]).exit_code == 0
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["datasets"]["imigue"].update(root="rel", test_labels="real", test_truth=None)
    params["emotion"].update(repeats=1, folds=3, gbdt={"depth": 2, "learning_rate": 0.1, "iterations": 20, "min_leaf": 3}, **emotion)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for args in (["ingest", "--dataset", "imigue"], ["emotion", "events", "--source", "labels"]):
        result = invoke_cli(project, args)
        assert result.exit_code == 0, (args, result.output)
    return project


def test_stage_end_to_end_on_a_release_of_label_files_only(tmp_path: Path):
    project = _label_release(tmp_path, range(1, 13), model="auto")
    result = invoke_cli(project, ["emotion", "run"])
    assert result.exit_code == 0, result.output
    assert "12 training videos (6 people)" in result.output
    events = ev.validate_events(pl.read_parquet(project / "data/interim/emotion/labels.parquet"), "labels.parquet")
    assert events.height == 16 and set(events["split"]) == {"train", "test"}
    with open(project / "submissions/emotion.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["video"] for r in rows] == ["0013", "0014", "0015", "0016"]
    assert all(r["emotion"] in ("win", "lose") and 0 <= float(r["probability"]) <= 1 for r in rows)
    assert all((float(r["probability"]) >= 0.5) == (r["emotion"] == "win") for r in rows)
    metrics = json.loads((project / "metrics/emotion.json").read_text())
    assert metrics["source"] == "labels" and metrics["evaluated"] == "test" and metrics["test"]["model"]["videos"] == 4
    assert set(metrics["cv"]["baselines"]) == {"majority", "bag_logreg"} and metrics["cv"]["people"] == 6
    assert metrics["selected"] in ("logreg", "gbdt", "blend")
    for name in ("class_rates.csv", "class_rates.png", "evidence.csv", "evidence.png"):
        assert (project / "plots/emotion" / name).stat().st_size > 0
    first = (project / "metrics/emotion.json").read_bytes()
    assert invoke_cli(project, ["emotion", "run"]).exit_code == 0
    assert (project / "metrics/emotion.json").read_bytes() == first  # deterministic
    assert metrics["train_splits"] == ["train"] and metrics["cv"]["train_only_videos"] == 0 and metrics["note"] is None


def test_stage_learns_from_the_val_videos_with_train_splits_and_says_so(tmp_path: Path):
    """Videos 9-12 are outside the protocol (val): with `train_splits: [train, val]` they train, are never scored, and
    the metrics say the model saw more than the protocol's training videos."""
    project = _label_release(tmp_path, range(1, 9), train_splits=["train", "val"])
    result = invoke_cli(project, ["emotion", "run"])
    assert result.exit_code == 0, result.output
    assert "8 training videos (4 people)" in result.output and "4 labelled videos of other splits" in result.output
    metrics = json.loads((project / "metrics/emotion.json").read_text())
    assert metrics["train_splits"] == ["train", "val"] and metrics["cv"]["videos"] == 8 and metrics["cv"]["train_only_videos"] == 4
    assert "val" not in metrics and metrics["test"]["model"]["videos"] == 4
    assert "4 labelled videos outside the train split" in metrics["note"] and "say so" in metrics["note"]
    written = (project / "metrics/emotion.json").read_bytes()
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["emotion"]["train_splits"] = ["val"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    refused = invoke_cli(project, ["emotion", "run"])
    assert refused.exit_code != 0 and "emotion.train_splits: ['val']: must hold train" in refused.output, refused.output
    assert "Traceback" not in refused.output and (project / "metrics/emotion.json").read_bytes() == written


def test_track1_source_predicts_val_and_test_from_track1_classes(tmp_path: Path):
    manifest = pl.DataFrame({"sample_id": ["0001_0", "0001_1", "0002_0"], "dataset": ["imigue"] * 3, "split": ["train", "train", "test"],
                             "subject": [1, 1, 2], "fps": [25.0] * 3, "start_frame": [0, 10, 0], "end_frame": [9, 19, 9],
                             "label": [3, 31, None]})
    scores = np.full((1, 32), 0.01)
    scores[0, 7] = 0.69
    predicted = ev.track1_predictions(pl.DataFrame({"sample_id": ["0002_0"], "scores": scores.tolist()}), "scores", 32)
    table = ev.clip_videos(manifest, {"0001": "win"}, class_names=[str(c) for c in range(32)], non_mg=31, predicted=predicted,
                           source="track1")
    assert table["events_from"].to_list() == ["labels", "track1"] and table["classes"].to_list() == [[3, 31], [7]]
    assert table["scores"].to_list()[1] == pytest.approx([0.69])
    with pytest.raises(ContractError, match="no prediction for clip 0002_0"):
        ev.clip_videos(manifest, {}, class_names=[str(c) for c in range(32)], non_mg=31, predicted={}, source="track1")


def test_track2_source_runs_on_long_sequences_with_detections(tmp_path: Path):
    """`emotion.source: track2`: SMG-like sequences (no non-MG class), ground truth in train, detections in val / test."""
    from miga.emotion import pipeline
    from miga.params import validated

    rng = np.random.default_rng(3)
    ids = [f"Sample{n:04d}" for n in range(1, 17)]
    splits = ["train"] * 12 + ["val"] * 2 + ["test"] * 2
    manifest = pl.DataFrame({"sample_id": ids, "dataset": ["smg"] * 16, "split": splits, "subject": list(range(1, 17)),
                             "fps": [30.0] * 16, "end_frame": [2999] * 16})
    emotions = {sid: ("win" if k % 2 else "lose") for k, sid in enumerate(ids)}

    def events(sid: str, scored: bool) -> dict:
        n = 12 if emotions[sid] == "win" else 24  # lost: twice the MG rate
        starts = np.sort(rng.choice(2900, size=n, replace=False))
        out = {"sample_id": [sid] * n, "label": rng.integers(0, 17, n).tolist(), "start_frame": starts.tolist(),
               "end_frame": (starts + 40).tolist()}
        return out | ({"score": [0.9] * n} if scored else {})

    segments = pl.concat([pl.DataFrame(events(sid, False)) for sid in ids])
    detections = pl.concat([pl.DataFrame(events(sid, True)) for sid, split in zip(ids, splits) if split != "train"])
    names = [f"class{c}" for c in range(17)]
    table = ev.sequence_videos(manifest, segments, emotions, class_names=names, detections=detections, source="track2")
    assert table["events_from"].to_list() == ["labels"] * 12 + ["track2"] * 4 and table["non_mg"].null_count() == 16
    (tmp_path / "data/interim/emotion").mkdir(parents=True)
    table.write_parquet(tmp_path / "data/interim/emotion/track2.parquet")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["emotion"].update(source="track2", model="blend", repeats=1, folds=3)
    result = pipeline.run(validated(params), project=tmp_path)
    assert result["source"] == "track2" and result["evaluated"] == "test" and result["cv"]["people"] == 12
    assert result["cv"]["model"]["balanced_accuracy"] > 0.8  # the MG rate tells the states apart
    with open(tmp_path / "submissions/emotion.csv") as handle:
        assert [r["video"] for r in csv.DictReader(handle)] == ["Sample0015", "Sample0016"]
