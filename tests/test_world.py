"""The captioned synthetic world (pe_dense.data.world, tools/make_world.py): tiny 64 px worlds."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pe_dense.data import world as W
from pe_dense.data.video import find_sequences, read_mask, read_split

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(seed=0, image_size=64, train=6, val=3, test=8, zeroshot=16, clips=2, clip_frames=4)
HELD = {tuple(h) for h in W.DEFAULT_HELDOUT}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world") / "w"
    W.write_world(out, **TINY)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _captions(world: Path, split: str) -> list[dict]:
    return json.loads((world / split / "captions.json").read_text())


def test_layout_exactly(world):
    names = set(_files(world))
    expected = {"meta.json", "zeroshot/labels.json", "clips/ImageSets/2017/val.txt"}
    for split in W.SPLITS:
        expected |= {f"{split}/captions.json", f"{split}/instances.json"}
        expected |= {f"{split}/{kind}/{i:05d}.png" for kind in ("images", "labels", "colours",
                                                                 "instances")
                     for i in range(TINY[split])}
    expected |= {f"zeroshot/images/{i:05d}.png" for i in range(TINY["zeroshot"])}
    expected |= {f"clips/{kind}/480p/clip{c:03d}/{t:05d}.png" for kind in ("JPEGImages",
                                                                           "Annotations")
                 for c in range(2) for t in range(4)}
    assert names == expected
    meta = W.read_world_meta(world)
    assert meta == W.world_meta(**TINY)
    assert meta["classes"] == ["background", "circle", "square", "triangle", "star"]
    assert meta["splits"] == {"train": 6, "val": 3, "test": 8, "zeroshot": 16}


def test_deterministic(world, tmp_path):
    W.write_world(tmp_path / "again", **TINY)
    assert _files(tmp_path / "again") == _files(world)
    W.write_world(tmp_path / "other", **{**TINY, "seed": 1})
    a = (world / "train/images/00000.png").read_bytes()
    assert (tmp_path / "other/train/images/00000.png").read_bytes() != a
    # any image alone: its own generator seeded from (seed, split, index)
    scene = W.sample_scene(np.random.default_rng([0, 0, 0]), 64,
                           W.combos(include_heldout=False))
    assert np.array_equal(scene.image, np.array(Image.open(world / "train/images/00000.png")))


@pytest.mark.parametrize("split", W.SPLITS)
def test_masks_consistent(world, split):
    caps = _captions(world, split)
    assert [c["file"] for c in caps] == [f"{i:05d}.png" for i in range(TINY[split])]
    for entry in caps:
        name = entry["file"]
        image = Image.open(world / split / "images" / name)
        assert image.mode == "RGB" and image.size == (64, 64)
        labels = np.array(Image.open(world / split / "labels" / name))
        colours = np.array(Image.open(world / split / "colours" / name))
        inst = read_mask(world / split / "instances" / name)
        assert labels.dtype == colours.dtype == np.uint8 and labels.shape == (64, 64)
        assert np.array_equal(labels == 0, inst == 0) and np.array_equal(colours == 0, inst == 0)
        assert 1 <= len(entry["objects"]) <= 4 and inst.max() == len(entry["objects"])
        for k, obj in enumerate(entry["objects"], start=1):
            m = inst == k
            assert m.sum() > 0
            assert set(np.unique(labels[m])) == {W.SHAPES.index(obj["shape"]) + 1}
            assert set(np.unique(colours[m])) == {W.COLOURS.index(obj["colour"]) + 1}
            ys, xs = np.nonzero(m)
            assert obj["box"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            assert obj["size"] in W.SIZES
        assert entry["background"] in W.BACKGROUNDS


@pytest.mark.parametrize("split", W.SPLITS)
def test_coco_file_matches_instance_pngs(world, split):
    from pycocotools.coco import COCO

    coco = COCO(str(world / split / "instances.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(W.SHAPES)
    for img in coco.loadImgs(coco.getImgIds()):
        inst = read_mask(world / split / "instances" / img["file_name"])
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
        assert len(anns) == inst.max()
        objects = _captions(world, split)[img["id"] - 1]["objects"]
        for k, (ann, obj) in enumerate(zip(anns, objects, strict=True), start=1):
            assert np.array_equal(coco.annToMask(ann), (inst == k).astype(np.uint8))
            assert ann["category_id"] == W.SHAPES.index(obj["shape"]) + 1
            assert ann["area"] == (inst == k).sum()


def test_heldout_combos(world):
    for split in ("train", "val"):
        for entry in _captions(world, split):
            assert not any((o["colour"], o["shape"]) in HELD for o in entry["objects"])
            assert not any(f"{c} {s}" in entry["caption"] for c, s in HELD)
    test_objects = [(o["colour"], o["shape"]) for e in _captions(world, "test")
                    for o in e["objects"]]
    assert any(p in HELD for p in test_objects)
    labels = json.loads((world / "zeroshot/labels.json").read_text())
    assert {(z["colour"], z["shape"]) for z in labels} == set(W.combos(include_heldout=True))
    assert all(z["heldout"] == ((z["colour"], z["shape"]) in HELD) for z in labels)
    assert [z["file"] for z in labels] == [f"{i:05d}.png" for i in range(16)]


def test_heldout_must_leave_every_word_seen():
    with pytest.raises(ValueError, match="hold out fewer"):
        W.world_meta(heldout=[("red", s) for s in W.SHAPES])
    with pytest.raises(ValueError, match="not \\[colour, shape\\]"):
        W.world_meta(heldout=[("purple", "circle")])


def test_captions_name_every_object(world):
    for split in W.SPLITS:
        for entry in _captions(world, split):
            text, objects = entry["caption"], entry["objects"]
            assert len(text.replace(",", " ,").split()) <= 28
            for obj in objects:
                assert f"{obj['colour']} {obj['shape']}" in text
            if len(objects) == 2:
                assert any(f" {r} a " in text for r in ("left of", "right of", "above", "below"))


def test_relation_and_caption_forms():
    def obj(colour, shape, x, y, size="small"):
        return W.WorldObject(shape, colour, size, (x, y), 8.0, 0.0, (0, 0, 0))

    a, b = obj("red", "circle", 10, 30), obj("blue", "star", 40, 35, "large")
    texts = {W.scene_caption(np.random.default_rng(i), [a, b], "plain") for i in range(40)}
    assert "a small red circle left of a large blue star" in texts
    assert "a large blue star right of a small red circle" in texts
    c = obj("green", "square", 12, 5)
    assert W._relation(c, a) == "above" and W._relation(a, c) == "below"
    one = {W.scene_caption(np.random.default_rng(i), [a], "striped") for i in range(40)}
    assert {"a small red circle", "a small red circle on a striped background",
            "a photo of a small red circle"} <= one


@pytest.mark.skipif(importlib.util.find_spec("open_clip") is None,
                    reason="ClipTokenizer needs open_clip_torch (pe-dense[text])")
def test_captions_fit_clip_context(world):
    from pe_dense.backbone.tokenizer import ClipTokenizer

    tok = ClipTokenizer(32)
    longest = [W.WorldObject(s, "yellow", "large", (float(10 * i), 0.0), 8.0, 0.0, (0, 0, 0))
               for i, s in enumerate(W.SHAPES)]
    texts = [W.scene_caption(np.random.default_rng(i), longest, "checked") for i in range(20)]
    texts += [e["caption"] for s in W.SPLITS for e in _captions(world, s)]
    assert max(len(tok.encode(t)) for t in texts) + 2 <= 32  # + start and end tokens


def test_clips_load_as_davis(world):
    seqs = find_sequences(world / "clips")
    assert [s.name for s in seqs] == read_split(world / "clips", "val") == ["clip000", "clip001"]
    for seq in seqs:
        assert len(seq) == 4 and seq.fully_annotated
        first = read_mask(seq.masks[0])
        n = int(first.max())
        assert 1 <= n <= 3 and set(np.unique(first)) == set(range(n + 1))  # all visible
        for t in range(len(seq)):
            assert read_mask(seq.masks[t]).max() <= n
            assert Image.open(seq.frames[t]).size == (64, 64)
        assert Image.open(seq.masks[0]).mode == "P"


def test_clip_objects_move_and_bounce():
    frames = W.sample_clip(np.random.default_rng(3), 64, 40, W.combos(include_heldout=False))
    centres = [np.argwhere(ids == 1).mean(0) for _, ids in frames if (ids == 1).any()]
    assert np.abs(np.diff(centres, axis=0)).max() > 0.5  # it moves
    assert W._bounce(5.0, 3.0, 10, 0.0, 20.0) == pytest.approx(5.0)  # 15 to the wall, 15 back
    assert W._bounce(5.0, -3.0, 3, 0.0, 20.0) == pytest.approx(4.0)  # 5 - 9 = -4 -> 4


def test_rerun_skips_and_other_settings_refused(world):
    before = {p: os.stat(p).st_mtime_ns for p in (world / "meta.json",
                                                  world / "train/images/00000.png")}
    assert W.write_world(world, **TINY) == W.read_world_meta(world)
    assert {p: os.stat(p).st_mtime_ns for p in before} == before
    with pytest.raises(ValueError, match="new folder"):
        W.write_world(world, **{**TINY, "train": 7})


def test_meta_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="tools/make_world.py"):
        W.read_world_meta(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": "something/2"}))
    with pytest.raises(ValueError, match="tools/make_world.py"):
        W.read_world_meta(tmp_path)
    with pytest.raises(ValueError, match="new folder"):
        W.write_world(tmp_path, **TINY)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        W.write_world(other, **TINY)


def test_interrupted_world_is_rewritten(tmp_path):
    out = tmp_path / "w"
    (out / "train/images").mkdir(parents=True)
    (out / "train/images/00099.png").write_bytes(b"stale")
    (out / ".partial.json").write_text("{}")
    W.write_world(out, **TINY)
    assert not (out / "train/images/00099.png").exists() and not (out / ".partial.json").exists()
    assert W.read_world_meta(out)["splits"]["train"] == 6


def test_cli(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("make_world", ROOT / "tools/make_world.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = [str(tmp_path / "w"), "--image-size", "48", "--train", "2", "--val", "1", "--test",
            "1", "--zeroshot", "2", "--clips", "1", "--clip-frames", "2", "--heldout",
            "red:triangle"]
    assert tool.main(args) == 0
    meta = W.read_world_meta(tmp_path / "w")
    assert meta["heldout"] == [["red", "triangle"]] and meta["image_size"] == 48
    assert tool.main(args) == 0  # complete: nothing to do
    assert tool.main(args[:-1] + ["green:star"]) == 2
    assert "new folder" in capsys.readouterr().err
