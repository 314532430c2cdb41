"""File I/O at the edges: atomic writes, Parquet tables and the keypoints cache."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from miga.contracts import ContractError
from miga.layouts import get_layout

LAYOUT_KEY = b"miga.layout"
SOURCE_KEY = b"miga.pose"  # JSON: which pose backend made the keypoints, with what settings
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give outputs the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty folder beside `target`; if the block succeeds it takes `target`'s place.

    An interrupted run leaves `target` as it was (plus a hidden `.name.tmp-*` folder).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    os.chmod(fresh, 0o777 & ~_UMASK)  # mkdtemp makes it private; outputs should not be
    try:
        yield fresh
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(fresh, target)
            shutil.rmtree(old)
        else:
            os.replace(fresh, target)
    finally:
        if fresh.exists():
            shutil.rmtree(fresh)


def write_parquet(frame: pl.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        frame.write_parquet(tmp)


def read_parquet(path: str | os.PathLike) -> pl.DataFrame:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found (did the stage that makes it run?)")
    try:
        return pl.read_parquet(path)
    except Exception as err:  # polars raises several types for corrupt files
        raise ContractError(f"{path}: not a readable Parquet file: {err}") from err


def write_json(data: Mapping, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


# ---------------------------------------------------------------- keypoints cache

_KEYPOINT_SCHEMA = pa.schema([
    ("sample_id", pa.string()),
    ("start_frame", pa.int64()),
    ("persons", pa.int32()),
    ("frames", pa.int32()),
    ("joints", pa.int32()),
    ("channels", pa.int32()),
    ("values", pa.large_list(pa.float32())),
])


def _checked_keypoints(sample_id: str, array, layout: str) -> np.ndarray:
    """`array` as float32 (M, T, V, 3), V the joints of `layout`; a ContractError naming the sample otherwise."""
    spec = get_layout(layout)
    array = np.asarray(array, dtype=np.float32)
    if array.ndim != 4 or array.shape[2] != spec.num_joints or array.shape[3] != 3:
        raise ContractError(f"keypoints for {sample_id}: expected (M, T, {spec.num_joints}, 3) for layout {layout}, got {array.shape}")
    return array


def write_keypoints(samples: Mapping[str, tuple[int, np.ndarray]], layout: str, path: str | os.PathLike,
                    source: Mapping | None = None) -> None:
    """Write `{sample_id: (start_frame, array (M, T, V, C))}` to one Parquet file, atomically.

    `source` (JSON-serializable: the pose backend and its settings) is kept in the file's
    metadata beside the layout; `KeypointStore.source` reads it back.
    """
    ids, starts, shapes, values = [], [], [], []
    for sample_id, (start, array) in samples.items():
        array = _checked_keypoints(sample_id, array, layout)
        ids.append(sample_id)
        starts.append(int(start))
        shapes.append(array.shape)
        values.append(array.reshape(-1))
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([v.size for v in values])
    flat = np.concatenate(values) if values else np.zeros(0, np.float32)
    table = pa.Table.from_arrays(
        [
            pa.array(ids, pa.string()),
            pa.array(starts, pa.int64()),
            pa.array([s[0] for s in shapes], pa.int32()),
            pa.array([s[1] for s in shapes], pa.int32()),
            pa.array([s[2] for s in shapes], pa.int32()),
            pa.array([s[3] for s in shapes], pa.int32()),
            pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat)),
        ],
        schema=_KEYPOINT_SCHEMA.with_metadata(
            {LAYOUT_KEY: layout.encode(), **({SOURCE_KEY: json.dumps(dict(source), sort_keys=True).encode()} if source else {})}
        ),
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


class MissingKeypointsError(ContractError, KeyError):
    """A sample of the manifest has no keypoints: the keypoints file is out of date."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class KeypointStore:
    """Read access to a keypoints file: `store[sample_id] -> (M, T, V, 3) float32`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: keypoints file not found")
        try:
            table = pq.read_table(self.path)
        except Exception as err:
            raise ContractError(f"{self.path}: not a readable keypoints Parquet file: {err}") from err
        meta = table.schema.metadata or {}
        if LAYOUT_KEY not in meta:
            raise ContractError(f"{self.path}: no joint layout in the file metadata ({LAYOUT_KEY.decode()})")
        self.layout = meta[LAYOUT_KEY].decode()
        try:
            self.source: dict = json.loads(meta[SOURCE_KEY]) if SOURCE_KEY in meta else {}
        except ValueError as err:
            raise ContractError(f"{self.path}: unreadable pose source metadata ({SOURCE_KEY.decode()}): {err}") from None
        missing = set(_KEYPOINT_SCHEMA.names) - set(table.column_names)
        if missing:
            raise ContractError(f"{self.path}: missing keypoint columns {sorted(missing)}")
        values = table.column("values").combine_chunks()  # no copy for the usual one row group
        self._flat = values.values.to_numpy(zero_copy_only=False)  # float32 without nulls: a view of Arrow's buffer
        offsets = values.offsets.to_numpy()
        cols = {c: table.column(c).to_numpy() for c in ("persons", "frames", "joints", "channels", "start_frame")}
        self.ids = table.column("sample_id").to_pylist()
        self._index = {}
        for i, sample_id in enumerate(self.ids):
            shape = (int(cols["persons"][i]), int(cols["frames"][i]), int(cols["joints"][i]), int(cols["channels"][i]))
            if int(np.prod(shape)) != offsets[i + 1] - offsets[i]:
                raise ContractError(f"{self.path}: sample {sample_id}: {offsets[i + 1] - offsets[i]} values do not fill shape {shape}")
            self._index[sample_id] = (int(offsets[i]), shape, int(cols["start_frame"][i]))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, sample_id: str) -> bool:
        return sample_id in self._index

    def __getitem__(self, sample_id: str) -> np.ndarray:
        try:
            offset, shape, _ = self._index[sample_id]
        except KeyError:
            raise MissingKeypointsError(f"{self.path}: no keypoints for sample {sample_id!r}: the file is older than the "
                                        "manifest (re-run the pose stage: dvc repro)") from None
        return self._flat[offset: offset + int(np.prod(shape))].reshape(shape)

    def start_frame(self, sample_id: str) -> int:
        return self._index[sample_id][2]

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        for sample_id in self.ids:
            yield sample_id, self[sample_id]


class InMemoryKeypoints:
    """`KeypointStore`'s read interface over arrays in memory (benchmarks, cross-validation folds, tests):
    `store[sample_id] -> (M, T, V, 3) float32`, `.layout`, `.ids`, `in`, `len`, `start_frame`, `items`.

    `samples` maps a sample id to its array, or to `(start_frame, array)` as `write_keypoints` takes them (a bare
    array starts at frame 0). Every array is checked against `layout` here, as `write_keypoints` checks it; a
    missing id raises `MissingKeypointsError`, as the file-backed store does.
    """

    def __init__(self, samples: Mapping[str, np.ndarray | tuple[int, np.ndarray]], layout: str, *,
                 source: Mapping | None = None, name: str = "in-memory keypoints"):
        self.layout, self.source, self.name = layout, dict(source or {}), name
        self._arrays: dict[str, np.ndarray] = {}
        self._starts: dict[str, int] = {}
        for sample_id, value in samples.items():
            start, array = value if isinstance(value, tuple) else (0, value)
            self._arrays[sample_id] = _checked_keypoints(sample_id, array, layout)
            self._starts[sample_id] = int(start)
        self.ids = list(self._arrays)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, sample_id: str) -> bool:
        return sample_id in self._arrays

    def __getitem__(self, sample_id: str) -> np.ndarray:
        try:
            return self._arrays[sample_id]
        except KeyError:
            raise MissingKeypointsError(f"{self.name}: no keypoints for sample {sample_id!r}") from None

    def start_frame(self, sample_id: str) -> int:
        self[sample_id]  # a missing id: MissingKeypointsError
        return self._starts[sample_id]

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        for sample_id in self.ids:
            yield sample_id, self[sample_id]
