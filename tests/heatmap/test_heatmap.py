import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from miga.heatmap import flip_keypoints, limb_flip_index, rasterize
from miga.layouts import COCO17, LAYOUTS
from tests.heatmap import heatmap_oracle as oracle

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def poses(draw, num_joints=None):
    """Random keypoints with the awkward cases mixed in: zero/low scores, points off the frame or
    far away, non-finite coordinates, joints stacked on each other (degenerate limbs)."""
    persons = draw(st.integers(0, 3))
    frames = draw(st.integers(1, 3))
    joints = num_joints or draw(st.integers(2, 6))
    height, width = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kp = np.empty((persons, frames, joints, 3), np.float32)
    kp[..., 0] = rng.uniform(-6, width + 6, kp.shape[:3])
    kp[..., 1] = rng.uniform(-6, height + 6, kp.shape[:3])
    kp[..., 2] = rng.choice([0.0, 5e-4, 1e-3, 0.5, 1.0], kp.shape[:3]) * rng.uniform(0.5, 1.0, kp.shape[:3])
    special = rng.random(kp.shape[:3])
    kp[special < 0.15, :2] = np.round(kp[special < 0.15, :2])  # on pixel centres
    kp[(special > 0.9) & (special < 0.95), 0] = rng.choice([1e5, -1e6, 1e7, 1e30, np.inf])
    kp[special > 0.98, 1] = np.nan
    if joints > 2 and rng.random() < 0.5:  # a short or zero-length limb
        kp[:, :, 1, :2] = kp[:, :, 0, :2] + rng.uniform(-0.7, 0.7, kp[:, :, 0, :2].shape)
    limbs = [(int(a), int(b)) for a, b in rng.integers(0, joints, (draw(st.integers(1, 5)), 2))]
    sigma = draw(st.sampled_from([0.1, 0.6, 1.0, 2.5, 6.0]))
    return kp, (height, width), limbs, sigma


def both(kp, size, limbs, sigma, **kw):
    common = dict(size=size, limbs=limbs, sigma=sigma, with_joints=True, with_limbs=True, **kw)
    return rasterize(kp, **common), oracle.rasterize(kp, **common)


@SETTINGS
@given(poses(), st.booleans())
def test_numba_matches_oracle(pose, use_score):
    got, want = both(*pose, use_score=use_score)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


@SETTINGS
@given(poses())
def test_joints_and_limbs_separately_are_the_two_halves(pose):
    kp, size, limbs, sigma = pose
    together = rasterize(kp, size=size, limbs=limbs, sigma=sigma, with_limbs=True)
    joints = rasterize(kp, size=size, sigma=sigma)
    limb_maps = rasterize(kp, size=size, limbs=limbs, sigma=sigma, with_joints=False, with_limbs=True)
    np.testing.assert_array_equal(together, np.concatenate([joints, limb_maps]))


@SETTINGS
@given(poses())
def test_float16_and_uint8_are_the_quantized_float32(pose):
    kp, size, limbs, sigma = pose
    want = oracle.rasterize(kp, size=size, limbs=limbs, sigma=sigma, with_limbs=True)
    half = rasterize(kp, size=size, limbs=limbs, sigma=sigma, with_limbs=True, dtype=np.float16)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half.astype(np.float32), want, rtol=2**-11, atol=1e-5)
    u8 = rasterize(kp, size=size, limbs=limbs, sigma=sigma, with_limbs=True, dtype=np.uint8)
    assert u8.dtype == np.uint8
    assert np.abs(u8.astype(np.float64) - 255 * want.astype(np.float64)).max(initial=0) <= 0.5 + 1e-3


@SETTINGS
@given(poses(num_joints=COCO17.num_joints), st.booleans())
def test_flip_is_the_mirror_image_with_left_and_right_channels_swapped(pose, use_score):
    kp, size, _, sigma = pose
    limbs, index = COCO17.limbs, COCO17.flip_index
    mirrored = kp.copy()
    mirrored[..., 0] = (size[1] - 1) - mirrored[..., 0]
    want = oracle.rasterize(mirrored, size=size, limbs=limbs, sigma=sigma, with_limbs=True, use_score=use_score)
    channels = np.concatenate([index, COCO17.num_joints + limb_flip_index(limbs, index)])
    got = rasterize(kp, size=size, limbs=limbs, sigma=sigma, with_limbs=True, use_score=use_score,
                    flip=True, flip_index=index)
    np.testing.assert_allclose(got, want[channels], rtol=0, atol=1e-5)
    # Joints: the same as drawing the flipped keypoints (limbs may differ in direction).
    np.testing.assert_array_equal(rasterize(kp, size=size, sigma=sigma, flip=True, flip_index=index),
                                  rasterize(flip_keypoints(kp, size[1], index), size=size, sigma=sigma))


@SETTINGS
@given(poses())
def test_parallel_kernels_match_the_serial_ones(pose):
    kp, size, limbs, sigma = pose
    serial = rasterize(kp, size=size, limbs=limbs, sigma=sigma, with_limbs=True)
    np.testing.assert_array_equal(serial, rasterize(kp, size=size, limbs=limbs, sigma=sigma, with_limbs=True, parallel=True))


@SETTINGS
@given(poses())
def test_scaling_multiplies_the_coordinates(pose):
    kp, size, limbs, sigma = pose
    scaled = kp.copy()
    scaled[..., :2] *= np.float32(2.5)
    np.testing.assert_array_equal(rasterize(kp, size=size, limbs=limbs, with_limbs=True, sigma=sigma, scaling=2.5),
                                  rasterize(scaled, size=size, limbs=limbs, with_limbs=True, sigma=sigma))


@given(st.integers(0, 15), st.integers(0, 11), st.floats(0.01, 1.0), st.sampled_from([0.3, 0.6, 2.0]))
@settings(deadline=None, max_examples=40)
def test_peak_is_the_score_at_a_pixel_centre_and_the_window_is_3_sigma(x, y, score, sigma):
    kp = np.zeros((1, 1, 2, 3), np.float32)
    kp[0, 0, 0] = x, y, score
    maps = rasterize(kp, size=(12, 16), sigma=sigma)
    assert maps[0, 0, y, x] == np.float32(score) == maps.max()
    rows, cols = np.nonzero(maps[0, 0])
    assert np.all(np.abs(cols - x) <= 3 * sigma + 1) and np.all(np.abs(rows - y) <= 3 * sigma + 1)
    assert not maps[1].any()  # score 0: not drawn
    assert rasterize(kp, size=(12, 16), sigma=sigma, use_score=False)[0, 0, y, x] == 1.0


def test_limb_peak_is_the_lower_score_along_the_segment():
    kp = np.array([[[[2, 3, 0.9], [12, 3, 0.4]]]], np.float32)
    maps = rasterize(kp, size=(8, 16), limbs=[(0, 1)], with_joints=False, with_limbs=True)
    np.testing.assert_array_equal(maps[0, 0, 3, 2:13], np.float32(0.4))
    assert maps.max() == np.float32(0.4)


def test_a_limb_shorter_than_a_pixel_is_drawn_as_its_start_joint():
    kp = np.array([[[[5, 4, 0.8], [5.5, 4.5, 0.3]]]], np.float32)
    limb = rasterize(kp, size=(10, 10), limbs=[(0, 1)], with_joints=False, with_limbs=True)
    joint = rasterize(kp, size=(10, 10))
    np.testing.assert_array_equal(limb[0], joint[0])


def test_nothing_to_draw_gives_zeros_even_into_a_dirty_out():
    out = np.full((4, 3, 8, 9), np.nan, np.float32)
    result = rasterize(np.zeros((2, 3, 4, 3), np.float32), size=(8, 9), out=out)
    assert result is out and not out.any()
    kp = np.random.default_rng(0).uniform(-5, 20, (2, 3, 4, 3)).astype(np.float32)
    kp[..., 2] = 0
    assert not rasterize(kp, size=(8, 9), limbs=[(0, 1)], with_limbs=True).any()
    assert rasterize(np.zeros((0, 3, 4, 3)), size=(8, 9)).shape == (4, 3, 8, 9)


def test_persons_combine_by_max():
    kp = np.array([[[[3, 3, 0.5]]], [[[3, 3, 0.9]]], [[[4, 3, 0.7]]]], np.float32)
    maps = rasterize(kp, size=(8, 8))
    assert maps[0, 0, 3, 3] == np.float32(0.9) and maps[0, 0, 3, 4] == np.float32(0.7)


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=lambda l: l.name)
def test_limb_flip_index_is_an_involution(layout):
    perm = limb_flip_index(layout.limbs, layout.flip_index)
    assert sorted(perm) == list(range(len(layout.limbs)))
    assert (perm[perm] == np.arange(len(layout.limbs))).all()


def test_flip_keypoints_twice_is_the_identity():
    kp = np.random.default_rng(1).uniform(0, 50, (2, 4, COCO17.num_joints, 3)).astype(np.float32)
    twice = flip_keypoints(flip_keypoints(kp, 56, COCO17.flip_index), 56, COCO17.flip_index)
    np.testing.assert_allclose(twice, kp, rtol=0, atol=1e-5)


GOOD = np.zeros((1, 2, 3, 3), np.float32)


@pytest.mark.parametrize("kwargs, message", [
    (dict(keypoints=np.zeros((2, 3, 3))), "shape"),
    (dict(keypoints=np.zeros((1, 2, 3, 2))), "shape"),
    (dict(keypoints=np.zeros((1, 2, 3, 3), complex)), "real"),
    (dict(size=(0, 4)), "size"),
    (dict(size=(4,)), "size"),
    (dict(size=(4.5, 4)), "size"),
    (dict(sigma=0.0), "sigma"),
    (dict(sigma=float("nan")), "sigma"),
    (dict(sigma=1e-200), "sigma"),
    (dict(scaling=float("inf")), "scaling"),
    (dict(with_joints=False), "nothing"),
    (dict(with_limbs=True), "limbs"),
    (dict(with_limbs=True, limbs=[(0, 3)]), "outside"),
    (dict(with_limbs=True, limbs=[(0, 1, 2)]), "pairs"),
    (dict(dtype=np.float64), "dtype"),
    (dict(out=np.zeros((3, 2, 4, 5), np.float32)), "shape"),
    (dict(out=np.zeros((3, 2, 4, 4), np.float16)), "float32"),
    (dict(out=np.zeros((3, 2, 4, 8), np.float32)[..., ::2]), "contiguous"),
    (dict(flip=True), "flip_index"),
    (dict(flip=True, flip_index=[0, 0, 1]), "permutation"),
    (dict(flip=True, flip_index=[0, 1]), "flip_index"),
    (dict(flip=True, flip_index=[1, 0, 2], with_limbs=True, limbs=[(0, 2)]), "not in the limb list"),
])
def test_bad_arguments_raise_value_errors(kwargs, message):
    kwargs = {"keypoints": GOOD, "size": (4, 4), **kwargs}
    with pytest.raises(ValueError, match=message):
        rasterize(kwargs.pop("keypoints"), **kwargs)
