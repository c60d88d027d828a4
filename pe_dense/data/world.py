"""A captioned synthetic world: coloured shapes on textured backgrounds, deterministic from a seed.

Scenes hold one to four objects (about 35 % single-object scenes): a shape (circle, square,
triangle, star) in a saturated colour (red, green, blue, yellow, each object's shade jittered a
little) and a size (small or large: circumradius 7-11 px or 14-20 px at 96 px, scaled with the
image size), at random positions with limited overlap (later objects are drawn on top; every
object keeps at least 60 % of its pixels visible), on a textured background (plain, striped,
dotted, checked, noisy) in muted greys and browns. A caption describes each scene in short
English (<= 28 words, so it fits a 32-token CLIP context):

- one object: ``"a small red circle"``, sometimes ``+ " on a striped background"``;
- two objects: ``"a small red circle left of a large blue triangle"`` (left of / right of /
  above / below along the dominant axis between the shape centres; sizes usually named);
- three or four: ``"a red circle, a blue triangle and a green square"`` (left to right; sizes
  sometimes named);

sometimes prefixed with ``"a photo of "`` or ``"an image of "``. Held-out colour + shape combos
(default red triangle, green star, blue square, yellow circle) never appear in train, val or the
clips; test scenes draw from all 16 combos, and the zero-shot set holds one object per image,
cycling through every combo. Short clips move one to three objects at constant velocity,
bouncing off the borders and passing over each other, with per-frame instance masks.

Every image has its own ``numpy`` generator seeded from ``(seed, split, index)``, so any one is
reproducible alone. Layout written by :func:`write_world` (``meta.json`` last)::

    meta.json                      {"format": "pe_dense.world/1", "seed", "image_size", "shapes",
                                    "colours", "sizes", "backgrounds", "heldout",
                                    "classes": ["background", *shapes],
                                    "colour_classes": ["background", *colours],
                                    "splits": {"train", "val", "test", "zeroshot"},
                                    "clips", "clip_frames"}
    <split>/images/00000.png       RGB (split: train, val, test)
    <split>/labels/00000.png       uint8 (L) shape class per pixel (0 background, i: shapes[i-1])
    <split>/colours/00000.png      uint8 (L) colour class per pixel (0 background, i: colours[i-1])
    <split>/instances/00000.png    uint8 instance id per pixel (palette PNG, 0 background, 1..n
                                   in the order of the caption entry's ``objects``)
    <split>/captions.json          [{"file", "caption", "background",
                                     "objects": [{"shape", "colour", "size",
                                                  "box": [x0, y0, x1, y1]}]}]
                                   (box: visible pixels, pixel edges, x1/y1 exclusive)
    <split>/instances.json         COCO instances (categories 1..S = shapes, RLE masks)
    zeroshot/images/00000.png      one object per image
    zeroshot/labels.json           [{"file", "colour", "shape", "heldout"}]
    clips/JPEGImages/480p/clip000/00000.png     RGB frames
    clips/Annotations/480p/clip000/00000.png    palette masks, ids 1..n, every frame
    clips/ImageSets/2017/val.txt                clip names

Build one with ``python tools/make_world.py OUT``; read its settings with
:func:`read_world_meta`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from pe_dense.data.video import write_mask
from pe_dense.utils.io import atomic_write, atomic_write_text

__all__ = [
    "WORLD_FORMAT", "SHAPES", "COLOURS", "SIZES", "BACKGROUNDS", "DEFAULT_HELDOUT", "WorldObject",
    "Scene", "combos", "sample_background", "shape_mask", "sample_scene", "scene_caption",
    "sample_clip", "world_meta", "write_world", "read_world_meta",
]

log = logging.getLogger(__name__)

WORLD_FORMAT = "pe_dense.world/1"
SHAPES = ("circle", "square", "triangle", "star")
COLOURS = ("red", "green", "blue", "yellow")
SIZES = ("small", "large")
BACKGROUNDS = ("plain", "striped", "dotted", "checked", "noisy")
DEFAULT_HELDOUT = (("red", "triangle"), ("green", "star"), ("blue", "square"),
                   ("yellow", "circle"))
SPLITS = ("train", "val", "test")
_MAKE = "python tools/make_world.py OUT"
_PARTIAL = ".partial.json"  # present while a world is being written
_STREAMS = {"train": 0, "val": 1, "test": 2, "zeroshot": 3, "clips": 4}  # seed stream per part

_RGB = {"red": (215, 35, 35), "green": (35, 175, 50), "blue": (40, 70, 215),
        "yellow": (230, 205, 35)}
_SHADE_JITTER = 20  # +- per channel, per object
_RADIUS = {"small": (7.0, 11.0), "large": (14.0, 20.0)}  # circumradius range in px at 96 px
_SHAPE_SCALE = {"circle": 0.9, "square": 1.0, "triangle": 1.15, "star": 1.15}  # similar areas
_STAR_INNER = 0.5  # inner / outer radius
_NUM_OBJECTS_P = (0.35, 0.25, 0.2, 0.2)  # 1, 2, 3, 4 objects
_MIN_VISIBLE = 0.6  # fraction of an object's pixels left visible by the objects drawn later
_TONES = ((108, 108, 106), (138, 137, 134), (164, 162, 158), (118, 103, 88), (144, 128, 108),
          (96, 86, 74))  # muted greys and browns (saturation <= 0.2)
_NOISE = 2.0  # sensor noise (std, grey levels) over the whole image


@dataclass(frozen=True)
class WorldObject:
    """One drawn object: ``centre`` (x, y) and ``radius`` (circumradius) in pixels, ``angle``
    in radians, ``rgb`` its jittered colour."""

    shape: str
    colour: str
    size: str
    centre: tuple[float, float]
    radius: float
    angle: float
    rgb: tuple[int, int, int]

    def moved(self, centre: tuple[float, float]) -> WorldObject:
        return WorldObject(self.shape, self.colour, self.size, centre, self.radius, self.angle,
                           self.rgb)


@dataclass
class Scene:
    """A rendered scene: ``image`` (H, W, 3) uint8, ``instances`` (H, W) uint8 (0 background,
    k + 1 = ``objects[k]``), ``background`` the texture's name."""

    image: np.ndarray
    instances: np.ndarray
    objects: list[WorldObject]
    background: str

    def class_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """(labels, colours): (H, W) uint8 shape class and colour class (0 background)."""
        shape_lut = np.zeros(len(self.objects) + 1, np.uint8)
        colour_lut = np.zeros(len(self.objects) + 1, np.uint8)
        for k, obj in enumerate(self.objects):
            shape_lut[k + 1] = SHAPES.index(obj.shape) + 1
            colour_lut[k + 1] = COLOURS.index(obj.colour) + 1
        return shape_lut[self.instances], colour_lut[self.instances]

    def boxes(self) -> list[list[int]]:
        """[x0, y0, x1, y1] of each object's visible pixels (x1, y1 exclusive)."""
        out = []
        for k in range(len(self.objects)):
            ys, xs = np.nonzero(self.instances == k + 1)
            out.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1])
        return out


def combos(heldout: Sequence[Sequence[str]] = DEFAULT_HELDOUT, *, include_heldout: bool
           ) -> list[tuple[str, str]]:
    """(colour, shape) pairs in vocabulary order, without the held-out ones unless asked."""
    held = {tuple(h) for h in heldout}
    return [(c, s) for c in COLOURS for s in SHAPES if include_heldout or (c, s) not in held]


def _scale(image_size: int) -> float:
    return image_size / 96.0


def sample_background(rng: np.random.Generator, image_size: int) -> tuple[str, np.ndarray]:
    """A texture name from :data:`BACKGROUNDS` and its (S, S, 3) float32 picture."""
    name = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    s, k = image_size, _scale(image_size)
    tone = np.array(_TONES[int(rng.integers(len(_TONES)))], np.float32) + rng.integers(-10, 11)
    other = tone + float(rng.choice([-1, 1]) * rng.uniform(18, 30))
    y, x = np.mgrid[0:s, 0:s].astype(np.float32)
    if name == "plain":
        pattern = np.zeros((s, s), bool)
    elif name == "striped":
        period = rng.uniform(5, 11) * k
        axis = (x, y, x + y, x - y)[int(rng.integers(4))]
        pattern = ((axis + rng.uniform(0, period)) % period) < period / 2
    elif name == "dotted":
        gap, dot = rng.uniform(6, 10) * k, rng.uniform(1.2, 2.2) * k
        off = rng.uniform(0, gap, 2)
        dx, dy = (x + off[0]) % gap - gap / 2, (y + off[1]) % gap - gap / 2
        pattern = dx * dx + dy * dy <= dot * dot
    elif name == "checked":
        cell = rng.uniform(4, 10) * k
        off = rng.uniform(0, cell, 2)
        pattern = (((x + off[0]) // cell + (y + off[1]) // cell) % 2).astype(bool)
    else:  # noisy: grey-level noise, the same on every channel
        grain = rng.normal(0.0, 16.0, (s, s, 1)).astype(np.float32)
        return name, np.broadcast_to(tone, (s, s, 3)) + grain
    return name, np.where(pattern[..., None], other, tone).astype(np.float32)


def _outline(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Polygon vertices (x, y) of a square, triangle or star of circumradius ``r``, its first
    vertex ``angle`` radians clockwise from straight up."""
    n = {"square": 4, "triangle": 3, "star": 10}[shape]
    radii = [r * _STAR_INNER if shape == "star" and i % 2 else r for i in range(n)]
    steps = [angle + 2 * math.pi * i / n for i in range(n)]
    return [(cx + rr * math.sin(a), cy - rr * math.cos(a))
            for rr, a in zip(radii, steps, strict=True)]


def shape_mask(obj: WorldObject, image_size: int) -> np.ndarray:
    """(S, S) bool mask of the pixels ``obj`` covers (PIL rasterisation, no anti-aliasing, so
    picture and mask agree exactly)."""
    canvas = Image.new("L", (image_size, image_size), 0)
    draw = ImageDraw.Draw(canvas)
    (cx, cy), r = obj.centre, obj.radius
    if obj.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=1)
    else:
        draw.polygon(_outline(obj.shape, cx, cy, r, obj.angle), fill=1)
    return np.asarray(canvas, dtype=bool)


def _sample_object(rng: np.random.Generator, colour: str, shape: str, image_size: int
                   ) -> WorldObject:
    size = SIZES[int(rng.integers(len(SIZES)))]
    lo, hi = _RADIUS[size]
    r = float(rng.uniform(lo, hi)) * _scale(image_size) * _SHAPE_SCALE[shape]
    period = {"circle": 2 * math.pi, "square": math.pi / 2, "triangle": 2 * math.pi / 3,
              "star": 2 * math.pi / 5}[shape]
    angle = float(rng.uniform(0, period))
    shade = np.clip(np.array(_RGB[colour]) + rng.integers(-_SHADE_JITTER, _SHADE_JITTER + 1, 3),
                    0, 255)
    return WorldObject(shape, colour, size, (0.0, 0.0), r, angle, tuple(int(v) for v in shade))


def _place(rng: np.random.Generator, objects: list[WorldObject], image_size: int,
           tries: int = 40) -> tuple[list[WorldObject], list[np.ndarray]]:
    """Positions for ``objects`` (drawn in order) so that each lies inside the image and keeps
    :data:`_MIN_VISIBLE` of its pixels; objects that find no place are dropped. Returns the
    placed objects and their full (unoccluded) masks."""
    placed: list[WorldObject] = []
    full: list[np.ndarray] = []
    visible: list[np.ndarray] = []
    for obj in objects:
        lo, hi = obj.radius + 1, image_size - 1 - obj.radius
        for _ in range(tries):
            c = (float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi)))
            if any(math.dist(c, p.centre) < 0.5 * (obj.radius + p.radius) for p in placed):
                continue
            cand = obj.moved(c)
            mask = shape_mask(cand, image_size)
            kept = [(v & ~mask).sum() / f.sum() for v, f in zip(visible, full, strict=True)]
            if all(k >= _MIN_VISIBLE for k in kept):
                break
        else:
            continue
        visible = [v & ~mask for v in visible] + [mask]
        placed.append(cand)
        full.append(mask)
    return placed, full


def _render(background: np.ndarray, objects: Sequence[WorldObject], masks: Sequence[np.ndarray],
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``objects`` (later on top) over ``background`` -> image (uint8), instance ids."""
    image = np.array(background, np.float32)
    instances = np.zeros(image.shape[:2], np.uint8)
    for k, (obj, mask) in enumerate(zip(objects, masks, strict=True)):
        image[mask] = obj.rgb
        instances[mask] = k + 1
    image += rng.normal(0.0, _NOISE, image.shape[:2] + (1,)).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), instances


def sample_scene(rng: np.random.Generator, image_size: int, allowed: Sequence[tuple[str, str]],
                 num_objects: int | None = None) -> Scene:
    """A scene of ``num_objects`` (default: 1-4, 35 % single) objects whose (colour, shape)
    are drawn uniformly from ``allowed``."""
    if num_objects is None:
        num_objects = int(rng.choice(len(_NUM_OBJECTS_P), p=_NUM_OBJECTS_P)) + 1
    background, picture = sample_background(rng, image_size)
    wanted = [_sample_object(rng, *allowed[int(rng.integers(len(allowed)))], image_size)
              for _ in range(num_objects)]
    objects, masks = _place(rng, wanted, image_size)
    if not objects:  # cannot happen at sane sizes: one object always fits an empty image
        raise RuntimeError(f"no object fits a {image_size} px image")
    image, instances = _render(picture, objects, masks, rng)
    return Scene(image, instances, objects, background)


def _phrase(obj: WorldObject, with_size: bool) -> str:
    return f"a {obj.size} {obj.colour} {obj.shape}" if with_size else \
        f"a {obj.colour} {obj.shape}"


def _relation(a: WorldObject, b: WorldObject) -> str:
    """Where ``a`` is relative to ``b`` along the dominant axis (image y points down)."""
    dx, dy = a.centre[0] - b.centre[0], a.centre[1] - b.centre[1]
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def scene_caption(rng: np.random.Generator, objects: Sequence[WorldObject], background: str
                  ) -> str:
    """A short English caption naming every object's colour and shape (see the module doc)."""
    prefix = ("", "", "a photo of ", "an image of ")[int(rng.integers(4))]
    if len(objects) == 1:
        text = _phrase(objects[0], True)
        if rng.random() < 0.5:
            text += f" on a {background} background"
    elif len(objects) == 2:
        with_size = rng.random() < 0.7
        a, b = objects if rng.random() < 0.5 else objects[::-1]
        text = f"{_phrase(a, with_size)} {_relation(a, b)} {_phrase(b, with_size)}"
    else:
        with_size = rng.random() < 0.5
        phrases = [_phrase(o, with_size) for o in sorted(objects, key=lambda o: o.centre[0])]
        text = ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return prefix + text


def _bounce(start: float, velocity: float, t: int, lo: float, hi: float) -> float:
    """Position at frame ``t`` of a point moving at ``velocity`` between walls ``lo``, ``hi``."""
    span = hi - lo
    u = (start - lo + velocity * t) % (2 * span)
    return lo + (u if u <= span else 2 * span - u)


def sample_clip(rng: np.random.Generator, image_size: int, frames: int,
                allowed: Sequence[tuple[str, str]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``frames`` (image (S, S, 3) uint8, instance ids (S, S) uint8) pairs of 1-3 objects
    moving at constant velocity (1-3 px per frame at 96 px), bouncing off the borders, on a
    fixed background; every object is at least 60 % visible in frame 0."""
    _, picture = sample_background(rng, image_size)
    wanted = [_sample_object(rng, *allowed[int(rng.integers(len(allowed)))], image_size)
              for _ in range(int(rng.integers(1, 4)))]
    objects, _ = _place(rng, wanted, image_size)
    velocities = []
    for _obj in objects:
        speed, heading = rng.uniform(1.0, 3.0) * _scale(image_size), rng.uniform(0, 2 * math.pi)
        velocities.append((speed * math.cos(heading), speed * math.sin(heading)))
    out = []
    for t in range(frames):
        moved = []
        for obj, (vx, vy) in zip(objects, velocities, strict=True):
            lo, hi = obj.radius + 1, image_size - 1 - obj.radius
            moved.append(obj.moved((_bounce(obj.centre[0], vx, t, lo, hi),
                                    _bounce(obj.centre[1], vy, t, lo, hi))))
        masks = [shape_mask(o, image_size) for o in moved]
        out.append(_render(picture, moved, masks, rng))
    return out


def _check_heldout(heldout: Sequence[Sequence[str]]) -> list[list[str]]:
    pairs = [list(h) for h in heldout]
    for pair in pairs:
        if len(pair) != 2 or pair[0] not in COLOURS or pair[1] not in SHAPES:
            raise ValueError(f"held-out combo {pair} is not [colour, shape] with a colour of "
                             f"{COLOURS} and a shape of {SHAPES}")
    if len({tuple(p) for p in pairs}) != len(pairs):
        raise ValueError(f"held-out combos {pairs} repeat one")
    seen = combos(pairs, include_heldout=False)
    unseen = [w for w in (*COLOURS, *SHAPES) if not any(w in pair for pair in seen)]
    if unseen:
        raise ValueError(f"held-out combos {pairs} leave {unseen} out of training entirely; "
                         "hold out fewer combos so every colour and shape is seen")
    return pairs


def world_meta(*, seed: int = 0, image_size: int = 96, train: int = 8000, val: int = 500,
               test: int = 500, zeroshot: int = 480, clips: int = 12, clip_frames: int = 16,
               heldout: Sequence[Sequence[str]] = DEFAULT_HELDOUT) -> dict[str, Any]:
    """The ``meta.json`` of a world with these settings (checked; see :func:`write_world`)."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if image_size < 32:
        raise ValueError(f"image_size {image_size} is too small for the shapes; use >= 32")
    counts = {"train": train, "val": val, "test": test, "zeroshot": zeroshot, "clips": clips}
    few = {k: v for k, v in counts.items() if v < 1}
    if few or clip_frames < 2:
        raise ValueError(f"every part needs at least one image and clips at least 2 frames; got "
                         f"{few or ''}{f' clip_frames={clip_frames}' if clip_frames < 2 else ''}")
    return {"format": WORLD_FORMAT, "seed": int(seed), "image_size": int(image_size),
            "shapes": list(SHAPES), "colours": list(COLOURS), "sizes": list(SIZES),
            "backgrounds": list(BACKGROUNDS), "heldout": _check_heldout(heldout),
            "classes": ["background", *SHAPES], "colour_classes": ["background", *COLOURS],
            "splits": {"train": int(train), "val": int(val), "test": int(test),
                       "zeroshot": int(zeroshot)},
            "clips": int(clips), "clip_frames": int(clip_frames)}


def read_world_meta(root: str | os.PathLike) -> dict[str, Any]:
    """``root/meta.json`` of a complete world; a clear error when there is none or it has
    another format."""
    path = Path(root) / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"{root} holds no complete synthetic world ({path} is missing); "
                                f"write one with `{_MAKE}`")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); regenerate the world with "
                         f"`{_MAKE}` into a new folder") from exc
    if not isinstance(meta, dict) or meta.get("format") != WORLD_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{path} has format {found!r}, not {WORLD_FORMAT!r}; regenerate the "
                         f"world with `{_MAKE}` into a new folder")
    return meta


def _save_png(path: Path, array: np.ndarray) -> None:
    image = Image.fromarray(array)
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def _rng(seed: int, part: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAMS[part], index])


def _coco_annotations(scene: Scene, image_id: int, first_id: int) -> list[dict[str, Any]]:
    """COCO instance entries (RLE of the visible pixels) of one scene."""
    from pycocotools import mask as mask_utils

    ids = np.arange(1, len(scene.objects) + 1, dtype=np.uint8)
    masks = np.asfortranarray((scene.instances[..., None] == ids).astype(np.uint8))
    rles = mask_utils.encode(masks)
    out = []
    for k, (obj, box, rle) in enumerate(zip(scene.objects, scene.boxes(), rles, strict=True)):
        x0, y0, x1, y1 = box
        out.append({"id": first_id + k, "image_id": image_id,
                    "category_id": SHAPES.index(obj.shape) + 1, "iscrowd": 0,
                    "bbox": [x0, y0, x1 - x0, y1 - y0], "area": int(masks[..., k].sum()),
                    "segmentation": {"size": [int(v) for v in rle["size"]],
                                     "counts": rle["counts"].decode("ascii")}})
    return out


def _write_split(out: Path, split: str, meta: dict[str, Any]) -> None:
    """images/, labels/, colours/, instances/, captions.json and instances.json of a split."""
    size, seed = meta["image_size"], meta["seed"]
    allowed = combos(meta["heldout"], include_heldout=split == "test")
    root = out / split
    captions, images, annotations = [], [], []
    for i in range(meta["splits"][split]):
        rng = _rng(seed, split, i)
        scene = sample_scene(rng, size, allowed)
        name = f"{i:05d}.png"
        labels, colours = scene.class_maps()
        _save_png(root / "images" / name, scene.image)
        _save_png(root / "labels" / name, labels)
        _save_png(root / "colours" / name, colours)
        write_mask(root / "instances" / name, scene.instances)
        captions.append({"file": name, "caption": scene_caption(rng, scene.objects,
                                                                 scene.background),
                         "background": scene.background,
                         "objects": [{"shape": o.shape, "colour": o.colour, "size": o.size,
                                      "box": box} for o, box in zip(scene.objects, scene.boxes(),
                                                                    strict=True)]})
        images.append({"id": i + 1, "file_name": name, "height": size, "width": size})
        annotations += _coco_annotations(scene, i + 1, len(annotations) + 1)
    coco = {"info": {"description": f"pe_dense synthetic world, split {split}, seed {seed}"},
            "images": images, "annotations": annotations,
            "categories": [{"id": k + 1, "name": s} for k, s in enumerate(SHAPES)]}
    atomic_write_text(root / "instances.json", json.dumps(coco))
    atomic_write_text(root / "captions.json", json.dumps(captions, indent=1))


def _write_zeroshot(out: Path, meta: dict[str, Any]) -> None:
    """zeroshot/images/ (one object each, cycling through every combo) and labels.json."""
    everything = combos(meta["heldout"], include_heldout=True)
    held = {tuple(h) for h in meta["heldout"]}
    labels = []
    for i in range(meta["splits"]["zeroshot"]):
        colour, shape = everything[i % len(everything)]
        scene = sample_scene(_rng(meta["seed"], "zeroshot", i), meta["image_size"],
                             [(colour, shape)], num_objects=1)
        name = f"{i:05d}.png"
        _save_png(out / "zeroshot" / "images" / name, scene.image)
        labels.append({"file": name, "colour": colour, "shape": shape,
                       "heldout": (colour, shape) in held})
    atomic_write_text(out / "zeroshot" / "labels.json", json.dumps(labels, indent=1))


def _write_clips(out: Path, meta: dict[str, Any]) -> None:
    """clips/ in DAVIS layout: frames, palette masks for every frame, ImageSets/2017/val.txt."""
    allowed = combos(meta["heldout"], include_heldout=False)
    names = []
    for i in range(meta["clips"]):
        name = f"clip{i:03d}"
        frames = sample_clip(_rng(meta["seed"], "clips", i), meta["image_size"],
                             meta["clip_frames"], allowed)
        for t, (image, ids) in enumerate(frames):
            _save_png(out / "clips" / "JPEGImages" / "480p" / name / f"{t:05d}.png", image)
            write_mask(out / "clips" / "Annotations" / "480p" / name / f"{t:05d}.png", ids)
        names.append(name)
    atomic_write_text(out / "clips" / "ImageSets" / "2017" / "val.txt", "\n".join(names) + "\n")


def _settings_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(set(old) | set(new))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys
                     if old.get(k) != new.get(k))


def _prepare(out: Path, meta: dict[str, Any]) -> bool:
    """True when ``out`` already holds this world; clears a partial one; refuses other
    contents."""
    if (out / "meta.json").is_file():
        try:
            old = read_world_meta(out)
        except ValueError as exc:
            raise ValueError(f"{out} holds something else ({exc}); write the world to a new "
                             "folder") from exc
        if old == meta:
            return True
        raise ValueError(f"{out} holds a world with other settings ({_settings_diff(old, meta)}"
                         "); write this one to a new folder")
    if (out / _PARTIAL).is_file():  # an interrupted run of ours: start again cleanly
        log.info("%s: removing an incomplete world", out)
        for part in (*SPLITS, "zeroshot", "clips"):
            shutil.rmtree(out / part, ignore_errors=True)
    elif out.is_dir() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty and holds no world (no meta.json); write the "
                         "world to a new or empty folder")
    return False


def write_world(out: str | os.PathLike, *, seed: int = 0, image_size: int = 96,
                train: int = 8000, val: int = 500, test: int = 500, zeroshot: int = 480,
                clips: int = 12, clip_frames: int = 16,
                heldout: Sequence[Sequence[str]] = DEFAULT_HELDOUT) -> dict[str, Any]:
    """Write the world (layout in the module doc) to ``out`` and return its meta.

    The same settings give the same bytes. A complete world with the same settings is left
    as it is (``meta.json`` is written last and names the settings); other settings into a
    folder that holds a world, or into a non-empty folder that holds none, raise ``ValueError``.
    """
    meta = world_meta(seed=seed, image_size=image_size, train=train, val=val, test=test,
                      zeroshot=zeroshot, clips=clips, clip_frames=clip_frames, heldout=heldout)
    out = Path(out)
    if _prepare(out, meta):
        log.info("%s already holds this world; nothing to do", out)
        return meta
    atomic_write_text(out / _PARTIAL, json.dumps(meta))
    for split in SPLITS:
        start = time.perf_counter()
        _write_split(out, split, meta)
        log.info("%s: %d images in %.1f s", split, meta["splits"][split],
                 time.perf_counter() - start)
    _write_zeroshot(out, meta)
    _write_clips(out, meta)
    atomic_write_text(out / "meta.json", json.dumps(meta, indent=2) + "\n")
    (out / _PARTIAL).unlink()
    return meta
