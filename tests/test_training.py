import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from miga.training import EpochSampler, TrainConfig, fit, load_checkpoint, save_checkpoint, seed_everything


class NoisyBlobs(Dataset):
    """Two Gaussian blobs; augmentation noise depends on (epoch, index) like the real datasets."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.x = np.concatenate([rng.normal(-1, 1, (40, 4)), rng.normal(1, 1, (40, 4))]).astype(np.float32)
        self.y = np.repeat([0, 1], 40)
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        noise = np.random.default_rng([self.epoch, i]).normal(0, 0.1, 4).astype(np.float32)
        return torch.from_numpy(self.x[i] + noise), int(self.y[i])


def _model():
    seed_everything(3)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(8, 2))


def _loss(model, batch, dev):
    x, y = batch
    return torch.nn.functional.cross_entropy(model(x.to(dev)), y.to(dev))


CONFIG = TrainConfig(epochs=4, batch_size=8, lr=0.1, seed=5)


def interrupt_at(step):
    def on_step(done):
        if done == step:
            raise KeyboardInterrupt(f"interrupted after step {step}")
    return on_step


def _assert_same_weights(a, b):
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_interrupted_training_resumes_to_the_same_result(tmp_path):
    reference = _model()
    history = fit(reference, NoisyBlobs(), config=CONFIG, loss_fn=_loss, checkpoint=tmp_path / "a.pt", run_id="r")
    assert len(history) == 4 and history[-1]["loss"] < history[0]["loss"]

    resumed = _model()
    with pytest.raises(KeyboardInterrupt):  # mid-epoch 3 (10 steps per epoch)
        fit(resumed, NoisyBlobs(), config=CONFIG, loss_fn=_loss, checkpoint=tmp_path / "b.pt", run_id="r", on_step=interrupt_at(23))
    assert load_checkpoint(tmp_path / "b.pt")["epoch"] == 1  # epochs 1 and 2 were saved, epoch 3 was not
    resumed = _model()
    resumed_history = fit(resumed, NoisyBlobs(), config=CONFIG, loss_fn=_loss, checkpoint=tmp_path / "b.pt", run_id="r")
    assert resumed_history == history
    _assert_same_weights(reference, resumed)


def test_checkpoint_of_another_run_is_ignored(tmp_path):
    other = TrainConfig(epochs=4, batch_size=8, lr=0.05, seed=6)  # another run trains to other weights
    fit(_model(), NoisyBlobs(), config=other, loss_fn=_loss, checkpoint=tmp_path / "c.pt", run_id="one")
    clean = _model()
    clean_history = fit(clean, NoisyBlobs(), config=CONFIG, loss_fn=_loss, checkpoint=tmp_path / "clean.pt", run_id="two")

    model = _model()
    history = fit(model, NoisyBlobs(), config=CONFIG, loss_fn=_loss, checkpoint=tmp_path / "c.pt", run_id="two")
    assert history == clean_history
    _assert_same_weights(model, clean)
    assert load_checkpoint(tmp_path / "c.pt")["run_id"] == "two"


def test_epoch_sampler_depends_only_on_seed_and_epoch():
    a, b = EpochSampler(10, seed=1), EpochSampler(10, seed=1)
    a.set_epoch(2), b.set_epoch(2)
    assert list(a) == list(b) and sorted(a) == list(range(10))
    b.set_epoch(3)
    assert list(a) != list(b)
    weighted = EpochSampler(10, seed=1, weights=np.r_[np.zeros(9), 1.0])
    assert set(weighted) == {9}


def test_the_same_state_saves_to_the_same_bytes(tmp_path):
    state = {"model": torch.nn.Linear(3, 2).state_dict(), "history": [{"epoch": 1, "loss": 0.5}]}
    save_checkpoint(tmp_path / "a" / "model.pt", state)
    save_checkpoint(tmp_path / "b" / "model.pt", state)  # another temporary name on the way
    assert (tmp_path / "a" / "model.pt").read_bytes() == (tmp_path / "b" / "model.pt").read_bytes()
    assert load_checkpoint(tmp_path / "a" / "model.pt")["history"] == state["history"]
