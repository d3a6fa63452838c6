"""Crop geometry and heatmap decoding (posetrack.transforms): numpy only."""

import numpy as np
import pytest

from posetrack import transforms as T
from posetrack.joints import COCO17

# ---------------------------------------------------------------------------------------------
# box -> centre / scale


@pytest.mark.parametrize("box, input_hw, padding, center, scale", [
    # box with the input's aspect ratio: only the 1.25 enlargement
    ((0, 0, 192, 256), (256, 192), 1.25, (96, 128), (1.2, 1.6)),
    # too wide for 3:4: the height grows to w / 0.75
    ((10, 20, 110, 40), (256, 192), 1.25, (60, 30), (0.625, 0.625 / 0.75)),
    # too tall: the width grows to 0.75 h
    ((0, 0, 30, 200), (256, 192), 1.25, (15, 100), (0.9375, 1.25)),
    # 384x288 has the same aspect ratio: same result as 256x192
    ((0, 0, 30, 200), (384, 288), 1.25, (15, 100), (0.9375, 1.25)),
    # no enlargement
    ((0, 0, 192, 256), (256, 192), 1.0, (96, 128), (0.96, 1.28)),
    # square input: a tall box becomes square
    ((0, 0, 100, 200), (256, 256), 1.0, (50, 100), (1.0, 1.0)),
    # degenerate (zero-size) box: widened to 1 px, then padded to 3:4; stays invertible
    ((5, 5, 5, 5), (256, 192), 1.0, (5, 5), (1 / 200, 1 / 150)),
])
def test_box_to_center_scale(box, input_hw, padding, center, scale):
    centers, scales = T.box_to_center_scale(np.array([box], np.float32), input_hw, padding)
    np.testing.assert_allclose(centers, [center], atol=1e-6)
    np.testing.assert_allclose(scales, [scale], rtol=1e-6)


def test_box_to_center_scale_empty_and_many():
    centers, scales = T.box_to_center_scale(np.zeros((0, 4)), (256, 192))
    assert centers.shape == (0, 2) and scales.shape == (0, 2)
    boxes = np.array([[0, 0, 192, 256], [0, 0, 30, 200]], np.float32)
    centers, scales = T.box_to_center_scale(boxes, (256, 192))
    np.testing.assert_allclose(scales, [[1.2, 1.6], [0.9375, 1.25]], rtol=1e-6)
    # every scale has the input's aspect ratio
    np.testing.assert_allclose(scales[:, 0] / scales[:, 1], 0.75)


# ---------------------------------------------------------------------------------------------
# affine


def _original_affine(center, scale, rot_deg, output_wh, inverse=False):
    """An independent reference: the three-point construction solved with OpenCV."""
    cv2 = pytest.importorskip("cv2")
    src_w = scale[0] * 200
    out_w, out_h = output_wh
    r = np.deg2rad(rot_deg)
    src_dir = np.array([-(-src_w * 0.5) * np.sin(r), -src_w * 0.5 * np.cos(r)])
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0], src[1] = center, center + src_dir
    dst[0] = (out_w * 0.5, out_h * 0.5)
    dst[1] = dst[0] + (0, -out_w * 0.5)
    for pts in (src, dst):
        d = pts[0] - pts[1]
        pts[2] = pts[1] + (-d[1], d[0])
    return cv2.getAffineTransform(dst, src) if inverse else cv2.getAffineTransform(src, dst)


@pytest.mark.parametrize("rot", [0.0, 30.0, -45.0])
@pytest.mark.parametrize("inverse", [False, True])
def test_affine_matches_opencv_three_point_construction(rot, inverse):
    center, scale = np.array([300.5, 210.25]), np.array([1.3, 1.3 / 0.75])
    ours = T.affine_matrices(center[None], scale[None], (192, 256), rot, inverse=inverse)[0]
    np.testing.assert_allclose(ours, _original_affine(center, scale, rot, (192, 256), inverse),
                               atol=1e-3)


@pytest.mark.parametrize("point, expected", [
    ((96, 128), (96, 128)),      # box centre -> crop centre (w/2, h/2)
    ((0, 0), (19.2, 25.6)),      # box corner -> inside the crop by the 1.25 padding: 0.8 zoom
    ((192, 256), (172.8, 230.4)),
    ((-24, -32), (0, 0)),        # corner of the padded box -> crop corner
])
def test_affine_maps_box_to_crop(point, expected):
    centers, scales = T.box_to_center_scale(np.array([[0, 0, 192, 256]]), (256, 192))
    m = T.affine_matrices(centers, scales, (192, 256))
    np.testing.assert_allclose(T.apply_affine(np.array([[point]]), m)[0, 0], expected, atol=1e-9)


def test_affine_round_trip():
    rng = np.random.default_rng(0)
    centers = rng.uniform(0, 500, (5, 2))
    scales = rng.uniform(0.2, 3, (5, 1)) * [0.75, 1]
    rot = rng.uniform(-90, 90, 5)
    forward = T.affine_matrices(centers, scales, (48, 64), rot)
    back = T.affine_matrices(centers, scales, (48, 64), rot, inverse=True)
    points = rng.uniform(-100, 600, (5, 7, 2))
    np.testing.assert_allclose(T.apply_affine(T.apply_affine(points, forward), back), points,
                               atol=1e-8)
    assert T.affine_matrices(np.zeros((0, 2)), np.zeros((0, 2)), (48, 64)).shape == (0, 2, 3)


def test_heatmap_to_image_is_crop_inverse_at_quarter_resolution():
    # heatmap pixel x is crop pixel 4x (the original's convention)
    centers, scales = T.box_to_center_scale(np.array([[40, 30, 140, 200.]]), (256, 192))
    coords = np.array([[[0, 0], [24, 32], [10.25, 47.75]]])
    crop_back = T.affine_matrices(centers, scales, (192, 256), inverse=True)
    np.testing.assert_allclose(T.heatmap_to_image(coords, centers, scales, (48, 64)),
                               T.apply_affine(coords * 4, crop_back), atol=1e-9)
    # the heatmap centre is the box centre
    np.testing.assert_allclose(T.heatmap_to_image(np.array([[[24, 32]]]), centers, scales, (48, 64)),
                               [[[90, 115]]], atol=1e-9)


# ---------------------------------------------------------------------------------------------
# decoding


def _peak(h, w, x, y, left=0.0, right=0.0, up=0.0, down=0.0, value=1.0, background=0.0):
    hm = np.full((h, w), background, np.float32)
    hm[y, x] = value
    if x > 0:
        hm[y, x - 1] = left
    if x < w - 1:
        hm[y, x + 1] = right
    if y > 0:
        hm[y - 1, x] = up
    if y < h - 1:
        hm[y + 1, x] = down
    return hm


@pytest.mark.parametrize("hm, xy, score", [
    # interior peak, right and lower neighbours higher: +0.25 in x and y
    (_peak(16, 12, 5, 7, right=0.5, down=0.4), (5.25, 7.25), 1.0),
    # left and upper neighbours higher: -0.25
    (_peak(16, 12, 5, 7, left=0.5, up=0.4), (4.75, 6.75), 1.0),
    # equal neighbours: no shift
    (_peak(16, 12, 5, 7, left=0.3, right=0.3, up=0.2, down=0.2), (5, 7), 1.0),
    # x = 1 is too close to the edge in the original's test (1 < x): no shift at all
    (_peak(16, 12, 1, 7, right=0.5, down=0.4), (1, 7), 1.0),
    # x = W - 2 still shifts; so does y = 2
    (_peak(16, 12, 10, 2, right=0.5, up=0.4), (10.25, 1.75), 1.0),
    # x = W - 1 (last column): no shift
    (_peak(16, 12, 11, 7, left=0.5, down=0.4), (11, 7), 1.0),
    # y = 1 and y = H - 1: no shift
    (_peak(16, 12, 5, 1, right=0.5, down=0.4), (5, 1), 1.0),
    (_peak(16, 12, 5, 15, right=0.5, up=0.4), (5, 15), 1.0),
    # corner (0, 0)
    (_peak(16, 12, 0, 0, right=0.5, down=0.5), (0, 0), 1.0),
    # negative maximum: coordinates stay at the argmax, the score says it is unreliable
    (_peak(16, 12, 6, 8, value=-0.1, left=-0.5, right=-0.3, up=-0.5, down=-0.5, background=-1),
     (6.25, 8), -0.1),
])
def test_decode_heatmaps_table(hm, xy, score):
    coords, scores = T.decode_heatmaps(hm[None, None])
    np.testing.assert_allclose(coords[0, 0], xy)
    assert scores[0, 0] == pytest.approx(score)


def test_decode_ties_take_the_first_maximum_row_major():
    hm = np.zeros((1, 1, 16, 12), np.float32)
    hm[0, 0, 9, 3] = hm[0, 0, 4, 8] = 1.0
    coords, _ = T.decode_heatmaps(hm)
    np.testing.assert_allclose(coords[0, 0], (8, 4))


def test_decode_batches_and_joints_independently():
    rng = np.random.default_rng(1)
    hm = rng.random((3, 5, 16, 12)).astype(np.float32)
    coords, scores = T.decode_heatmaps(hm)
    assert coords.shape == (3, 5, 2) and scores.shape == (3, 5)
    for n in range(3):
        for j in range(5):
            c, s = T.decode_heatmaps(hm[n:n + 1, j:j + 1])
            np.testing.assert_array_equal(coords[n, j], c[0, 0])
            assert scores[n, j] == s[0, 0] == hm[n, j].max()
    assert T.decode_heatmaps(np.zeros((0, 17, 16, 12)))[0].shape == (0, 17, 2)


# ---------------------------------------------------------------------------------------------
# flip test


def test_flip_back_mirrors_swaps_and_shifts():
    perm = COCO17.flip_permutation
    left_wrist, right_wrist = COCO17.index("left_wrist"), COCO17.index("right_wrist")
    flipped = np.zeros((1, 17, 8, 6), np.float32)
    flipped[0, left_wrist, 3, 1] = 1.0  # in the mirrored crop, the "left wrist" at column 1
    back = T.flip_heatmaps_back(flipped, perm, shift=False)
    assert back[0, right_wrist, 3, 6 - 1 - 1] == 1.0 and back.sum() == 1.0
    shifted = T.flip_heatmaps_back(flipped, perm, shift=True)
    assert shifted[0, right_wrist, 3, 6 - 1 - 1 + 1] == 1.0 and shifted.sum() == 1.0
    # the shift repeats column 0 (the original's in-place copy keeps it)
    flipped = np.zeros((1, 17, 8, 6), np.float32)
    flipped[0, 0, 2, 5] = 1.0  # nose, last column -> column 0 after mirroring
    shifted = T.flip_heatmaps_back(flipped, perm, shift=True)
    assert shifted[0, 0, 2, 0] == shifted[0, 0, 2, 1] == 1.0


def test_merge_flip_of_a_symmetric_map_is_the_map():
    rng = np.random.default_rng(2)
    hm = rng.random((2, 17, 8, 6)).astype(np.float32)
    mirrored = hm[:, COCO17.flip_permutation, :, ::-1]
    np.testing.assert_allclose(T.merge_flip_heatmaps(hm, mirrored, COCO17.flip_permutation,
                                                     shift=False), hm, atol=1e-7)
    merged = T.merge_flip_heatmaps(hm, mirrored, COCO17.flip_permutation, shift=True)
    np.testing.assert_allclose(merged[..., 1:], (hm[..., 1:] + hm[..., :-1]) / 2, atol=1e-7)
