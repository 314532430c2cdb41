import numpy as np
import polars as pl
import pytest

from miga.contracts import DETECTIONS_SCHEMA
from miga.track2.relabel import fit_segment_classifier, relabelled

WAVE, RAISE = 0, 1


def _sequence(seed: int, gestures: list[tuple[int, int, int]], frames: int = 200) -> np.ndarray:
    """A resting Kinect person; in each (label, start, end) the right hand (joints 10, 11) either swings side to
    side (WAVE) or is held high (RAISE)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(100, 200, (25, 2)) * 0.1 + np.linspace(0, 100, 25)[:, None]
    kp = np.zeros((1, frames, 25, 3), np.float32)
    kp[0, :, :, :2] = base + rng.normal(0, 0.5, (frames, 25, 2))
    kp[0, :, :, 2] = 1
    for label, start, end in gestures:
        if label == WAVE:
            kp[0, start: end + 1, 10:12, 0] += 30 * np.sin(np.arange(end + 1 - start) / 3)[:, None]
        else:
            kp[0, start: end + 1, 10:12, 1] -= 60
    return kp


def _training_set():
    sequences, rows = {}, []
    for k in range(4):
        gestures = [(WAVE, 20, 69), (RAISE, 110, 159)] if k % 2 == 0 else [(RAISE, 20, 69), (WAVE, 110, 159)]
        sequences[f"s{k}"] = _sequence(k, gestures)
        rows += [(f"s{k}", label, start, end) for label, start, end in gestures]
    segments = pl.DataFrame(rows, schema={"sample_id": pl.String, "label": pl.Int64, "start_frame": pl.Int64, "end_frame": pl.Int64},
                            orient="row")
    return sequences, segments


def _detections(rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=DETECTIONS_SCHEMA, orient="row")


def test_the_segment_classifier_tells_unseen_gestures_apart():
    sequences, segments = _training_set()
    classifier = fit_segment_classifier(sequences, "kinect25", segments, num_classes=2)
    unseen = {"u": _sequence(9, [(WAVE, 30, 79), (RAISE, 120, 169)])}
    assert np.argmax(classifier.probabilities(unseen, "u", 30, 79)) == WAVE
    assert np.argmax(classifier.probabilities(unseen, "u", 120, 169)) == RAISE
    assert classifier.probabilities(unseen, "u", 30, 79).sum() == pytest.approx(1.0)


def test_relabelling_mixes_the_detector_and_the_classifier_by_weight():
    sequences, segments = _training_set()
    classifier = fit_segment_classifier(sequences, "kinect25", segments, num_classes=2)
    unseen = {"u": _sequence(9, [(WAVE, 30, 79)])}
    probs = np.zeros((200, 3))
    probs[:, 0] = 1.0
    probs[30:80] = [0.1, 0.35, 0.55]  # the detector leans to RAISE over a waving hand
    found = _detections([("u", RAISE, 30, 79, 0.55)])

    assert relabelled(found, {"u": probs}, classifier, unseen, 0.0).equals(found)
    assert relabelled(found, {"u": probs}, classifier, unseen, 1.0)["label"].to_list() == [WAVE]
    assert relabelled(found, {"u": probs}, classifier, unseen, 0.5)["label"].to_list() == [WAVE]  # the classifier is sure
    kept = relabelled(found, {"u": probs}, classifier, unseen, 1.0)
    assert kept.drop("label").equals(found.drop("label"))  # where and how sure stay the detector's


def test_no_classifier_from_one_class():
    sequences, segments = _training_set()
    assert fit_segment_classifier(sequences, "kinect25", segments.filter(pl.col("label") == WAVE), num_classes=2) is None


def test_the_pipeline_tunes_and_submits_the_relabelled_detections():
    from miga.params import load_params, merged
    from miga.track2.detectors import frame_decoder
    from miga.track2.pipeline import Track2Data, with_segment_classifier

    class Store(dict):
        layout = "kinect25"

    sequences, segments = _training_set()
    store = Store(sequences | {"v": _sequence(7, [(WAVE, 30, 79)]), "t": _sequence(8, [(RAISE, 30, 79)])})
    ids = list(store)
    manifest = pl.DataFrame({"sample_id": ids, "dataset": "stream", "split": ["train"] * 4 + ["val", "test"], "subject": list(range(6)),
                             "video": None, "video_start": 0, "start_frame": 0, "end_frame": 199, "label": None, "fps": 15.0,
                             "width": None, "height": None},
                            schema_overrides={"video": pl.String, "label": pl.Int64, "width": pl.Int64, "height": pl.Int64})
    segments = pl.concat([segments, pl.DataFrame({"sample_id": ["v", "t"], "label": [WAVE, RAISE], "start_frame": [30, 30],
                                                  "end_frame": [79, 79]})])
    data = Track2Data.from_tables(["wave", "raise"], manifest, segments, store)
    config = load_params("params.yaml")
    probs = {}
    for sid in ("v", "t"):  # a detector that finds both gestures and always calls them WAVE
        probs[sid] = np.zeros((200, 3))
        probs[sid][:, 0] = 1.0
        probs[sid][30:80] = [0.0, 0.6, 0.4]
    decode_at = frame_decoder(probs, config["track2"])
    assert with_segment_classifier(config, data, decode_at, probs) is decode_at  # relabel_weight 0: the detector alone
    config["track2"] = merged(config["track2"], {"decode": {"relabel_weight": 0.5}})
    assert with_segment_classifier(config, data, decode_at, None) is decode_at  # no per-frame probabilities
    relabelling = with_segment_classifier(config, data, decode_at, probs)
    before, after = decode_at(0.3, smooth=5, min_length=8), relabelling(0.3, smooth=5, min_length=8)
    assert before["label"].to_list() == [WAVE, WAVE]
    assert after.sort("sample_id")["label"].to_list() == [RAISE, WAVE]  # t, v: the test gesture is a RAISE


def test_streaming_says_it_does_not_relabel(tmp_path):
    import warnings

    from miga.params import defaults, merged
    from miga.track2.pipeline import tuned_decoding

    tuning = tmp_path / "track2_tuning.json"
    tuning.write_text('{"threshold": 0.3, "decoding": {"smooth": 9}, "chosen": "detector", "candidates": {"detector": {}}}')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tuned_decoding(defaults("track2"), tuning) == (0.3, {"smooth": 9})
    with pytest.warns(UserWarning, match="streaming does not relabel"):
        tuned_decoding(merged(defaults("track2"), {"decode": {"relabel_weight": 0.5}}), tuning)
