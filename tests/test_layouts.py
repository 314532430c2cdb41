import numpy as np
import pytest

from miga.layouts import COCO17, IMIGUE22, KINECT25, LAYOUTS, OPENPOSE25_HANDS10, convert, get_layout


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=lambda l: l.name)
def test_flip_index_is_an_involution_that_swaps_sides(layout):
    perm = layout.flip_index
    assert sorted(perm) == list(range(layout.num_joints))
    assert (perm[perm] == np.arange(layout.num_joints)).all()
    for i, j in enumerate(perm):
        a, b = layout.joints[i], layout.joints[j]
        if i != j:
            assert {a[0], b[0]} == {"L", "R"} and a[1:] == b[1:]


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=lambda l: l.name)
def test_limbs_reference_valid_joints(layout):
    assert layout.limbs
    for a, b in layout.limbs:
        assert 0 <= a < layout.num_joints and 0 <= b < layout.num_joints and a != b


def test_layout_sizes_match_the_releases():
    assert OPENPOSE25_HANDS10.num_joints == 35
    assert IMIGUE22.num_joints == 22
    assert KINECT25.num_joints == 25
    assert COCO17.num_joints == 17


def test_convert_keeps_same_points_and_zeroes_the_rest():
    rng = np.random.default_rng(0)
    kp = rng.random((1, 4, 35, 3)).astype(np.float32)
    coco = convert(kp, "openpose25_hands10", "coco17")
    assert coco.shape == (1, 4, 17, 3)
    np.testing.assert_array_equal(coco[..., COCO17.index("LWrist"), :], kp[..., OPENPOSE25_HANDS10.index("LWrist"), :])
    kinect = rng.random((1, 4, 25, 3)).astype(np.float32)
    coco = convert(kinect, "kinect25", "coco17")
    assert (coco[..., COCO17.index("LEye"), 2] == 0).all()


def test_convert_mirror_swaps_left_and_right():
    kp = np.zeros((1, 1, 25, 3), np.float32)
    kp[0, 0, KINECT25.index("LShoulder")] = (10, 5, 1)
    out = convert(kp, "kinect25", "coco17", mirror=True)
    assert tuple(out[0, 0, COCO17.index("RShoulder")]) == (10, 5, 1)


def test_unknown_layout_and_conversion_are_clear_errors():
    with pytest.raises(ValueError, match="unknown joint layout"):
        get_layout("nope")
    with pytest.raises(ValueError, match="no conversion"):
        convert(np.zeros((1, 1, 17, 3)), "coco17", "kinect25")


def test_coco17_to_openpose_rebuilds_neck_and_midhip():
    kp = np.zeros((1, 1, 17, 3), np.float32)
    kp[0, 0, COCO17.index("LShoulder")] = (10, 20, 0.8)
    kp[0, 0, COCO17.index("RShoulder")] = (30, 20, 0.6)
    out = convert(kp, "coco17", "openpose25_hands10")
    np.testing.assert_allclose(out[0, 0, OPENPOSE25_HANDS10.index("Neck")], (20, 20, 0.6))
    assert out[0, 0, OPENPOSE25_HANDS10.index("MidHip"), 2] == 0  # hips missing -> no MidHip
    back = convert(out, "openpose25_hands10", "coco17")
    np.testing.assert_array_equal(back, kp)


def test_mirrored_pose_result_swaps_sides():
    from miga.pose import PoseResult, mirrored

    kp = np.zeros((1, 1, 25, 3), np.float32)
    kp[0, 0, KINECT25.index("LHand")] = (1, 2, 1)
    result = mirrored(PoseResult("kinect25", {"s": (0, kp)}, {"backend": "provided"}))
    out = result.keypoints["s"][1]
    assert tuple(out[0, 0, KINECT25.index("RHand")]) == (1, 2, 1)
    assert result.source == {"backend": "provided", "mirrored": True}  # the swap is recorded with the source


def test_video_pose_to_kinect25_fills_every_kinect_joint():
    """`miga online VIDEO` feeds MediaPipe poses to a detector trained on Kinect skeletons."""
    src = get_layout("openpose25_hands10")
    kp = np.zeros((3, src.num_joints, 3), np.float32)
    kp[..., 0] = np.arange(src.num_joints) * 10.0
    kp[..., 1] = 5.0
    kp[..., 2] = 0.9
    out = convert(kp, "openpose25_hands10", "kinect25")
    kinect = get_layout("kinect25")
    assert out.shape == (3, kinect.num_joints, 3) and (out[..., 2] > 0).all()  # no Kinect joint left empty
    x = lambda layout, name, arr: arr[0, layout.index(name), 0]  # noqa: E731
    assert x(kinect, "SpineShoulder", out) == x(src, "Neck", kp)
    assert x(kinect, "SpineMid", out) == (x(src, "Neck", kp) + x(src, "MidHip", kp)) / 2
    assert x(kinect, "LHand", out) == (x(src, "LWrist", kp) + x(src, "LMiddleTip", kp)) / 2
    kp[:, src.index("LMiddleTip"), 2] = 0  # a missing end makes the midpoint missing, not half-way to 0
    assert convert(kp, "openpose25_hands10", "kinect25")[0, kinect.index("LHand"), 2] == 0


def test_openpose137_is_openposes_json_order():
    """BODY_25 0-24, face 25-94, left hand 95-115, right hand 116-136 (miga.layouts docstring: the evidence)."""
    layout = get_layout("openpose137")
    assert layout.joints[:25] == OPENPOSE25_HANDS10.joints[:25]
    assert [layout.index(n) for n in ("RJaw0", "RMouth0", "LPupil", "LHandRoot", "LThumbTip", "LPinkyTip",
                                      "RHandRoot", "RThumbTip", "RPinkyTip")] == [25, 73, 94, 95, 99, 115, 116, 120, 136]
    face = lambda k: layout.joints[25 + k]  # noqa: E731  (iBUG point k)
    flip = layout.flip_index
    for a, b in ((0, 16), (7, 9), (17, 26), (21, 22), (31, 35), (36, 45), (39, 42), (40, 47), (48, 54), (55, 59),
                 (60, 64), (65, 67), (68, 69)):
        assert flip[25 + a] == 25 + b and flip[25 + b] == 25 + a, (face(a), face(b))
    for k in (8, 27, 30, 33, 51, 57, 62, 66):  # the face's midline
        assert flip[25 + k] == 25 + k, face(k)
    assert flip[95] == 116 and flip[136] == 115


def test_openpose137_converts_by_name():
    kp = np.zeros((2, 137, 3), np.float32)
    kp[..., 0] = np.arange(137)
    kp[..., 2] = 1
    light = convert(kp, "openpose137", "openpose25_hands10")
    assert light[0, 25:35, 0].tolist() == [99, 103, 107, 111, 115, 120, 124, 128, 132, 136]
    assert light[0, :25, 0].tolist() == list(range(25))
    hands42 = convert(kp, "openpose137", "openpose25_hands42")
    assert hands42[0, 25:, 0].tolist() == list(range(95, 137))
    imigue = convert(kp, "openpose137", "imigue22")
    assert imigue[0, 12:, 0].tolist() == [99, 103, 107, 111, 115, 120, 124, 128, 132, 136]
