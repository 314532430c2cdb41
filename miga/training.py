"""A small, deterministic, resumable training loop shared by both tracks.

Randomness is derived from (seed, epoch) only: the sampler's order and every augmentation
(datasets get `set_epoch`), so a run resumed from the checkpoint of epoch k continues exactly
as an uninterrupted run would.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from miga.io import atomic_path


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 16
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    workers: int = 0
    balanced: bool = False  # class-balanced sampling (weights ~ 1/sqrt(class count))
    optimizer: str = "sgd"  # sgd (nesterov momentum, the PoseConv3D schedule) | adamw
    warmup_epochs: int = 0  # linear warm-up before the cosine decay

    @classmethod
    def from_params(cls, params: dict) -> "TrainConfig":
        known = {k: params[k] for k in cls.__dataclass_fields__ if k in params}
        return cls(**known)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(dev: torch.device):
    """bf16 autocast on CUDA; full precision on the CPU (deterministic there)."""
    if dev.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.use_deterministic_algorithms(True, warn_only=True)


class EpochSampler(Sampler[int]):
    """A permutation (or weighted draw with replacement) that depends only on (seed, epoch)."""

    def __init__(self, size: int, seed: int, weights: np.ndarray | None = None):
        self.size, self.seed, self.weights, self.epoch = size, seed, weights, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch, 17])
        if self.weights is None:
            order = rng.permutation(self.size)
        else:
            order = rng.choice(self.size, size=self.size, replace=True, p=self.weights / self.weights.sum())
        return iter(order.tolist())

    def __len__(self) -> int:
        return self.size


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    counts = np.bincount(labels)
    return 1.0 / np.sqrt(counts[labels])


def fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_checkpoint(path: Path, state: dict) -> None:
    """Same state, same bytes: saved through a file object, torch names the archive inside "archive"
    (given a path it would use the temporary file's random name)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(state, handle)


def load_checkpoint(path: Path) -> dict | None:
    if not Path(path).exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def fit(
    model: torch.nn.Module,
    dataset: Dataset,
    *,
    config: TrainConfig,
    loss_fn: Callable[[torch.nn.Module, object, torch.device], torch.Tensor],
    checkpoint: Path,
    run_id: str,
    labels: np.ndarray | None = None,
    on_epoch: Callable[[int, dict], dict] | None = None,
    on_step: Callable[[int], None] | None = None,
    description: str = "train",
) -> list[dict]:
    """Train `model` for `config.epochs` epochs (SGD + cosine), resuming from `checkpoint`.

    `loss_fn(model, batch, device)` returns the loss. `run_id` fingerprints data + params: a
    checkpoint from another run is ignored. `on_epoch(epoch, stats)` may add validation
    figures; the per-epoch history is returned and stored in the checkpoint. `on_step(step)` is
    called after every optimizer step, numbered from 1 across epochs.
    """
    dev = device()
    model.to(dev)
    weights = balanced_weights(labels) if (config.balanced and labels is not None) else None
    sampler = EpochSampler(len(dataset), config.seed, weights)
    loader = DataLoader(
        dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers,
        drop_last=len(dataset) > config.batch_size, persistent_workers=False,
    )
    steps_per_epoch = max(1, len(loader))
    optimizer = make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch))

    history: list[dict] = []
    start_epoch = 0
    state = load_checkpoint(checkpoint)
    if state is not None and state.get("run_id") == run_id:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = list(state["history"])
        start_epoch = int(state["epoch"]) + 1
        print(f"{description}: resuming after epoch {start_epoch} from {checkpoint}")

    for epoch in range(start_epoch, config.epochs):
        torch.manual_seed(config.seed * 1000 + epoch)  # dropout masks
        sampler.set_epoch(epoch)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        model.train()
        losses = []
        with tqdm(loader, desc=f"{description} epoch {epoch + 1}/{config.epochs}", leave=False, disable=None) as bar:
            for batch in bar:
                with autocast(dev):
                    loss = loss_fn(model, batch, dev)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                losses.append(float(loss.detach()))
                if on_step is not None:
                    on_step(epoch * steps_per_epoch + len(losses))
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
        stats = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "lr": optimizer.param_groups[0]["lr"]}
        if on_epoch is not None:
            stats.update(on_epoch(epoch, stats))
        history.append(stats)
        print(f"{description}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in stats.items()), flush=True)
        save_checkpoint(checkpoint, {
            "run_id": run_id, "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "history": history,
        })
    return history


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=True)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; use sgd or adamw")


def warmup_cosine(total: int, warmup: int) -> Callable[[int], float]:
    """Learning-rate factor per optimizer step: linear warm-up over `warmup` steps, then cosine to 0 at `total`."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (min(step, total) - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * progress))
    return factor


@torch.no_grad()
def predict_batches(model: torch.nn.Module, batches: Iterable, forward: Callable[[torch.nn.Module, object, torch.device], torch.Tensor]) -> np.ndarray:
    dev = device()
    model.to(dev).eval()
    outputs = []
    for batch in batches:
        with autocast(dev):
            outputs.append(forward(model, batch, dev).float().cpu().numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0,))


def config_dict(config: TrainConfig) -> dict:
    return asdict(config)
