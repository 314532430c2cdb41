"""Draw the posed body as filled shapes (numpy + numba, no OpenCV) and encode it as H.264 mp4 with PyAV.

The video shows exactly the body the keypoints come from (before tracking noise), through the
same camera, so keypoint pixel coordinates are pixels of the video.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from numba import njit

from miga.video import encode_mp4
from miga.io import atomic_path
from miga.synth.body import HEAD_RADIUS, Body, Subject
from miga.synth.sensors import Camera

CAPSULE, QUAD = 0, 1
CHUNK_FRAMES = 64
GRAIN_PLANES = 7  # pixel-noise planes, cycled over the frames


def _shape_list(body: Body, subject: Subject) -> list[tuple[int, list[np.ndarray], float, str, float]]:
    """(kind, 3-D points, radius in m, colour name, depth bias in m) of every drawn part."""
    j, k = body.joints, body.scale
    sleeve = "sleeve" if "sleeve" in subject.colours else "shirt"
    shapes = []
    for s in "LR":
        shapes += [
            (CAPSULE, [j[f"{s}Hip"], j[f"{s}Knee"]], 0.07 * k, "trousers", 0.0),
            (CAPSULE, [j[f"{s}Knee"], j[f"{s}Ankle"]], 0.055 * k, "trousers", 0.0),
            (CAPSULE, [j[f"{s}Heel"], j[f"{s}BigToe"]], 0.04 * k, "shoes", 0.0),
        ]
    widen = np.array([0.03 * k, 0.0, 0.0])
    corners = [j["LShoulder"] + widen, j["RShoulder"] - widen, j["RHip"] - 1.5 * widen, j["LHip"] + 1.5 * widen]
    shapes += [
        (QUAD, corners, 0.0, "shirt", -0.08),
        (CAPSULE, [j["LShoulder"], j["RShoulder"]], 0.05 * k, "shirt", -0.07),
        (CAPSULE, [j["Neck"], j["HeadPivot"]], 0.045 * k, "skin", -0.05),
        (CAPSULE, [j["HairCentre"]] * 2, 0.105 * k, "hair", -0.03),
        (CAPSULE, [j["LEar"]] * 2, 0.022 * k, "skin", -0.03),
        (CAPSULE, [j["REar"]] * 2, 0.022 * k, "skin", -0.03),
        (CAPSULE, [j["FaceCentre"]] * 2, 0.93 * HEAD_RADIUS * k, "skin", 0.0),
        (CAPSULE, [j["LEye"]] * 2, 0.011 * k, "eyes", 0.0),
        (CAPSULE, [j["REye"]] * 2, 0.011 * k, "eyes", 0.0),
    ]
    half_mouth = 0.3 * (1.0 - 0.6 * body.lip)[:, None] * (j["LEye"] - j["REye"])
    shapes.append((CAPSULE, [j["Mouth"] - half_mouth, j["Mouth"] + half_mouth], 0.008 * k, "lips", 0.0))
    for s in "LR":
        wrist = j[f"{s}Wrist"]
        shapes += [
            (CAPSULE, [j[f"{s}Shoulder"], j[f"{s}Elbow"]], 0.048 * k, "shirt", 0.0),
            (CAPSULE, [j[f"{s}Elbow"], wrist], 0.04 * k, sleeve, 0.0),
            (CAPSULE, [wrist, j[f"{s}HandCentre"]], 0.035 * k, "skin", 0.01),
        ]
        for finger in ("Thumb", "Index", "Middle", "Ring", "Pinky"):
            tip = j[f"{s}{finger}Tip"]
            base = wrist + (0.25 if finger == "Thumb" else 0.45) * (tip - wrist)
            shapes.append((CAPSULE, [base, tip], 0.011 * k, "skin", 0.01))
    return shapes


def shape_arrays(body: Body, camera: Camera, subject: Subject):
    """Per-frame arrays for the renderer: kinds (S,), points (T, S, 4, 2), radii (T, S), depth (T, S), colours (S, 3)."""
    shapes = _shape_list(body, subject)
    n, count = body.num_frames, len(shapes)
    points = np.zeros((n, count, 4, 2), np.float32)
    radii = np.zeros((n, count), np.float32)
    depth = np.zeros((n, count), np.float32)
    for i, (_, corners, radius, _, bias) in enumerate(shapes):
        uv, distance = camera.project(np.stack(corners, 1))
        points[:, i, : len(corners)] = uv
        radii[:, i] = radius * camera.focal / distance.mean(1)
        depth[:, i] = bias - distance.mean(1)  # far parts first
    kinds = np.array([shape[0] for shape in shapes], np.int64)
    colours = np.array([subject.colours[shape[3]] for shape in shapes], np.float32)
    return kinds, points, radii, depth, colours


def background(camera: Camera, subject: Subject, body: Body) -> np.ndarray:
    """A plain wall with a soft vertical gradient, and a chair back (seated) or a floor (standing)."""
    h, w = camera.height, camera.width
    wall = np.array(subject.colours["wall"], np.float32)
    shade = np.linspace(1.06, 0.9, h, dtype=np.float32)[:, None, None]
    image = np.ascontiguousarray(np.broadcast_to(wall * shade, (h, w, 3)), dtype=np.float32)
    k = body.scale
    if subject.seated:
        corners = np.array([[0.27, 0.0, -0.15], [-0.27, 0.0, -0.15], [-0.24, 0.72, -0.15], [0.24, 0.72, -0.15]]) * k
        uv, _ = camera.project(corners)
        _draw_quad(image, uv.astype(np.float32), *np.array(subject.colours["chair"], np.float32))
    else:
        floor_v = camera.project(body.joints["LAnkle"][0])[0][1] - 0.05 * camera.focal / camera.origin[2]
        rows = np.arange(h) >= floor_v
        image[rows] = np.array(subject.colours["floor"], np.float32)
    return image


@njit(cache=True, nogil=True)
def _blend(image, i, j, cover, r, g, b):
    image[i, j, 0] += cover * (r - image[i, j, 0])
    image[i, j, 1] += cover * (g - image[i, j, 1])
    image[i, j, 2] += cover * (b - image[i, j, 2])


@njit(cache=True, nogil=True)
def _draw_capsule(image, ax, ay, bx, by, radius, r, g, b):
    """A segment of `radius` with round ends and a one-pixel anti-aliased edge (pixel centres at integers)."""
    h, w = image.shape[0], image.shape[1]
    x0 = max(int(math.floor(min(ax, bx) - radius - 1.0)), 0)
    x1 = min(int(math.ceil(max(ax, bx) + radius + 1.0)), w - 1)
    y0 = max(int(math.floor(min(ay, by) - radius - 1.0)), 0)
    y1 = min(int(math.ceil(max(ay, by) + radius + 1.0)), h - 1)
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    for i in range(y0, y1 + 1):
        for j in range(x0, x1 + 1):
            t = 0.0
            if length2 > 0.0:
                t = min(max(((j - ax) * dx + (i - ay) * dy) / length2, 0.0), 1.0)
            ex, ey = j - ax - t * dx, i - ay - t * dy
            cover = radius + 0.5 - math.sqrt(ex * ex + ey * ey)
            if cover > 0.0:
                _blend(image, i, j, min(cover, 1.0), r, g, b)


@njit(cache=True, nogil=True)
def _draw_quad(image, corners, r, g, b):
    """A convex quadrilateral (corners in either winding order) with an anti-aliased edge."""
    h, w = image.shape[0], image.shape[1]
    area = 0.0
    for e in range(4):
        area += corners[e, 0] * corners[(e + 1) % 4, 1] - corners[(e + 1) % 4, 0] * corners[e, 1]
    # Each edge as a line n . p = c with n the unit normal pointing out of the quad.
    nx, ny, c = np.empty(4), np.empty(4), np.empty(4)
    for e in range(4):
        ex, ey = corners[(e + 1) % 4, 0] - corners[e, 0], corners[(e + 1) % 4, 1] - corners[e, 1]
        norm = math.sqrt(ex * ex + ey * ey) + 1e-9
        sign = -1.0 if area > 0.0 else 1.0
        nx[e], ny[e] = -sign * ey / norm, sign * ex / norm
        c[e] = nx[e] * corners[e, 0] + ny[e] * corners[e, 1]
    x0 = max(int(math.floor(corners[:, 0].min() - 1.0)), 0)
    x1 = min(int(math.ceil(corners[:, 0].max() + 1.0)), w - 1)
    y0 = max(int(math.floor(corners[:, 1].min() - 1.0)), 0)
    y1 = min(int(math.ceil(corners[:, 1].max() + 1.0)), h - 1)
    for i in range(y0, y1 + 1):
        for j in range(x0, x1 + 1):
            outside = -1e9
            for e in range(4):
                outside = max(outside, nx[e] * j + ny[e] * i - c[e])
            cover = 0.5 - outside
            if cover > 0.0:
                _blend(image, i, j, min(cover, 1.0), r, g, b)


@njit(cache=True, nogil=True)
def render_frames(out, backdrop, kinds, points, radii, depth, colours, grain, first_frame):
    """Draw frames first_frame.. into `out` (N, H, W, 3) uint8, far shapes first, plus the grain plane of each frame."""
    n, h, w = out.shape[0], out.shape[1], out.shape[2]
    image = np.empty_like(backdrop)
    flat_image, flat_backdrop = image.reshape(-1), backdrop.reshape(-1)
    for f in range(n):
        frame = first_frame + f
        for q in range(flat_image.size):
            flat_image[q] = flat_backdrop[q]
        for s in np.argsort(depth[frame]):
            p = points[frame, s]
            if not np.all(np.isfinite(p)):
                continue
            r, g, b = colours[s, 0], colours[s, 1], colours[s, 2]
            if kinds[s] == 0:
                _draw_capsule(image, p[0, 0], p[0, 1], p[1, 0], p[1, 1], radii[frame, s], r, g, b)
            else:
                _draw_quad(image, p, r, g, b)
        noise = grain[frame % grain.shape[0]].reshape(-1)
        flat_out = out[f].reshape(-1)
        for pixel in range(h * w):
            x = noise[pixel] + 0.5
            for c in range(3):
                q = 3 * pixel + c
                flat_out[q] = np.uint8(min(max(flat_image[q] + x, 0.0), 255.0))


def render_video(path: Path, body: Body, camera: Camera, subject: Subject, fps: float, rng: np.random.Generator, *, noise=3.0) -> int:
    """Render every frame of `body` and encode it to `path` (atomically); returns the frame count."""
    arrays = shape_arrays(body, camera, subject)
    backdrop = background(camera, subject, body)
    grain = rng.uniform(-noise, noise, (GRAIN_PLANES, camera.height, camera.width)).astype(np.float32)
    buffers = np.empty((2, CHUNK_FRAMES, camera.height, camera.width, 3), np.uint8)
    starts = range(0, body.num_frames, CHUNK_FRAMES)

    def draw(chunk: int) -> np.ndarray:
        out = buffers[chunk % 2, : min(CHUNK_FRAMES, body.num_frames - starts[chunk])]
        render_frames(out, backdrop, *arrays, grain, starts[chunk])
        return out

    def frames():
        # The kernel runs without the GIL: draw the next chunk while the encoder takes this one.
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(draw, 0)
            for chunk in range(len(starts)):
                ready = pending.result()
                if chunk + 1 < len(starts):
                    pending = pool.submit(draw, chunk + 1)
                yield from ready

    with atomic_path(path) as tmp:
        return encode_mp4(tmp, frames(), fps, (camera.width, camera.height))
