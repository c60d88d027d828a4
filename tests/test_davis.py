"""DAVIS J&F against hand-computed answers, palette mask I/O and DAVIS-layout discovery."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pe_dense.data.images import read_rgb
from pe_dense.data.video import (
    davis_palette,
    find_sequences,
    read_mask,
    read_split,
    write_mask,
)
from pe_dense.evaluation.davis import (
    SequenceScorer,
    _dilate,
    boundary_f_measure,
    boundary_map,
    evaluate_sequence,
    region_similarity,
    statistics,
    summarize,
    write_results_csv,
)
from tests.conftest import data_dir


def _square(y0, x0, size=10, shape=(40, 40)):
    m = np.zeros(shape, bool)
    m[y0:y0 + size, x0:x0 + size] = True
    return m


def test_perfect_and_empty_predictions():
    gt = _square(10, 10)
    assert region_similarity(gt, gt) == 1.0 and boundary_f_measure(gt, gt) == 1.0
    empty = np.zeros_like(gt)
    assert region_similarity(gt, empty) == 0.0 and boundary_f_measure(gt, empty) == 0.0
    # both empty: J = 1 (empty union), F = 1 (P = R = 1)
    assert region_similarity(empty, empty) == 1.0 and boundary_f_measure(empty, empty) == 1.0
    # prediction where the ground truth is empty: P = 0, R = 1 -> F = 0
    assert boundary_f_measure(empty, gt) == 0.0


def test_boundary_map_of_a_square():
    # seg2bmap marks pixels differing from their E, S or SE neighbour: for a 10x10 square at
    # rows/cols 10..19 that is column 9 (rows 9..19), row 9 (cols 9..19), column 19 (rows
    # 10..19) and row 19 (cols 10..19): 11 + 10 + 10 + 9 = 40 pixels.
    b = boundary_map(_square(10, 10))
    expected = np.zeros((40, 40), bool)
    expected[9:20, 9] = expected[9, 9:20] = expected[10:20, 19] = expected[19, 10:20] = True
    assert (b == expected).all() and b.sum() == 40


def test_shifted_square_known_values():
    # 40x40 frame: tolerance ceil(0.008 * hypot(40, 40)) = 1 pixel (a 4-neighbour cross).
    gt = _square(10, 10)
    one = _square(10, 11)  # shifted 1 column: J = 90 / 110, every boundary pixel within 1 px
    assert region_similarity(gt, one) == pytest.approx(9 / 11)
    assert boundary_f_measure(gt, one) == 1.0
    five = _square(10, 15)  # shifted 5 columns: J = 50 / 150; 16 of 40 boundary pixels match
    assert region_similarity(gt, five) == pytest.approx(1 / 3)
    assert boundary_f_measure(gt, five) == pytest.approx(0.4)


def test_tolerance_scales_with_the_diagonal():
    # 480x854 (DAVIS 480p): tolerance ceil(0.008 * 979.6) = 8 px, so an 8-px shift is a perfect
    # F while a 9-px shift leaves only the horizontal edges matched.
    gt = _square(100, 100, 200, (480, 854))
    assert boundary_f_measure(gt, _square(100, 108, 200, (480, 854))) == 1.0
    assert boundary_f_measure(gt, _square(100, 109, 200, (480, 854))) < 1.0


@pytest.mark.parametrize("radius", [1, 3, 8])
def test_disk_dilation_matches_brute_force(radius):
    rng = np.random.default_rng(radius)
    for shape in [(1, 1), (5, 40), (37, 23)]:
        mask = rng.random(shape) < 0.05
        ref = np.zeros(shape, bool)
        for y, x in zip(*np.nonzero(mask), strict=True):
            for dy in range(-radius, radius + 1):
                for dx in range(-radius, radius + 1):
                    yy, xx = y + dy, x + dx
                    if dy * dy + dx * dx <= radius * radius and 0 <= yy < shape[0] \
                            and 0 <= xx < shape[1]:
                        ref[yy, xx] = True
        assert (_dilate(mask, radius) == ref).all()


def test_statistics_mean_recall_decay():
    values = [1, 1, 1, 1, 0, 0, 0, 0]
    # bins edges round(linspace(1, 8, 5)) - 1 = [0, 2, 4, 5, 7]: first bin v[0:3], last v[5:8]
    assert statistics(values) == (0.5, 0.5, 1.0)
    mean, recall, decay = statistics([0.2, 0.6, np.nan, 0.8])
    assert mean == pytest.approx(1.6 / 3) and recall == pytest.approx(0.5)


def test_sequence_first_and_last_frames_excluded_and_objects_averaged():
    gt = np.zeros((5, 40, 40), np.uint8)
    gt[:, 5:15, 5:15] = 1
    gt[:, 25:35, 25:35] = 2
    gt[2, 0, 0] = 255  # void counts as background
    pred = gt.copy()
    pred[pred == 255] = 0
    pred[0] = pred[4] = 0  # wrong first/last frames do not count
    pred[1:4][pred[1:4] == 2] = 0  # object 2 lost on every evaluated frame
    scores = evaluate_sequence("toy", list(gt), list(pred))
    assert [(s.object_id, s.j_mean, s.f_mean) for s in scores] == [(1, 1.0, 1.0), (2, 0.0, 0.0)]
    g = summarize(scores)
    assert g["J&F-Mean"] == 0.5 and g["J-Mean"] == 0.5 and g["objects"] == 2
    assert g["J-Recall"] == 0.5 and g["J-Decay"] == 0.0


def test_prediction_with_unknown_object_is_refused():
    gt = np.zeros((3, 8, 8), np.uint8)
    gt[:, :4] = 1
    pred = gt.copy()
    pred[1, 0, 0] = 3
    with pytest.raises(ValueError, match="holds id 3"):
        evaluate_sequence("toy", list(gt), list(pred))
    with pytest.raises(ValueError, match="at least 3 frames"):
        SequenceScorer("toy", 2, gt[0])


def test_results_csv(tmp_path):
    gt = np.zeros((4, 16, 16), np.uint8)
    gt[:, 4:12, 4:12] = 1
    path = write_results_csv(tmp_path / "results.csv", evaluate_sequence("a", list(gt), list(gt)))
    lines = path.read_text().splitlines()
    assert lines[0].startswith("Sequence,Object,J&F-Mean") and lines[1].startswith("a_1,1,1.0")


def test_palette_round_trip(tmp_path):
    labels = np.random.default_rng(0).integers(0, 6, (30, 50)).astype(np.uint8)
    path = write_mask(tmp_path / "sub" / "00000.png", labels)
    with Image.open(path) as im:
        assert im.mode == "P" and im.getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]
        assert im.getpalette() == davis_palette()[: len(im.getpalette())]
    assert (read_mask(path) == labels).all()
    assert not list(tmp_path.glob("sub/.*"))  # no temporary file left behind


def test_binary_and_bad_masks(tmp_path):
    binary = np.zeros((8, 8), np.uint8)
    binary[2:5, 2:5] = 255
    Image.fromarray(binary).save(tmp_path / "binary.png")
    assert read_mask(tmp_path / "binary.png").max() == 1
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="not a palette PNG"):
        read_mask(tmp_path / "rgb.png")
    Image.fromarray(binary // 255 * 3).save(tmp_path / "grey.png")
    with pytest.raises(ValueError, match="palette PNG"):
        read_mask(tmp_path / "grey.png")


def _layout(root, frames=(0, 1, 2), masks=(0,)):
    for i in frames:
        (root / "JPEGImages/480p/seq").mkdir(parents=True, exist_ok=True)
        frame = Image.fromarray(np.zeros((32, 32, 3), np.uint8))
        frame.save(root / f"JPEGImages/480p/seq/{i:05d}.jpg")
    for i in masks:
        write_mask(root / f"Annotations/480p/seq/{i:05d}.png", np.zeros((32, 32), np.uint8))


def test_layout_errors(tmp_path):
    _layout(tmp_path / "ok")
    (seq,) = find_sequences(tmp_path / "ok")
    assert seq.name == "seq" and len(seq) == 3 and not seq.fully_annotated
    _layout(tmp_path / "gap", frames=(0, 1, 3))
    with pytest.raises(ValueError, match="gaps"):
        find_sequences(tmp_path / "gap")
    _layout(tmp_path / "nofirst", masks=(1,))
    with pytest.raises(FileNotFoundError, match="first frame"):
        find_sequences(tmp_path / "nofirst")
    with pytest.raises(FileNotFoundError, match="not found"):
        find_sequences(tmp_path / "ok", names=["other"])
    with pytest.raises(FileNotFoundError, match="no frame folders"):
        find_sequences(tmp_path)


def test_read_split(tmp_path):
    (tmp_path / "ImageSets" / "2017").mkdir(parents=True)
    (tmp_path / "ImageSets" / "2017" / "val.txt").write_text("bike\njudo\n\n")
    assert read_split(tmp_path, "val") == ["bike", "judo"]
    with pytest.raises(FileNotFoundError, match="train"):
        read_split(tmp_path, "train")


def test_davis2016_gt_as_prediction_is_perfect():
    root = data_dir("davis2016")
    for seq in find_sequences(root):
        assert seq.fully_annotated
        gt = [read_mask(seq.masks[i]) for i in range(len(seq))]
        assert read_rgb(seq.frames[0]).shape[:2] == gt[0].shape
        assert set(np.unique(gt[0])) == {0, 1}
        g = summarize(evaluate_sequence(seq.name, gt, gt))
        assert g["J&F-Mean"] == 1.0 and g["J-Recall"] == 1.0 and g["F-Decay"] == 0.0
