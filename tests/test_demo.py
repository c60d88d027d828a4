"""Demo application: sources, capture thread, keys, PCA colouring, headless runs, errors."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

try:
    import cv2
except ImportError:  # the demo extra is not installed: only the pure-logic tests run
    cv2 = None
needs_cv2 = pytest.mark.skipif(cv2 is None, reason="OpenCV not installed (pip install "
                               "opencv-python-headless, or pe-dense[demo])")

from pe_dense.cli import main  # noqa: E402
from pe_dense.demo.capture import FrameGrabber  # noqa: E402
from pe_dense.demo.errors import SourceNotFound, SourceUnreadable, StreamDropped  # noqa: E402
from pe_dense.demo.keys import TOUR_MODES, Action, handle_key, next_mode  # noqa: E402
from pe_dense.demo.sample_clip import SampleClip  # noqa: E402
from pe_dense.demo.sources import (  # noqa: E402
    FolderSource,
    FrameSource,
    SampleClipSource,
    VideoFileSource,
    open_source,
)
from pe_dense.viz.pca import PCAColorizer  # noqa: E402

FAST = ["--model", "PE-Test", "--resolution", "64"]
TASK_MODULES = {"depth": "pe_dense.tasks.depth.model", "seg": "pe_dense.tasks.segmentation.model",
                "det": "pe_dense.tasks.detection.model"}


def needs_task_model(*modes: str) -> None:
    """Skip when a task model of the other issues (depth, seg, det) is not installed."""
    for mode in modes:
        if mode in TASK_MODULES:
            pytest.importorskip(TASK_MODULES[mode], reason=f"{mode} model not available")


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def read_all(src: FrameSource) -> list[np.ndarray]:
    frames = []
    while (frame := src.read()) is not None:
        frames.append(frame)
    return frames


def read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


@pytest.fixture(scope="module")
def clip_video(tmp_path_factory) -> tuple[Path, int, tuple[int, int]]:
    clip = SampleClip(num_frames=6, height=96, width=128)
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    write_video(path, [clip.frame(i) for i in range(len(clip))])
    return path, 6, (96, 128)


# ------------------------------------------------------------------ keys


@pytest.mark.parametrize("key,expected", [
    (ord("q"), Action("quit")), (27, Action("quit")), (ord("Q"), Action("quit")),
    (ord(" "), Action("pause")), (ord("c"), Action("snapshot")), (ord("m"), Action("next_mode")),
    (ord("r"), Action("reset")), (ord("h"), Action("toggle_hud")),
    (ord("1"), Action("mode", "features")), (ord("2"), Action("mode", "depth")),
    (ord("3"), Action("mode", "seg")), (ord("4"), Action("mode", "det")),
    (ord("5"), Action("mode", "track")), (ord("d"), Action("mode", "depth")),
    (ord("t"), Action("mode", "track")), (-1, None), (ord("z"), None),
    (0x100000 | ord("q"), Action("quit")),  # modifier bits from some backends
])
def test_handle_key(key, expected):
    assert handle_key(key) == expected


def test_next_mode_wraps():
    assert next_mode("features") == "depth"
    assert next_mode("track") == "text" and next_mode("text") == "features"
    assert next_mode("track", TOUR_MODES) == "features"
    assert next_mode("depth", ("features", "track")) == "features"


# ------------------------------------------------------------------ PCA colouring


def test_pca_colours_stable_after_fit():
    torch.manual_seed(0)
    base = torch.randn(16, 6, 8)
    colorizer = PCAColorizer().fit([base, base + 0.1 * torch.randn_like(base)])
    first = colorizer.transform(base)
    assert first.shape == (6, 8, 3) and first.dtype == torch.uint8
    # a new, different frame must not change the projection used for the old one
    colorizer.transform(torch.randn(16, 6, 8) * 5)
    assert torch.equal(colorizer.transform(base), first)
    # colours use the range: the 3 channels are not constant
    assert (first.float().std(dim=(0, 1)) > 10).all()


@needs_cv2
def test_features_mode_fits_then_freezes():
    from pe_dense import create_backbone
    from pe_dense.demo.modes import FeaturesMode
    from pe_dense.demo.runtime import Runtime, StageTimer

    rt = Runtime(create_backbone("PE-Test"), "PE-Test", 64, torch.device("cpu"), torch.float32)
    mode = FeaturesMode(rt, fit_frames=2)
    clip = SampleClip(num_frames=4, height=64, width=96)
    timer = StageTimer()
    outs = [mode.process(clip.frame(i), timer) for i in range(3)]
    assert all(o.shape == (64, 96, 3) and o.dtype == np.uint8 for o in outs)
    assert not mode.fitting and len(mode._fit_maps) == 2
    components = mode.colorizer.components.clone()
    again = mode.process(clip.frame(0), timer)
    assert torch.equal(mode.colorizer.components, components)
    assert set(timer.ms) == {"prep", "backbone", "pca", "draw"}
    mode.reset()
    assert mode.fitting
    assert again.std() > 5


# ------------------------------------------------------------------ sources and capture


def test_sample_clip_moves():
    clip = SampleClip(num_frames=5, height=64, width=96)
    a, b = clip.frame(0), clip.frame(4)
    assert a.shape == (64, 96, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 5
    with pytest.raises(IndexError):
        clip.frame(5)


@needs_cv2
def test_video_and_folder_sources(clip_video, tmp_path):
    path, n, (h, w) = clip_video
    with VideoFileSource(path) as src:
        frames = read_all(src)
    assert len(frames) == n and frames[0].shape == (h, w, 3)
    from PIL import Image

    for i, f in enumerate(frames[:3]):
        Image.fromarray(f).save(tmp_path / f"{i:03d}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    folder = open_source(str(tmp_path))
    assert isinstance(folder, FolderSource) and len(folder) == 3
    assert open_source("sample", sample_frames=3).read().shape == (360, 480, 3)


@needs_cv2
def test_source_errors(tmp_path):
    with pytest.raises(SourceNotFound, match="--source FILE"):
        open_source(str(tmp_path / "missing.mp4"))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(SourceUnreadable, match="cannot decode"):
        open_source(str(bad))
    with pytest.raises(SourceNotFound, match="camera 57 not found.*--source FILE"):
        open_source("57")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceNotFound, match="no images"):
        open_source(str(tmp_path / "empty"))


class _SlowLive(FrameSource):
    """A live source producing ``n`` frames quickly, then dropping."""

    live = True
    name = "fake camera"

    def __init__(self, n: int) -> None:
        self.n, self.i = n, 0

    def read(self):
        if self.i >= self.n:
            raise StreamDropped("fake camera stopped")
        self.i += 1
        time.sleep(0.002)
        return np.full((4, 4, 3), self.i, np.uint8)


def test_grabber_drops_stale_frames_and_reraises():
    grabber = FrameGrabber(_SlowLive(40)).start()
    deadline = time.perf_counter() + 20  # a slow consumer: wait until the source has stopped
    while not grabber._ended and time.perf_counter() < deadline:
        time.sleep(0.01)
    frame = grabber.get(timeout=1)
    assert frame.index == 39 and grabber.dropped >= 30
    with pytest.raises(StreamDropped):
        grabber.get(timeout=1)
    grabber.stop()


def test_grabber_keeps_every_file_frame():
    src = SampleClipSource(num_frames=7, height=32, width=32)
    with FrameGrabber(src) as grabber:
        time.sleep(0.1)
        indices = [f.index for f in iter(lambda: grabber.get(timeout=5), None)]
    assert indices == list(range(7)) and grabber.dropped == 0
    assert not any(t.name == "pe-dense-capture" and t.is_alive() for t in threading.enumerate())


# ------------------------------------------------------------------ headless runs and errors


@needs_cv2
def test_headless_features_video(clip_video, tmp_path, capsys):
    path, n, (h, w) = clip_video
    out = tmp_path / "out.mp4"
    frames_dir = tmp_path / "frames"
    code = main(["demo", "--source", str(path), "--headless", "--output", str(out),
                 "--save-frames", str(frames_dir), *FAST])
    assert code == 0
    written = read_video(out)
    assert len(written) == n and written[0].shape == (h, w, 3)
    assert all(f.std() > 10 for f in written)  # not blank
    pngs = sorted(frames_dir.glob("frame_*.png"))
    assert len(pngs) == n
    assert not list(tmp_path.glob(".*partial*"))  # atomic: no temp files left
    assert f"{n} frames" in capsys.readouterr().out


@needs_cv2
def test_headless_needs_an_output(clip_video):
    assert main(["demo", "--source", str(clip_video[0]), "--headless", *FAST]) == 2


@needs_cv2
def test_error_exit_codes(tmp_path, monkeypatch, capsys):
    assert main(["demo", "--source", str(tmp_path / "nope.mp4"), "--headless",
                 "--output", str(tmp_path / "o.mp4"), *FAST]) == 3
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"\x00" * 1000)
    assert main(["demo", "--source", str(bad), "--headless",
                 "--output", str(tmp_path / "o.mp4"), *FAST]) == 4
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["demo", "--source", "sample", *FAST]) == 6
    assert "--headless" in capsys.readouterr().err
    wrong = tmp_path / "wrong.pt"
    from pe_dense import create_backbone
    from pe_dense.backbone.weights import save_checkpoint

    save_checkpoint(create_backbone("PE-Test", layers=2).state_dict(), wrong)
    assert main(["demo", "--source", "sample", "--headless", "--output",
                 str(tmp_path / "o.mp4"), "--weights", str(wrong), *FAST]) == 7
    assert "do not fit" in capsys.readouterr().err


# ------------------------------------------------------------------ task modes


@needs_cv2
@pytest.mark.parametrize("mode", ["features", "depth", "seg", "det", "track"])
def test_every_mode_headless(mode, clip_video, tmp_path):
    needs_task_model(mode)
    path, n, (h, w) = clip_video
    out = tmp_path / f"{mode}.avi"
    assert main(["demo", "--source", str(path), "--mode", mode, "--headless",
                 "--output", str(out), "--max-frames", "3", *FAST]) == 0
    written = read_video(out)
    assert len(written) == 3 and written[0].shape == (h, w, 3)
    assert all(f.std() > 10 for f in written)


@needs_cv2
def test_text_mode_with_a_bridge(clip_video, tmp_path, capsys):
    """Text mode: labels + legend + one heat-map thumbnail per prompt; without prompts it is a
    clear error, and the x key picks it."""
    from pe_dense.tasks.open_vocab.bridge import BridgeSegmenter, save_bridge

    torch.manual_seed(0)
    bridge = BridgeSegmenter(backbone=dict(name="PE-Test"), prompts=["car", "road"],
                             text=dict(name="PE-Test", seed=0), hidden=16)
    save_bridge(bridge, tmp_path / "bridge.pth")
    path, n, (h, w) = clip_video
    out = tmp_path / "text.avi"
    assert main(["demo", "--source", str(path), "--mode", "text", "--prompts", "car, road,sky",
                 "--bridge", str(tmp_path / "bridge.pth"), "--headless", "--output", str(out),
                 "--max-frames", "2", *FAST]) == 0
    written = read_video(out)
    assert len(written) == 2 and written[0].shape == (h, w, 3)
    assert main(["demo", "--source", str(path), "--mode", "text", "--headless",
                 "--output", str(out), *FAST]) == 2
    assert "--prompts" in capsys.readouterr().err
    assert handle_key(ord("x")) == Action("mode", "text")


@needs_cv2
def test_cycle_through_all_modes(tmp_path):
    needs_task_model("depth", "seg", "det")
    from pe_dense.demo.app import DemoApp, DemoOptions
    from pe_dense.demo.build import ModelOptions, build_runtime, mode_factory

    opts = ModelOptions(model="PE-Test", resolution=64)
    runtime, task = build_runtime(opts)
    seen = []
    app = DemoApp(SampleClipSource(num_frames=5, height=64, width=64), runtime,
                  mode_factory(runtime, opts, task),
                  DemoOptions(headless=True, save_frames=str(tmp_path), cycle_every=1))
    original = app.annotate
    app.annotate = lambda image: (seen.append(app.mode.name), original(image))[1]
    assert app.run() == 5
    assert seen == ["features", "depth", "seg", "det", "track"]
    # keys drive the same app: mode switch, pause toggle, HUD toggle, snapshot, quit
    app.options.snapshot_dir = str(tmp_path / "snaps")
    assert app.apply(handle_key(ord("2"))) and app.mode.name == "depth"
    assert app.apply(handle_key(ord("m"))) and app.mode.name == "seg"
    assert app.apply(handle_key(ord(" "))) and app.paused
    assert app.apply(handle_key(ord("h"))) and not app.show_hud
    assert app.apply(handle_key(ord("c")))
    assert len(list((tmp_path / "snaps").glob("seg_*.png"))) == 1
    assert not app.apply(handle_key(ord("q")))


DET_CONFIG = """
model = dict(type="MaskRCNN", backbone=dict(name="PE-Test", weights="hf://facebook/none"),
             num_classes=3, pyramid=dict(type="SimpleFeaturePyramid", out_channels=32),
             anchor_sizes=((8,), (16,), (32,), (64,), (128,)),
             roi=dict(score_thresh=0.0, detections_per_img=5))
class_names = ("circle", "square", "triangle")
"""


@pytest.fixture(scope="module")
def det_config(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A tiny Mask R-CNN config on PE-Test and a checkpoint of it (random weights)."""
    needs_task_model("det")
    import pe_dense.tasks.detection.model  # noqa: F401
    from pe_dense.backbone.weights import save_checkpoint
    from pe_dense.engine.registry import MODELS

    root = tmp_path_factory.mktemp("det")
    config = root / "det_pe_test.py"
    config.write_text(DET_CONFIG)
    spec = {"type": "MaskRCNN", "backbone": {"name": "PE-Test"}, "num_classes": 3,
            "pyramid": {"type": "SimpleFeaturePyramid", "out_channels": 32},
            "anchor_sizes": ((8,), (16,), (32,), (64,), (128,))}
    ckpt = root / "det.pth"
    save_checkpoint({"state_dict": MODELS.build(spec).state_dict()}, ckpt)
    return config, ckpt, spec


@needs_cv2
def test_trained_model_from_config_and_mismatch(det_config, tmp_path, capsys):
    from pe_dense.backbone.weights import save_checkpoint
    from pe_dense.demo.build import load_task_model
    from pe_dense.demo.errors import ModelMismatch
    from pe_dense.engine.registry import MODELS

    config, ckpt, spec = det_config
    task = load_task_model(str(config), str(ckpt))  # the hf:// weights are not fetched
    assert task.mode == "det" and task.class_names == ("circle", "square", "triangle")
    wrong = tmp_path / "wrong.pth"
    save_checkpoint({"state_dict": MODELS.build({**spec, "num_classes": 5}).state_dict()}, wrong)
    with pytest.raises(ModelMismatch, match="does not fit the MaskRCNN built from"):
        load_task_model(str(config), str(wrong))
    assert main(["demo", "--source", "sample", "--config", str(config), "--checkpoint",
                 str(wrong), "--headless", "--save-frames", str(tmp_path)]) == 7
    assert "does not fit the MaskRCNN built from" in capsys.readouterr().err
    assert main(["demo", "--source", "sample", "--config", str(config), "--headless",
                 "--save-frames", str(tmp_path)]) == 2


@needs_cv2
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["det", "track"])
def test_trained_detector_runs(det_config, mode, tmp_path):
    config, ckpt, _ = det_config
    out = tmp_path / "out"
    assert main(["demo", "--source", "sample", "--sample-frames", "2", "--config", str(config),
                 "--checkpoint", str(ckpt), "--headless", "--save-frames", str(out),
                 "--resolution", "64", "--score-thresh", "0", "--mode", mode]) == 0
    assert len(list(out.glob("*.png"))) == 2


SQUARE_TEST = """
_base_ = ["./det_pe_test.py"]
model = dict(rpn=dict(pre_nms_top_n=dict(testing=100), post_nms_top_n=dict(testing=50)))
test_dataloader = dict(
    collate_fn=dict(type="pe_dense.detection_collate", square_size=256),
    dataset=dict(pipeline=[dict(type="ResizeLongestSide", size=256), dict(type="PackDetInputs")]))
"""


@needs_cv2
def test_detector_with_a_square_size_runs_on_a_wide_frame():
    """A 512 x 912 frame at the default resolution (512) for a detector padded to a 256 square:
    the frame is resized to 144 x 256, and the results come back in the frame's pixels."""
    needs_task_model("det")
    from pe_dense.data.collate import pad_images
    from pe_dense.demo.runtime import Runtime, StageTimer
    from pe_dense.demo.tasks import DetMode
    from pe_dense.tasks.detection.model import DetInputs, MaskRCNN

    model = MaskRCNN(backbone={"name": "PE-Test"}, num_classes=3,
                     pyramid={"type": "SimpleFeaturePyramid", "out_channels": 16},
                     anchor_sizes=((8,), (16,), (32,), (64,), (128,)),
                     rpn={"pre_nms_top_n": {"training": 100, "testing": 100},
                          "post_nms_top_n": {"training": 50, "testing": 50}},
                     box_head={"conv_dims": (16,), "fc_dims": (32,)},
                     mask_head={"conv_dims": (16,)},
                     roi={"score_thresh": 0.0, "detections_per_img": 5}).eval()
    model.inputs = DetInputs(resize=256, size_divisor=64, square_size=256)
    runtime = Runtime(model.backbone, "PE-Test", 512, torch.device("cpu"), torch.float32)
    mode = DetMode(runtime, model, trained=True, score_thresh=0.0)
    frame = SampleClip(num_frames=1, height=512, width=912).frame(0)
    det = mode.detect(frame)
    assert runtime.input_size == (144, 256)
    assert len(det["boxes"]) and det["masks"].shape[1:] == (512, 912)
    assert (det["boxes"][:, 2] <= 912).all() and (det["boxes"][:, 3] <= 512).all()
    # the same network on the resized frame, in network pixels, scaled back by 912/256, 512/144
    x = runtime.prepare(frame, square_size=256)
    with torch.no_grad():
        ref = model.predict(pad_images([x[0]], 64, 256), [{"img_size": (144, 256)}])[0]
    order = np.argsort(-ref["scores"].numpy())
    expected = ref["boxes"].numpy()[order] * np.array([912 / 256, 512 / 144] * 2)
    assert np.allclose(det["boxes"], expected, atol=1e-3)
    assert mode.process(frame, StageTimer()).shape == (512, 912, 3)


@needs_cv2
def test_demo_detection_config_at_default_resolution(det_config, tmp_path):
    """`pe-dense demo --config DET --checkpoint CKPT` on 512 x 912 frames with the config's
    square size 256 and the default --resolution: runs (it used to exit 2 with 'exceeds
    square_size'); a bad frame among them is skipped with a warning."""
    from PIL import Image

    config, ckpt, _ = det_config
    square = config.with_name("det_square.py")
    square.write_text(SQUARE_TEST)
    frames = tmp_path / "frames"
    frames.mkdir()
    clip = SampleClip(num_frames=2, height=512, width=912)
    for i in range(2):
        Image.fromarray(clip.frame(i)).save(frames / f"{i:03d}.png")
    (frames / "001b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "out"
    assert main(["demo", "--source", str(frames), "--config", str(square), "--checkpoint",
                 str(ckpt), "--headless", "--save-frames", str(out), "--mode", "det",
                 "--score-thresh", "0"]) == 0
    written = sorted(out.glob("*.png"))
    assert len(written) == 2
    with Image.open(written[0]) as im:
        assert im.size == (912, 512)


def test_folder_source_skips_bad_frames(tmp_path, caplog):
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((3, 4000, 3), np.uint8)).save(tmp_path / "c.png")
    src = FolderSource(tmp_path)
    assert len(read_all(src)) == 1 and len(src.skipped) == 2
    assert "aspect ratio" in src.skipped[1] and "skipped frame" in caplog.text
    only = FolderSource(tmp_path / "c.png")
    with pytest.raises(SourceUnreadable, match=r"c\.png: 4000x3 has aspect ratio"):
        only.read()


def test_mask_from_box_follows_features():
    from pe_dense.demo.track import box_of_mask, mask_from_box

    feats = torch.zeros(4, 8, 8)
    feats[0] = 1.0
    feats[1, 2:5, 2:5] = 5.0  # an "object" of 3x3 patches inside a larger box
    mask = mask_from_box(feats, (0, 0, 48, 48), (64, 64))
    assert mask.shape == (64, 64)
    assert box_of_mask(mask) == (16, 16, 40, 40)


@needs_cv2
def test_window_mouse_drag_picks_a_box():
    from pe_dense.demo.output import WindowSink

    sink = WindowSink.__new__(WindowSink)  # no window: drive the mouse handler directly
    sink._drag_start, sink.drag_box, sink.picked_box = None, None, None
    sink._on_mouse(cv2.EVENT_LBUTTONDOWN, 50, 40, 0, None)
    sink._on_mouse(cv2.EVENT_MOUSEMOVE, 20, 90, 0, None)
    assert sink.drag_box == (50, 40, 20, 90) and sink.picked_box is None
    sink._on_mouse(cv2.EVENT_LBUTTONUP, 20, 90, 0, None)
    assert sink.picked_box == (20, 40, 50, 90) and sink.drag_box is None
    sink._on_mouse(cv2.EVENT_LBUTTONDOWN, 5, 5, 0, None)
    sink._on_mouse(cv2.EVENT_LBUTTONUP, 6, 6, 0, None)  # a click, not a drag: ignored
    assert sink.picked_box == (20, 40, 50, 90)


class _Stalling(FrameSource):
    """A live source that delivers one frame, then hangs (a frozen network stream) until
    ``release`` is set."""

    live = True
    name = "stalled stream"

    def __init__(self) -> None:
        self.count = 0
        self.release = threading.Event()

    def read(self):
        self.count += 1
        if self.count > 1:
            self.release.wait(30)  # the grabber gives up on it after 2 s
            return None
        return np.full((64, 64, 3), 100, np.uint8)


@needs_cv2
def test_stalled_live_source_is_a_dropped_stream(tmp_path):
    from pe_dense import create_backbone
    from pe_dense.demo.app import DemoApp, DemoOptions
    from pe_dense.demo.modes import FeaturesMode
    from pe_dense.demo.runtime import Runtime

    rt = Runtime(create_backbone("PE-Test"), "PE-Test", 64, torch.device("cpu"), torch.float32)
    app = DemoApp(_Stalling(), rt, lambda name: FeaturesMode(rt),
                  DemoOptions(headless=True, save_frames=str(tmp_path), stall_timeout=0.2,
                              modes=("features",)))
    source = app.source
    try:
        with pytest.raises(StreamDropped, match="stalled"):
            app.run()
    finally:
        source.release.set()
    assert app.frames == 1 and (tmp_path / "frame_00000.png").is_file()


@needs_cv2
def test_track_starts_on_the_sample_clips_object(tmp_path):
    from pe_dense.demo.app import DemoApp, DemoOptions
    from pe_dense.demo.build import ModelOptions, build_runtime, mode_factory

    opts = ModelOptions(model="PE-Test", resolution=64)
    runtime, task = build_runtime(opts)
    source = SampleClipSource(num_frames=3, height=96, width=128)
    app = DemoApp(source, runtime, mode_factory(runtime, opts, task),
                  DemoOptions(mode="track", headless=True, save_frames=str(tmp_path)))
    assert app.run() == 3
    assert app.mode._origin == "the clip's object"
    x0, y0, x1, y1 = source.object_box(0)
    frame = source.clip.frame(0)
    car = (frame[y0:y1, x0:x1] == (40, 70, 200)).all(-1)
    assert car.mean() > 0.3  # the box holds the car's body


@needs_cv2
@pytest.mark.parametrize("mode", ["features", "det"])
def test_bf16_autocast_path(mode, tmp_path, capsys):
    """The GPU precision path (autocast bf16) exercised on the CPU."""
    needs_task_model(mode)
    assert main(["demo", "--source", "sample", "--sample-frames", "1", "--mode", mode,
                 "--precision", "bf16", "--headless", "--save-frames", str(tmp_path), *FAST]) == 0
    assert "cpu bf16" in capsys.readouterr().out
    assert (tmp_path / "frame_00000.png").is_file()


@needs_cv2
def test_stream_url_reads_then_drops(clip_video):
    """A video served over HTTP plays as a live stream; when it ends the stream 'drops'."""
    import functools
    import http.server

    from pe_dense.demo.sources import StreamSource

    path = clip_video[0]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(path.parent))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        src = open_source(f"http://127.0.0.1:{server.server_address[1]}/{path.name}")
        assert isinstance(src, StreamSource) and src.live
        src.retries, src.retry_wait = 2, 0.01
        frames = []
        with pytest.raises(StreamDropped, match="stopped delivering frames after 6"):
            while True:
                frames.append(src.read())
        assert len(frames) == 6 and frames[0].shape == (96, 128, 3)
        src.close()
        with pytest.raises(SourceNotFound, match="cannot open stream"):
            open_source(f"http://127.0.0.1:{server.server_address[1]}/missing.avi")
    finally:
        server.shutdown()
        server.server_close()
