"""Data-parallel training (`torchrun` -> DistributedDataParallel in `miga.training.fit`) on the CPU with gloo.

Two processes are started the way torchrun starts them (WORLD_SIZE, RANK, LOCAL_RANK,
MASTER_ADDR/PORT in the environment; here through torch.multiprocessing, faster than a torchrun
subprocess) on a tiny MLP whose loss is a mean over the batch and whose samples are augmented
per (seed, epoch, index), like the tracks' datasets. Tolerance: 2 ranks average two half-batch
mean gradients where one process takes one full-batch mean, the same sum in another order, so the
weights agree to float32 rounding (atol 1e-5, rtol 1e-4 after 4 epochs x 5 steps); a resumed
2-process run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessException
from torch.utils.data import Dataset

from miga import training
from miga.errors import ConfigError
from miga.params import defaults

EPOCHS, BATCH, SAMPLES = 4, 8, 44  # 5 full global batches per epoch; the last 4 samples are dropped, as in one process


class Noisy(Dataset):
    """Fixed points plus noise drawn per (seed, epoch, index)."""

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(1)
        self.x = rng.normal(size=(SAMPLES, 6)).astype(np.float32)
        self.y = (self.x[:, 0] + self.x[:, 1] > 0).astype(np.int64)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return SAMPLES

    def __getitem__(self, index: int):
        noise = np.random.default_rng([self.seed, self.epoch, index]).normal(scale=0.1, size=6).astype(np.float32)
        return torch.from_numpy(self.x[index] + noise), int(self.y[index])


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))


def _loss(model, batch, dev):
    x, y = batch
    return torch.nn.functional.cross_entropy(model(x.to(dev)), y.to(dev))


def _train(checkpoint: Path, kill_at_step: int | None = None) -> list[dict]:
    config = training.TrainConfig(epochs=EPOCHS, batch_size=BATCH, lr=0.2, seed=3, workers=0)

    def on_step(step: int) -> None:
        if kill_at_step is not None and step == kill_at_step and training.is_main_process():
            os.kill(os.getpid(), signal.SIGKILL)

    return training.fit(_model(), Noisy(config.seed), config=config, loss_fn=_loss, checkpoint=checkpoint, run_id="tiny",
                        on_step=on_step, description="tiny")


def _rank(rank: int, world_size: int, port: int, checkpoint: str, kill_at_step: int | None) -> None:
    os.environ.update(WORLD_SIZE=str(world_size), RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    _train(Path(checkpoint), kill_at_step)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(checkpoint: Path, kill_at_step: int | None = None) -> None:
    mp.start_processes(_rank, args=(2, _free_port(), str(checkpoint), kill_at_step), nprocs=2, join=True, start_method="spawn")


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return training.load_checkpoint(checkpoint)["model"]


def test_two_process_ddp_equals_one_process_and_resumes_bit_identically(tmp_path, monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    single = _train(tmp_path / "single.pt")
    _spawn(tmp_path / "ddp.pt")
    one, two = _weights(tmp_path / "single.pt"), _weights(tmp_path / "ddp.pt")
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-5, rtol=1e-4)
    assert not torch.equal(one["0.weight"], _model().state_dict()["0.weight"])  # it trained
    history = training.load_checkpoint(tmp_path / "ddp.pt")["history"]
    assert [h["epoch"] for h in history] == [h["epoch"] for h in single] == list(range(1, EPOCHS + 1))
    np.testing.assert_allclose([h["loss"] for h in history], [h["loss"] for h in single], rtol=1e-5)
    assert [h["lr"] for h in history] == [h["lr"] for h in single]  # same steps, same schedule

    # killed (SIGKILL to rank 0) in epoch 3, after epoch 2's checkpoint; rerun: both ranks resume from it
    with pytest.raises(ProcessException):
        _spawn(tmp_path / "killed.pt", kill_at_step=2 * 5 + 2)
    assert training.load_checkpoint(tmp_path / "killed.pt")["epoch"] == 1  # 0-based: epochs 1 and 2 done
    _spawn(tmp_path / "killed.pt")
    resumed = _weights(tmp_path / "killed.pt")
    for name in two:
        assert torch.equal(resumed[name], two[name]), name
    assert training.load_checkpoint(tmp_path / "killed.pt")["history"] == history


def test_rank_sampler_cuts_every_global_batch_across_the_ranks():
    base = training.EpochSampler(22, seed=5)
    base.set_epoch(2)
    order = list(base)
    shares = [training.RankSampler(training.EpochSampler(22, seed=5), 8, rank, 2, drop_last=True) for rank in range(2)]
    for share in shares:
        share.set_epoch(2)
    parts = [list(share) for share in shares]
    assert [len(p) for p in parts] == [len(s) for s in shares] == [8, 8]
    for b in range(2):  # global batch b = rank 0's half, then rank 1's
        assert parts[0][4 * b: 4 * b + 4] + parts[1][4 * b: 4 * b + 4] == order[8 * b: 8 * b + 8]
    small = [list(training.RankSampler(training.EpochSampler(5, seed=5), 8, rank, 2, drop_last=False)) for rank in range(2)]
    assert sorted(small[0] + small[1]) == list(range(5)) and [len(p) for p in small] == [3, 2]
    with pytest.raises(ConfigError, match="not divisible by 3"):
        training.RankSampler(base, 8, 0, 3, drop_last=True)


def test_launcher_param(monkeypatch):
    calls = []
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(training.subprocess, "call", lambda command: calls.append(command) or 0)
    assert training.relaunch(defaults("launch"), ["-m", "stages.track1", "train"]) is False
    assert training.relaunch(defaults("launch") | {"launcher": "local", "nproc": 4}, ["-m", "stages.track1", "train"]) is False
    assert training.relaunch(defaults("launch") | {"launcher": "torchrun", "nproc": 4}, ["-m", "stages.track1", "train", "--params", "p.yaml"])
    assert calls[-1][1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4",
                             "-m", "stages.track1", "train", "--params", "p.yaml"]
    monkeypatch.setenv("WORLD_SIZE", "4")  # already inside torchrun: train here
    assert training.relaunch(defaults("launch") | {"launcher": "torchrun", "nproc": 4}, ["-m", "stages.track1", "train"]) is False
    monkeypatch.delenv("WORLD_SIZE")
    with pytest.raises(ConfigError, match="launch.launcher must be one of"):
        training.relaunch(defaults("launch") | {"launcher": "slurm"}, [])
    with pytest.raises(ConfigError, match="launch.nproc"):
        training.relaunch(defaults("launch") | {"launcher": "torchrun", "nproc": 0}, [])
    monkeypatch.setattr(training.subprocess, "call", lambda command: 3)
    with pytest.raises(training.TrainingLaunchError, match="exited with code 3"):
        training.relaunch(defaults("launch") | {"launcher": "torchrun", "nproc": 2}, ["-m", "stages.track2", "train"])
