from pathlib import Path

import os

import av
import numpy as np
import pytest

# ../shared/realdata beside the checkout, or wherever MIGA_REALDATA points (a clone elsewhere).
REALDATA = Path(os.environ.get("MIGA_REALDATA", Path(__file__).resolve().parents[2] / "shared" / "realdata"))


def invoke_cli(cwd: Path, args: list[str]):
    """`miga ARGS` run in-process from `cwd` (the stages read and write relative to the project root)."""
    from typer.testing import CliRunner

    from stages.cli import app

    before = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, args)
    finally:
        os.chdir(before)


def write_test_video(path: Path, frames: int, size=(64, 48), fps: int = 25) -> np.ndarray:
    """Encode a small mp4 whose frame k has a bright square at x = 2k; returns the frames written."""
    width, height = size
    images = np.zeros((frames, height, width, 3), np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for k in range(frames):
            x = (2 * k) % (width - 8)
            images[k, 10:18, x: x + 8] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(images[k], format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return images


@pytest.fixture
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"real recordings not available at {REALDATA}")
    return REALDATA
