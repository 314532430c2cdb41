import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from miga.heatmap import rasterize
from miga.layouts import COCO17, IMIGUE22
from miga.track1.transforms import (
    PoseClipConfig, PoseClipPipeline, compact, crop_to_box, flip, person_box, random_resized_crop, resize,
    short_edge_size, uniform_sample_indices,
)

SETTINGS = settings(max_examples=60, deadline=None)


def random_pose(seed: int, persons: int = 2, frames: int = 20, joints: int = COCO17.num_joints) -> np.ndarray:
    """Keypoints in a 1280 x 720 frame; about a fifth of the joints missing (score 0, coordinates junk)."""
    rng = np.random.default_rng(seed)
    kp = np.empty((persons, frames, joints, 3), np.float32)
    kp[..., 0] = rng.uniform(200, 1000, kp.shape[:3])
    kp[..., 1] = rng.uniform(50, 700, kp.shape[:3])
    kp[..., 2] = rng.uniform(0.1, 1, kp.shape[:3]) * (rng.random(kp.shape[:3]) > 0.2)
    kp[kp[..., 2] == 0, :2] = rng.uniform(-1e4, 1e4, (int((kp[..., 2] == 0).sum()), 2))
    return kp


# --- sampling ---------------------------------------------------------------------------------

@SETTINGS
@given(st.integers(1, 200), st.integers(1, 48), st.integers(1, 5), st.integers(0, 2**32 - 1), st.booleans())
def test_sampled_indices_are_in_range_and_ordered(num_frames, clip_len, num_clips, seed, test_mode):
    inds = uniform_sample_indices(num_frames, clip_len, num_clips, rng=np.random.default_rng(seed), test_mode=test_mode)
    assert inds.shape == (num_clips, clip_len)
    assert inds.min() >= 0 and inds.max() < num_frames
    if num_frames >= clip_len:  # distinct frames in order
        assert (np.diff(inds, axis=1) > 0).all()
    else:  # consecutive frames, looping
        assert ((np.diff(inds, axis=1) - 1) % num_frames == 0).all()
    if num_frames >= 2 * clip_len:  # one frame from each bin
        bins = np.arange(clip_len + 1) * num_frames // clip_len
        assert ((inds >= bins[:-1]) & (inds < bins[1:])).all()


@given(st.integers(1, 200), st.integers(1, 48), st.integers(1, 5))
@settings(max_examples=30, deadline=None)
def test_test_mode_sampling_is_deterministic(num_frames, clip_len, num_clips):
    first = uniform_sample_indices(num_frames, clip_len, num_clips, test_mode=True)
    again = uniform_sample_indices(num_frames, clip_len, num_clips, rng=np.random.default_rng(7), test_mode=True)
    np.testing.assert_array_equal(first, again)


def test_sampling_covers_the_whole_clip_and_needs_an_rng_to_train():
    inds = uniform_sample_indices(480, 48, rng=np.random.default_rng(0))[0]
    assert inds[0] < 10 and inds[-1] >= 470
    np.testing.assert_array_equal(uniform_sample_indices(48, 48, rng=np.random.default_rng(0))[0], np.arange(48))
    with pytest.raises(ValueError, match="rng"):
        uniform_sample_indices(100, 8)
    with pytest.raises(ValueError, match="frames"):
        uniform_sample_indices(0, 8, test_mode=True)


# --- geometry ---------------------------------------------------------------------------------

def valid(kp: np.ndarray) -> np.ndarray:
    return kp[..., 2] >= 1e-3


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 1.0), st.sampled_from([None, 1.0, 0.5, 2.0]))
def test_person_crop_keeps_every_valid_joint_inside(seed, padding, hw_ratio):
    kp = random_pose(seed)
    box = person_box(kp)
    cropped, (h, w) = crop_to_box(kp, box, padding=padding, hw_ratio=hw_ratio)
    inside = cropped[valid(kp)]
    assert (inside[:, 0] >= 0).all() and (inside[:, 0] <= w).all()
    assert (inside[:, 1] >= 0).all() and (inside[:, 1] <= h).all()
    x0, y0, x1, y1 = box
    grown_w, grown_h = (x1 - x0) * (1 + padding), (y1 - y0) * (1 + padding)
    if hw_ratio is None:  # floor/ceil of the corners add up to 2 px
        assert grown_w <= w <= grown_w + 2 and grown_h <= h <= grown_h + 2
    else:
        assert w >= grown_w and h >= grown_h and abs(h - hw_ratio * w) <= 2 + 2 * hw_ratio
    np.testing.assert_array_equal(cropped[..., 2], kp[..., 2])


def test_person_box_ignores_missing_joints():
    kp = random_pose(0)
    x0, y0, x1, y1 = person_box(kp)
    assert 200 <= x0 <= x1 <= 1000 and 50 <= y0 <= y1 <= 700
    kp[..., 2] = 0
    assert person_box(kp) is None
    cropped, size = compact(kp, min_side=10)
    assert size == (10, 10) and not rasterize(cropped, size=size).any()


def test_compact_makes_a_tiny_person_at_least_min_side():
    kp = np.array([[[[100, 100, 1.0], [101, 102, 1.0]]]], np.float32)
    _, (h, w) = compact(kp, min_side=10)
    assert 10 <= h <= 12 and 10 <= w <= 12


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(8, 500), st.integers(8, 500))
def test_resize_round_trip(seed, h, w):
    kp = random_pose(seed)
    back = resize(resize(kp, (720, 1280), (h, w)), (h, w), (720, 1280))
    np.testing.assert_allclose(back[..., :2], kp[..., :2], rtol=1e-5, atol=1e-2)
    np.testing.assert_array_equal(back[..., 2], kp[..., 2])


def test_short_edge_size_keeps_the_aspect_ratio():
    assert short_edge_size((100, 100), 64) == (64, 64)
    assert short_edge_size((720, 1280), 64) == (64, 114)
    assert short_edge_size((300, 150), 64) == (128, 64)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(4, 100), st.integers(4, 100))
def test_random_resized_crop_fits_the_frame_and_shifts_by_its_corner(seed, h, w):
    kp = random_pose(seed)
    area_range = (0.56, 1.0)
    cropped, (ch, cw) = random_resized_crop(kp, (h, w), area_range=area_range, rng=np.random.default_rng(seed))
    assert 0 < ch <= h and 0 < cw <= w
    shift = kp[..., :2] - cropped[..., :2]
    assert np.allclose(shift, shift.reshape(-1, 2)[0], atol=1e-2)  # one translation for all joints
    dx, dy = shift.reshape(-1, 2)[0]
    assert -1e-3 <= dx <= w - cw + 1e-3 and -1e-3 <= dy <= h - ch + 1e-3
    again, size = random_resized_crop(kp, (h, w), area_range=area_range, rng=np.random.default_rng(seed))
    np.testing.assert_array_equal(again, cropped)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 100))
def test_flip_twice_is_the_identity(seed, width):
    kp = random_pose(seed, joints=IMIGUE22.num_joints)
    once = flip(kp, width, IMIGUE22.flip_index)
    np.testing.assert_array_equal(once[..., 2], kp[..., IMIGUE22.flip_index, 2])
    np.testing.assert_allclose(flip(once, width, IMIGUE22.flip_index), kp, rtol=1e-6, atol=1e-3)


# --- the clip pipeline ------------------------------------------------------------------------

def config(**kw) -> PoseClipConfig:
    base = dict(clip_len=8, resize_to=36, crop_size=32, num_test_clips=3, limbs=COCO17.limbs,
                flip_index=COCO17.flip_index)
    return PoseClipConfig(**{**base, **kw})


@pytest.mark.parametrize("with_limbs, channels", [(False, 17), (True, 16)])
def test_pipeline_shapes(with_limbs, channels):
    pipeline = PoseClipPipeline(config(with_limbs=with_limbs))
    kp = random_pose(3)
    train = pipeline(kp, train=True, rng=np.random.default_rng(0))
    assert train.shape == (1, channels, 8, 32, 32) and train.dtype == np.float32
    test = pipeline(kp, train=False)
    assert test.shape == (6, channels, 8, 32, 32)
    assert 0 < test.max() <= 1 and test.min() >= 0
    assert pipeline.config.num_channels(COCO17.num_joints) == channels


def test_pipeline_both_streams_and_short_clips():
    pipeline = PoseClipPipeline(config(with_joints=True, with_limbs=True, num_test_clips=2, flip_test=False))
    kp = random_pose(4, frames=3)  # fewer frames than clip_len: loops
    assert pipeline(kp, train=False).shape == (2, 33, 8, 32, 32)
    assert pipeline(kp, train=True, rng=np.random.default_rng(1)).shape == (1, 33, 8, 32, 32)


def test_pipeline_is_deterministic_given_the_rng():
    pipeline, kp = PoseClipPipeline(config()), random_pose(5)
    np.testing.assert_array_equal(pipeline(kp, train=False), pipeline(kp, train=False))
    a = pipeline(kp, train=True, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(a, pipeline(kp, train=True, rng=np.random.default_rng(9)))
    assert not np.array_equal(a, pipeline(kp, train=True, rng=np.random.default_rng(10)))


def test_training_with_the_whole_crop_matches_the_test_views():
    """No random crop, all frames: training (flip off / on) must reproduce test view 0 / its flip."""
    kw = dict(area_range=(1.0, 1.0), aspect_ratio_range=(1.0, 1.0), num_test_clips=1, resize_to=64, crop_size=32)
    kp = random_pose(6, frames=8)
    test = PoseClipPipeline(config(**kw))(kp, train=False)
    for flip_prob, view in ((0.0, 0), (1.0, 1)):
        train = PoseClipPipeline(config(flip_prob=flip_prob, **kw))(kp, train=True, rng=np.random.default_rng(0))
        np.testing.assert_allclose(train[0], test[view], atol=1e-4)


def test_missing_joints_draw_nothing_through_the_pipeline():
    kp = random_pose(7)
    kp[:, :, 3, 2] = 0
    out = PoseClipPipeline(config())(kp, train=True, rng=np.random.default_rng(0))
    flipped_twin = COCO17.flip_index[3]
    assert out[0, 3].any() or out[0, flipped_twin].any()
    assert not (out[0, 3].any() and out[0, flipped_twin].any())
    kp[..., 2] = 0
    assert not PoseClipPipeline(config())(kp, train=False).any()


@pytest.mark.parametrize("kwargs, message", [
    (dict(clip_len=0), "positive"),
    (dict(with_joints=False), "no channels"),
    (dict(with_limbs=True, limbs=()), "limbs"),
    (dict(flip_index=None), "flip_index"),
    (dict(flip_prob=1.5), "flip_prob"),
    (dict(with_limbs=True, limbs=((0, 1), (5, 7))), "not in the limb list"),
])
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        config(**kwargs)


def test_config_accepts_layout_arrays_and_training_needs_an_rng():
    cfg = config(flip_index=np.asarray(COCO17.flip_index))
    assert isinstance(cfg.flip_index, tuple) and hash(cfg)
    with pytest.raises(ValueError, match="rng"):
        PoseClipPipeline(cfg)(random_pose(0), train=True)
