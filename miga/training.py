"""A small, deterministic, resumable training loop shared by both tracks.

Randomness is derived from (seed, epoch) only: the sampler's order and every augmentation
(datasets get `set_epoch`), so a run resumed from the checkpoint of epoch k continues exactly
as an uninterrupted run would.

Data-parallel: started by `torchrun --nproc_per_node N` (WORLD_SIZE, RANK, LOCAL_RANK set), `fit`
joins the process group (gloo on the CPU, nccl on CUDA with one GPU per process, LOCAL_RANK) and
trains a `DistributedDataParallel` model. The global batch stays `batch_size`: each epoch's
order is the single-process one and every global batch is cut into `batch_size / N` samples per
rank (`RankSampler`), so the steps, learning-rate schedule and per-sample augmentations are
those of one process, and the averaged gradients those of one process for a loss that is a mean
over the batch (BatchNorm: synchronised on CUDA; per-rank statistics on the CPU, where
SyncBatchNorm does not run). Rank 0 alone writes checkpoints (`save_checkpoint`, between
barriers) and reads the one to resume from, which it sends to every rank. `relaunch` lets a stage start itself under
torchrun (`launch.launcher: torchrun`, `launch.nproc`).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import math
import os
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from miga.errors import ConfigError, MigaError
from miga.io import atomic_path

LAUNCHERS = ("local", "torchrun")
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
    def from_params(cls, params: Mapping) -> "TrainConfig":
        """From the `train` params section (every optimisation key of the schema's)."""
        return cls(**{k: params[k] for k in cls.__dataclass_fields__})


def device() -> torch.device:
    """CUDA (this process's GPU, LOCAL_RANK, under torchrun) or the CPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if "LOCAL_RANK" in os.environ else torch.device("cuda")


# ---------------------------------------------------------------- data-parallel (torchrun)


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int


def world() -> World | None:
    """This process's place among torchrun's (WORLD_SIZE > 1), or None for a single process."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return None
    return World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed() -> World | None:
    """Join torchrun's process group once per process (gloo on the CPU, nccl on CUDA); None for a single process."""
    here = world()
    if here is None:
        return None
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(here.local_rank)
        dist.init_process_group(backend)
        atexit.register(_leave)
    return here


def _leave() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a single process: the one that writes files."""
    here = world()
    return here is None or here.rank == 0


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


class TrainingLaunchError(MigaError):
    """torchrun (launch.launcher: torchrun) did not finish."""


def relaunch(launch: Mapping, argv: Sequence[str]) -> bool:
    """`launch.launcher: torchrun` outside torchrun: run `python -m torch.distributed.run --nproc_per_node
    <launch.nproc> --standalone <argv>` (one machine) and return True once it succeeded; False: train here.

    Inside a torchrun job (WORLD_SIZE set: started by hand, e.g. on several nodes) it returns False.
    """
    launcher = launch["launcher"]
    if launcher not in LAUNCHERS:
        raise ConfigError(f"launch.launcher must be one of {list(LAUNCHERS)}, not {launcher!r}")
    if launcher == "local" or "WORLD_SIZE" in os.environ:
        return False
    nproc = launch["nproc"]
    if not (isinstance(nproc, int) and nproc >= 1) and nproc not in ("gpu", "cpu", "auto"):
        raise ConfigError(f"launch.nproc must be a number of processes >= 1 (or gpu, cpu, auto), not {nproc!r}")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *argv]
    print(f"train: {' '.join(command[1:])}", flush=True)
    code = subprocess.call(command)
    if code != 0:
        raise TrainingLaunchError(f"launch.launcher torchrun: {' '.join(command[1:])} exited with code {code} (its log is above)")
    return True


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


class RankSampler(Sampler[int]):
    """One rank's share of `sampler`'s global batches: batch b is the order's [b * B, (b + 1) * B), and
    rank r takes its [r * B / N, (r + 1) * B / N) (B = `batch_size`, N = `world_size`). With
    `drop_last` the last incomplete batch is dropped, as a single process does; without, it is
    split as evenly as N allows (a DataLoader of batch size B / N then yields the same steps)."""

    def __init__(self, sampler: EpochSampler, batch_size: int, rank: int, world_size: int, drop_last: bool):
        if batch_size % world_size:
            raise ConfigError(f"the batch size {batch_size} (the global batch) is not divisible by {world_size} processes")
        self.sampler, self.batch_size, self.rank, self.world_size, self.drop_last = sampler, batch_size, rank, world_size, drop_last
        tail = len(sampler) % batch_size
        if not drop_last and 0 < tail < world_size:
            raise ConfigError(f"{len(sampler)} samples cannot be shared by {world_size} processes")

    @property
    def local_batch(self) -> int:
        return self.batch_size // self.world_size

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def _share(self, order: list[int]) -> list[int]:
        full, local = len(order) // self.batch_size, self.local_batch
        mine = []
        for b in range(full):
            start = b * self.batch_size + self.rank * local
            mine += order[start: start + local]
        tail = order[full * self.batch_size:]
        if tail and not self.drop_last:
            mine += np.array_split(np.asarray(tail), self.world_size)[self.rank].tolist()
        return mine

    def __iter__(self) -> Iterator[int]:
        return iter(self._share(list(iter(self.sampler))))

    def __len__(self) -> int:
        return len(self._share(list(range(len(self.sampler)))))


class _Loss(torch.nn.Module):
    """The loss as a module's forward, so DistributedDataParallel sees every parameter use (loss functions call
    submodules and methods of the model, e.g. `model.classify`, not its forward)."""

    def __init__(self, model: torch.nn.Module, loss_fn, dev: torch.device):
        super().__init__()
        self.model, self.loss_fn, self.dev = model, loss_fn, dev

    def forward(self, batch):
        return self.loss_fn(self.model, batch, self.dev)


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    counts = np.bincount(labels)
    return 1.0 / np.sqrt(counts[labels])


def fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_checkpoint(path: Path, state: dict) -> None:
    """Same state, same bytes: saved through a file object, torch names the archive inside "archive"
    (given a path it would use the temporary file's random name).

    In a torchrun job every rank calls it and rank 0 alone writes, between barriers (no rank reads
    or writes the file while another writes it)."""
    barrier()
    if is_main_process():
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            torch.save(state, handle)
    barrier()


def read_torch_file(path: Path, way_out: str, map_location: str = "cpu") -> dict:
    """`torch.load(path, weights_only=True)` of a saved state dict; a truncated, empty or foreign file is one
    ConfigError naming the file and `way_out` (what to delete or rerun), never a traceback or click's "Aborted."."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:120]
        raise ConfigError(f"{path}: not a readable PyTorch file ({type(error).__name__}: {first}); {way_out}") from None
    if not isinstance(state, dict):
        raise ConfigError(f"{path}: holds a {type(state).__name__}, not a saved state; {way_out}")
    return state


def load_checkpoint(path: Path) -> dict | None:
    if not Path(path).exists():
        return None
    return read_torch_file(path, f"delete {path} to start this training over")


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
    param_groups: list[dict] | None = None,
) -> list[dict]:
    """Train `model` for `config.epochs` epochs (SGD + cosine), resuming from `checkpoint`.

    `loss_fn(model, batch, device)` returns the loss. `run_id` fingerprints data + params: a
    checkpoint from another run is ignored. `on_epoch(epoch, stats)` may add validation
    figures; the per-epoch history is returned and stored in the checkpoint. `on_step(step)` is
    called after every optimizer step, numbered from 1 across epochs. `param_groups` (torch's optimizer groups,
    each with its own `lr`, e.g. a pretrained backbone below its new head) replace the one group of all parameters;
    the schedule scales every group's lr alike.

    Under torchrun (see the module doc) it trains one DistributedDataParallel replica per process
    with the same global batch; `model` is left with the trained weights on every rank, the
    history is the same on every rank (losses averaged over the ranks) and rank 0 writes the checkpoint.
    """
    if config.epochs < 1 or config.batch_size < 1:
        raise ConfigError(f"{description}: epochs and batch_size must be >= 1 (got {config.epochs}, {config.batch_size}); "
                          "a run that trains nothing would replace the trained model with random weights")
    if len(dataset) == 0:
        raise ConfigError(f"{description}: no training samples")
    here = init_distributed()
    dev = device()
    model.to(dev)
    if here is not None and dev.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # in place for a model that is not itself a BatchNorm
    weights = balanced_weights(labels) if (config.balanced and labels is not None) else None
    sampler = EpochSampler(len(dataset), config.seed, weights)
    drop_last = len(dataset) > config.batch_size
    if here is None:
        loader = DataLoader(
            dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers,
            drop_last=drop_last, persistent_workers=False,
        )
    else:
        sampler = RankSampler(sampler, config.batch_size, here.rank, here.size, drop_last)
        loader = DataLoader(dataset, batch_size=sampler.local_batch, sampler=sampler, num_workers=config.workers,
                            drop_last=False, persistent_workers=False)
    steps_per_epoch = max(1, len(loader))
    optimizer = make_optimizer(model, config, param_groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch))

    history: list[dict] = []
    start_epoch = 0
    state = load_checkpoint(checkpoint) if is_main_process() else None
    if here is not None:  # every rank resumes from rank 0's checkpoint (no shared file system needed)
        import torch.distributed as dist

        box = [state]
        dist.broadcast_object_list(box, src=0)
        state = box[0]
    if state is not None and state.get("run_id") == run_id:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = list(state["history"])
        start_epoch = int(state["epoch"]) + 1
        if is_main_process():
            print(f"{description}: resuming after epoch {start_epoch} from {checkpoint}")
    if here is None:
        step_loss = lambda batch: loss_fn(model, batch, dev)  # noqa: E731
    else:  # after loading: DDP starts every rank from rank 0's (the same) weights
        from torch.nn.parallel import DistributedDataParallel

        step_loss = DistributedDataParallel(_Loss(model, loss_fn, dev), device_ids=[dev.index] if dev.type == "cuda" else None,
                                            static_graph=True)  # the same parameters every step; unused ones are found once
    rank, size = (here.rank, here.size) if here is not None else (0, 1)

    for epoch in range(start_epoch, config.epochs):
        torch.manual_seed((config.seed * 1000 + epoch) * size + rank)  # dropout masks (one process: seed * 1000 + epoch)
        sampler.set_epoch(epoch)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        model.train()
        losses = []
        with tqdm(loader, desc=f"{description} epoch {epoch + 1}/{config.epochs}", leave=False,
                  disable=None if rank == 0 else True) as bar:
            for batch in bar:
                with autocast(dev):
                    loss = step_loss(batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                losses.append(float(loss.detach()))
                if on_step is not None:
                    on_step(epoch * steps_per_epoch + len(losses))
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
        stats = {"epoch": epoch + 1, "loss": _mean_over_ranks(float(np.mean(losses)), dev), "lr": max(g["lr"] for g in optimizer.param_groups)}
        if on_epoch is not None:
            stats.update(on_epoch(epoch, stats))
        history.append(stats)
        if rank == 0:
            print(f"{description}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in stats.items()), flush=True)
        save_checkpoint(checkpoint, {
            "run_id": run_id, "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "history": history,
        })
    return history


def _mean_over_ranks(value: float, dev: torch.device) -> float:
    """The mean of a number over a torchrun job's ranks (the number itself in one process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    total = torch.tensor([value], dtype=torch.float64, device=dev)
    dist.all_reduce(total)
    return float(total.item() / dist.get_world_size())


def make_optimizer(model: torch.nn.Module, config: TrainConfig, param_groups: list[dict] | None = None) -> torch.optim.Optimizer:
    params = param_groups if param_groups is not None else model.parameters()
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=True)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; use sgd or adamw")


def warmup_cosine(total: int, warmup: int) -> Callable[[int], float]:
    """Learning-rate factor per optimizer step: linear warm-up over `warmup` steps, then cosine to 0 at `total`."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (min(step, total) - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * progress))
    return factor
