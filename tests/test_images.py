"""The one image reader: bad inputs give one-line errors with bounded memory; 16-bit, EXIF,
CMYK, palette and alpha images read correctly; fitting images to a model's input contract."""

from __future__ import annotations

import json
import logging
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pe_dense.data import images
from pe_dense.data.images import (
    DEFAULT_LIMITS,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    BadImageError,
    ImageLimits,
    MissingImageError,
    contract_size,
    fit_to_contract,
    is_image_path,
    is_video_path,
    open_checked,
    read_rgb,
)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_bomb_png(path: Path, width: int = 20000, height: int = 12000) -> Path:
    """A real, valid 1-bit greyscale PNG of ``width`` x ``height`` black pixels that compresses
    to a few KB (written row by row: nothing of the full size is ever held in memory)."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat)
                     + _chunk(b"IEND", b""))
    return path


def _short(error: BaseException, path: Path) -> str:
    text = str(error)
    assert str(path) in text and "\n" not in text and len(text) < 300 and ";" in text, text
    return text


def test_extensions_and_limits():
    assert ".png" in IMAGE_EXTENSIONS and ".pgm" in IMAGE_EXTENSIONS
    assert all(e == e.lower() and e.startswith(".") for e in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
    assert is_image_path("a/B.JPEG") and not is_image_path("a.mp4") and is_video_path("c.MkV")
    assert DEFAULT_LIMITS == ImageLimits() and DEFAULT_LIMITS.max_aspect == 100
    with pytest.raises(ValueError, match="max_aspect >= 1"):
        ImageLimits(max_aspect=0.5)


def test_bad_inputs_give_short_errors(tmp_path):
    with pytest.raises(MissingImageError) as err:
        read_rgb(tmp_path / "missing.png")
    assert isinstance(err.value, FileNotFoundError) and "does not exist" in _short(
        err.value, tmp_path / "missing.png")
    cases = {"folder": tmp_path, "text.png": tmp_path / "text.png",
             "truncated.png": tmp_path / "truncated.png", "truncated.jpg": tmp_path / "t.jpg"}
    (tmp_path / "text.png").write_text("not an image at all")
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "full.png")
    Image.fromarray(noise).save(tmp_path / "full.jpg", quality=95)
    for src, dst in (("full.png", "truncated.png"), ("full.jpg", "t.jpg")):
        data = (tmp_path / src).read_bytes()
        (tmp_path / dst).write_bytes(data[: len(data) // 2])
    expected = {"folder": "is a folder", "text.png": "not an image",
                "truncated.png": "truncated or corrupt", "truncated.jpg": "truncated or corrupt"}
    for name, path in cases.items():
        with pytest.raises(BadImageError) as err:
            read_rgb(path)
        assert expected[name] in _short(err.value, path), name
        assert err.value.path == str(path)
    Image.fromarray(np.zeros((3, 4000, 3), np.uint8)).save(tmp_path / "strip.png")
    with pytest.raises(BadImageError, match=r"4000x3 has aspect ratio 1333:1.*max_aspect"):
        read_rgb(tmp_path / "strip.png")
    assert read_rgb(tmp_path / "strip.png", ImageLimits(max_aspect=2000)).shape == (3, 4000, 3)
    Image.fromarray(noise).save(tmp_path / "small.png")
    with pytest.raises(BadImageError, match=r"64x64 = 0.0 M pixels is over the limit"):
        read_rgb(tmp_path / "small.png", ImageLimits(max_pixels=1000))


def test_bombs_are_refused_fast_with_bounded_memory(tmp_path):
    """20000 x 12000 (240 M pixels: 720 MB as RGB) in a fresh process: refused from the header,
    by read_rgb and the label/depth readers, with the resident set growing by under 200 MB."""
    bomb = write_bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 100_000
    big_limits = "ImageLimits(max_pixels=300_000_000)"  # past ours: PIL's own limit answers
    script = f"""
import json, resource, sys, time
from pe_dense.data.images import BadImageError, ImageLimits, read_rgb
from pe_dense.data.segmentation import read_label
from pe_dense.data.depth import read_depth
from pe_dense.data.video import read_mask
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start, t0, messages = rss(), time.perf_counter(), []
for read in (read_rgb, lambda p: read_rgb(p, {big_limits}), read_label, read_depth, read_mask):
    try:
        read(sys.argv[1])
    except BadImageError as exc:
        messages.append(str(exc))
print(json.dumps({{"grew_mb": rss() - start, "seconds": time.perf_counter() - t0,
                  "messages": messages}}))
"""
    done = subprocess.run([sys.executable, "-c", script, str(bomb)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["messages"]) == 5, result
    assert all("240.0 M pixels is over" in m and str(bomb) in m for m in result["messages"])
    assert "label map" in result["messages"][2] and "depth map" in result["messages"][3]
    assert "PIL.Image.MAX_IMAGE_PIXELS" in result["messages"][1]
    assert result["grew_mb"] < 200 and result["seconds"] < 5, result


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(images, "_warned", set())
    ramp = np.linspace(0, 65535, 4096).round().astype(np.uint16).reshape(16, 256)
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    with Image.open(tmp_path / "ramp16.png") as im:
        assert im.mode.startswith("I;16")
    with caplog.at_level(logging.WARNING, logger="pe_dense.data.images"):
        rgb = read_rgb(tmp_path / "ramp16.png")
    assert "16-bit" in caplog.text and "value / 257" in caplog.text
    grey = rgb[..., 0].ravel()
    assert (rgb == rgb[..., :1]).all() and rgb.dtype == np.uint8
    assert grey[0] == 0 and grey[-1] == 255 and (np.diff(grey.astype(int)) >= 0).all()
    assert len(np.unique(grey)) == 256 and (grey == 255).mean() < 0.01
    assert np.abs(grey.astype(float) - ramp.ravel() / 257).max() <= 0.5
    # 32-bit integer images holding 16-bit values read the same way; 48-bit RGB keeps the high byte
    Image.fromarray(ramp.astype(np.int32)).save(tmp_path / "ramp32.tif")
    assert (read_rgb(tmp_path / "ramp32.tif") == rgb).all()


def test_nyu_depth_png_is_not_saturated(shared_data):
    path = shared_data / "nyu_mini" / "depth_0.png"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    with Image.open(path) as im:
        raw = np.asarray(im).astype(np.float64)
    rgb = read_rgb(path)
    assert (rgb[..., 0] == np.rint(raw / 257)).all() and (rgb < 255).all()
    from pe_dense.data.depth import read_depth

    assert np.allclose(read_depth(path), raw / 1000.0)


def test_float_and_one_bit_images(tmp_path):
    Image.fromarray(np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8), mode="F").save(
        tmp_path / "f.tif")
    grey = read_rgb(tmp_path / "f.tif")[..., 0]
    assert grey.min() == 0 and grey.max() == 255
    bits = np.zeros((8, 8), bool)
    bits[:4] = True
    Image.fromarray(bits).save(tmp_path / "b.png")
    assert set(np.unique(read_rgb(tmp_path / "b.png"))) == {0, 255}


def test_exif_orientation_is_applied(tmp_path):
    h, w = 48, 96
    stored = np.zeros((h, w, 3), np.uint8)
    stored[:, : w // 2] = (250, 20, 20)  # red left half, blue right half
    stored[:, w // 2:] = (20, 20, 250)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    Image.fromarray(stored).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    upright = read_rgb(tmp_path / "rot.jpg")
    assert upright.shape == (w, h, 3)
    expected = np.rot90(stored, k=-1)  # clockwise: the left half ends on top
    assert np.abs(upright.astype(int) - expected.astype(int)).mean() < 4
    Image.fromarray(stored).save(tmp_path / "plain.jpg", quality=95)
    assert read_rgb(tmp_path / "plain.jpg").shape == (h, w, 3)


def test_cmyk_palette_and_alpha(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:8] = (200, 40, 40)
    rgb[8:] = (40, 160, 60)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    with Image.open(tmp_path / "cmyk.jpg") as im:
        assert im.mode == "CMYK"
    assert np.abs(read_rgb(tmp_path / "cmyk.jpg").astype(int) - rgb).mean() < 6
    ids = np.zeros((16, 16), np.uint8)
    ids[8:] = 1
    palette = Image.fromarray(ids, mode="P")
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    palette.save(tmp_path / "p.png", transparency=0)  # id 0 transparent: its colour is kept
    with Image.open(tmp_path / "p.png") as im:
        assert im.mode == "P" and "transparency" in im.info
    read = read_rgb(tmp_path / "p.png")
    assert (read[8:] == (10, 200, 30)).all() and (read[:8] == 0).all()
    rgba = np.dstack([rgb, np.full((16, 16), 7, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    assert (read_rgb(tmp_path / "rgba.png") == rgb).all()  # alpha dropped, colours kept
    la = np.dstack([rgb[..., 0], np.zeros((16, 16), np.uint8)])
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    assert (read_rgb(tmp_path / "la.png") == rgb[..., :1]).all()


def test_open_checked_returns_a_loaded_image(tmp_path):
    Image.fromarray(np.full((5, 7), 3, np.uint8)).save(tmp_path / "l.png")
    with open_checked(tmp_path / "l.png", what="label map") as im:
        assert im.mode == "L" and im.size == (7, 5) and np.asarray(im).max() == 3
    with pytest.raises(BadImageError, match="label map .* is a folder"):
        open_checked(tmp_path, what="label map")


def test_contract_size_and_fit():
    # a 512 x 912 frame for a detector padded to a 256 square: long side 256, aspect kept
    assert contract_size((512, 912), square_size=256) == (144, 256)
    assert contract_size((100, 80), square_size=256) == (100, 80)  # fits: unchanged
    assert contract_size((512, 912), max_side=600) == (337, 600)
    # a bare backbone: short side ~448, multiples of the patch, long side capped
    assert contract_size((480, 640), 16, short_side=448) == (448, 592)
    h, w = contract_size((100, 10000), 16, short_side=448, max_side=1792)
    assert w == 1792 and h == 16
    with pytest.raises(ValueError, match="below the size divisor 64"):
        contract_size((10, 10), 64, square_size=32)
    frame = np.random.default_rng(0).integers(0, 255, (512, 912, 3), dtype=np.uint8)
    small, scale = fit_to_contract(frame, square_size=256)
    assert small.shape == (144, 256, 3) and small.dtype == np.uint8
    assert scale == pytest.approx((144 / 512, 256 / 912))
    same, unit = fit_to_contract(small, square_size=256)
    assert same is small and unit == (1.0, 1.0)
    with pytest.raises(ValueError, match="uint8 RGB"):
        fit_to_contract(frame.astype(np.float32))


def test_features_cli_reports_and_skips_bad_images(tmp_path, capsys):
    from pe_dense.cli import main

    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), np.uint8)).save(good)
    strip = tmp_path / "strip.png"
    Image.fromarray(np.zeros((3, 4000, 3), np.uint8)).save(strip)
    bomb = write_bomb_png(tmp_path / "bomb.png")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    bad = [strip, bomb, text, tmp_path / "missing.png", tmp_path]
    out = tmp_path / "out"
    common = ["features", "--model", "PE-Test", "--resolution", "64", "--out", str(out)]
    assert main([*common, str(good), *map(str, bad)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(len(line) < 300 for line in err.splitlines())
    for path, what in zip(bad, ("aspect ratio 1333:1", "240.0 M pixels", "not an image",
                                "does not exist", "is a folder"), strict=True):
        assert f"skipped image {path}" in err and what in err, (path, what)
    assert "5 of 6 images could not be read" in err
    record = json.loads((out / "features.json").read_text())
    assert [r["image"] for r in record["images"]] == ["good"] and len(record["failed"]) == 5
    assert (out / "good_pca.png").is_file()
    # allowed past the aspect limit, a strip is shrunk to --max-side (default 4 x 64), not grown
    assert main([*common, str(strip), "--max-aspect", "2000"]) == 0
    record = json.loads((out / "features.json").read_text())
    assert record["images"][0]["input"] == [256, 16] and record["failed"] == []
    with Image.open(out / "strip_pca.png") as im:
        assert im.size == (8000, 3)
