"""`track1.train.refit`: each stream trained again on train + val scores test; val keeps tuning the fusion with the
streams that never saw it (miga/track1/pipeline.py)."""

import numpy as np
import polars as pl
import pytest

from miga.params import validated
from miga.track1 import pipeline
from tests.track1.test_track1 import _tiny_sources


def _data(n: int = 12):
    store, _ = _tiny_sources(n)
    split = ["train"] * 6 + ["val"] * 3 + ["test"] * 3
    manifest = pl.DataFrame({"sample_id": list(store.ids), "split": split[:n], "label": [i % 3 for i in range(n)]},
                            schema={"sample_id": pl.String, "split": pl.String, "label": pl.Int64})
    return pipeline.Track1Data(manifest, store, None, 3)


def _config(refit: bool) -> dict:
    return validated({"track1": {
        "model": {"fusion": "late", "streams": ["tcn"], "tcn_channels": 8, "tcn_blocks": 1},
        "skeleton": {"clip_len": 8, "test_clips": 1},
        "train": {"refit": refit, "workers": 0, "per_stream": {"tcn": {"epochs": 2, "batch_size": 4}}}}})


@pytest.fixture
def fitted(monkeypatch):
    """Every `fit` call's checkpoint name, run id and number of training clips."""
    calls = []
    original = pipeline.fit

    def recorded(model, dataset, **kwargs):
        calls.append((kwargs["checkpoint"].name, kwargs["run_id"], len(dataset)))
        return original(model, dataset, **kwargs)

    monkeypatch.setattr(pipeline, "fit", recorded)
    return calls


def test_refit_trains_each_stream_again_on_train_and_val(tmp_path, fitted):
    data = _data()
    pipeline.train(_config(refit=True), data, project=tmp_path)
    assert [(name, clips) for name, _, clips in fitted] == [("tcn.pt", 6), ("tcn_refit.pt", 9)]
    assert (tmp_path / "models/track1/tcn.pt").exists() and (tmp_path / "models/track1/tcn_refit.pt").exists()
    pipeline.train(_config(refit=False), data, project=tmp_path)
    assert fitted[2][:2] == fitted[0][:2]  # the same run: switching refit on or off never retrains the train-only stream


def test_val_is_scored_by_the_train_only_streams_and_test_by_the_refit_ones(tmp_path):
    data, config = _data(), _config(refit=True)
    pipeline.train(config, data, project=tmp_path)
    rows = data.split("val", "test")
    scores = pipeline.stream_scores(config, data, rows, project=tmp_path)["tcn"]
    val = (rows["split"] == "val").to_numpy()
    own = lambda file, chosen: pipeline._scored("tcn", file, rows.filter(pl.Series(chosen)), config, data, tmp_path)  # noqa: E731
    np.testing.assert_allclose(scores[val], own("tcn.pt", val))
    np.testing.assert_allclose(scores[~val], own("tcn_refit.pt", ~val))
    assert not np.allclose(scores[~val], own("tcn.pt", ~val))
    off = pipeline.stream_scores(_config(refit=False), data, rows, project=tmp_path)["tcn"]
    np.testing.assert_allclose(off, own("tcn.pt", np.ones(len(rows), bool)))


def test_refit_needs_a_val_split_and_the_setting():
    data = _data()
    assert pipeline.refits(_config(True), data) and not pipeline.refits(_config(False), data)
    no_val = pipeline.Track1Data(data.manifest.filter(pl.col("split") != "val"), data.store, None, 3)
    assert not pipeline.refits(_config(True), no_val)
    joined = pipeline.with_val_in_train(data)
    assert joined.split("val").is_empty() and joined.split("train").height == 9 and joined.split("test").height == 3


def test_the_metrics_say_what_the_test_streams_trained_on_and_the_baselines_see_the_same(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(pipeline, "_baselines", lambda data, split: seen.append(data.split("train").height) or {})
    data = _data()
    for refit, trained_on, train_clips in ((True, "train + val (track1.train.refit)", 9), (False, "train", 6)):
        config = _config(refit) | {"evaluate": validated({})["evaluate"]}
        pipeline.train(config, data, project=tmp_path)
        pipeline.predict(config, data, project=tmp_path)
        assert pipeline.evaluate(config, data, project=tmp_path)["trained_on"] == trained_on
        assert seen[-1] == train_clips
