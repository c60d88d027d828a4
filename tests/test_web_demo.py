"""The demo in a browser: the service behind the page (every mode on an image, the layer
slider, prompts, clips, upload checks, a port in use), and the page itself in headless Chromium
driven by Playwright (the system's /usr/bin/chromium; skipped when it or the driver is missing).

The browser test starts ``pe-dense demo --web`` with PE-Test, uploads an image, switches through
every mode, checks each output is a non-empty picture with the random-weights banner that
differs from the other modes', then a clip (track mode, WebM out, a click picks the object), the
webcam (Chromium's fake camera), bad uploads (not an image, corrupt, over the size limit: a
message in the page, and the server keeps serving). Screenshots are kept in
``outputs/test-artifacts/web_demo/`` (or $PE_DENSE_ARTIFACTS/web_demo), printed in the log.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

cv2 = pytest.importorskip("cv2")

from pe_dense.cli import main  # noqa: E402
from pe_dense.demo.build import ModelOptions, build_runtime  # noqa: E402
from pe_dense.demo.keys import all_modes  # noqa: E402
from pe_dense.demo.service import DemoService, UploadError  # noqa: E402
from pe_dense.demo.web import PortInUse, find_port  # noqa: E402
from pe_dense.viz.banner import has_banner  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ("red square", "sky")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--use-fake-device-for-media-stream",
                  "--use-fake-ui-for-media-stream"]


def _picture(h: int = 96, w: int = 128) -> np.ndarray:
    """A gradient with a red square: structure for the modes to differ on."""
    y, x = np.mgrid[0:h, 0:w]
    image = np.stack([x * 255 // w, y * 255 // h, (x + y) * 127 // (h + w)], -1).astype(np.uint8)
    image[h // 4: 3 * h // 4, w // 3: 2 * w // 3] = (220, 40, 40)
    return image


def _clip(path: Path, frames: int = 6) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5, (96, 64))
    for i in range(frames):
        frame = np.full((64, 96, 3), 40, np.uint8)
        frame[20:44, 10 + 6 * i: 34 + 6 * i] = (0, 200, 255)
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def service() -> DemoService:
    opts = ModelOptions(model="PE-Test", resolution=64, prompts=PROMPTS)
    runtime, task = build_runtime(opts)
    return DemoService(runtime, opts, task, all_modes(), max_upload_mb=0.05)


def test_every_mode_on_an_image(service):
    image = _picture()
    outputs = {}
    for mode in service.modes:
        out = service.run_image(image, mode)
        assert out.image.shape == image.shape and out.image.dtype == np.uint8
        assert out.random and has_banner(out.image), mode  # PE-Test: random weights
        assert out.status.startswith(f"**{mode}**") and "random weights" in out.markdown()
        outputs[mode] = out.image
    names = list(outputs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            diff = np.abs(outputs[a].astype(int) - outputs[b].astype(int)).mean()
            assert diff > 1.0, (a, b)
    # a still image is processed afresh: the same picture gives the same output
    assert np.array_equal(service.run_image(image, "depth").image, outputs["depth"])


def test_layer_slider_and_prompts(service):
    image = _picture()
    last = service.run_image(image, "features", layer=3).image
    first = service.run_image(image, "features", layer=0).image
    assert np.abs(last.astype(int) - first.astype(int)).mean() > 1.0
    service.set_prompts("sky, grass, red square")
    assert service.opts.prompts == ("sky", "grass", "red square")
    assert service.run_image(image, "text").image.shape == image.shape


def test_uploads_are_checked(service, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(_picture()).save(good)
    kind, image = service.check_upload(good)
    assert kind == "image" and image.shape == (96, 128, 3)
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(UploadError, match="notes.txt is not an image or a video"):
        service.check_upload(tmp_path / "notes.txt")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(UploadError, match="broken.png: .*upload a JPEG, PNG"):
        service.check_upload(tmp_path / "broken.png")
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(UploadError, match="cannot decode video broken.mp4"):
        service.check_upload(tmp_path / "broken.mp4")
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)).save(big)
    with pytest.raises(UploadError, match=r"big.png is 0.1 MB, over the 0.05 MB upload limit"):
        service.check_upload(big)


def test_clip_in_track_mode_and_a_picked_object(service, tmp_path):
    clip = _clip(tmp_path / "clip.mp4")
    runs = list(service.run_clip(clip, "track", tmp_path))
    *frames, (last, count, video) = runs
    assert count == 6 and len(frames) == 6 and video.suffix == ".webm"
    cap = cv2.VideoCapture(str(video))
    decoded = 0
    while cap.read()[0]:
        decoded += 1
    assert decoded == 6 and has_banner(last.image)
    assert any("frame centre" in n for n in last.notes)
    service.pick(20, 30, last.image.shape[:2])
    *_, (last, _, _) = service.run_clip(clip, "track", tmp_path)
    assert any("picked box" in n for n in last.notes)
    service.track_box = None
    # webcam frames of another size after the clip: the tracker starts over on them
    for _ in range(2):
        frame = service.run_image(_picture(120, 160), "track", fresh=False)
        assert frame.image.shape == (120, 160, 3)


def test_port_in_use(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse, match=f"port {port} on 127.0.0.1 is in use"):
            find_port("127.0.0.1", port)
        start = time.perf_counter()
        assert main(["demo", "--web", "--port", str(port), "--model", "PE-Test"]) == 2
        assert time.perf_counter() - start < 5  # before any model is built
    assert "--port 0 for any free one" in capsys.readouterr().err
    assert find_port("127.0.0.1", 0) > 0


# ----------------------------------------------------------------------------- the browser

def _browser_or_skip():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no system Chromium (apt-get install chromium chromium-driver)")
    pytest.importorskip("gradio")
    sync_api = pytest.importorskip("playwright.sync_api")
    return chromium, sync_api


def _artifacts() -> Path:
    base = Path(os.environ.get("PE_DENSE_ARTIFACTS", ROOT / "outputs" / "test-artifacts"))
    folder = base / "web_demo"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _start_server(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, str, float]:
    """``pe-dense demo --web`` on a free port; (process, URL, perf_counter() at its start)."""
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed with the process
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pe_dense.cli import main; sys.exit(main())",
         "demo", "--web", "--port", "0", "--model", "PE-Test", "--resolution", "64",
         "--prompts", ", ".join(PROMPTS), *extra],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 90
    while time.time() < deadline:
        text = (tmp_path / "server.log").read_text()
        found = re.search(r"serving .* on (http://\S+) ", text)
        if found:
            return proc, found.group(1), start
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"the web demo did not start:\n{(tmp_path / 'server.log').read_text()}")


def _png(page, selector: str) -> tuple[np.ndarray, str]:
    src = page.get_attribute(selector, "src")
    data = page.request.get(src).body()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), src


def _new_src(page, selector: str, previous: str | None, timeout: float = 60_000) -> None:
    """Wait for a new picture in ``selector``; a failure message in the page fails at once."""
    page.wait_for_function(
        "([sel, prev]) => { const i = document.querySelector(sel); "
        "const s = document.querySelector('#status').innerText; "
        "return (i && i.src && i.src !== prev) || s.includes('Cannot show this'); }",
        arg=[selector, previous], timeout=timeout)
    status = page.inner_text("#status")
    assert "Cannot show this" not in status, status


def _clear_upload(page) -> None:
    """Remove the uploaded file (a rejected upload leaves none: the file input is there)."""
    if not page.locator("#upload input[type=file]").count():
        page.click("#upload button[aria-label=Clear]")
    page.wait_for_selector("#upload input[type=file]", state="attached")


def _status_shows(page, text: str, selector: str = "#status") -> None:
    page.wait_for_function("([sel, t]) => document.querySelector(sel).innerText.includes(t)",
                           arg=[selector, text], timeout=30_000)


def test_the_page_in_a_browser(tmp_path, capsys):
    chromium, sync_api = _browser_or_skip()
    picture = tmp_path / "picture.png"
    Image.fromarray(_picture(120, 160)).save(picture)
    clip = _clip(tmp_path / "clip.mp4")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (400, 400, 3), np.uint8)).save(
        tmp_path / "large.png")  # about 0.5 MB, over the 0.3 MB limit below
    shots = _artifacts()
    steps: list[str] = []
    proc, url, start = _start_server(tmp_path, "--max-upload-mb", "0.3")
    last = [start]

    def mark(step: str) -> None:  # seconds per step, printed at the end
        now = time.perf_counter()
        steps.append(f"{step} {now - last[0]:.1f}")
        last[0] = now

    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900},
                                          permissions=["camera"])
            page = context.new_page()
            try:
                _session(page, url, tmp_path, picture, clip, shots, mark)
            except Exception:
                page.screenshot(path=str(shots / "failure.png"), full_page=True)
                raise
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        with capsys.disabled():
            print(f"\nweb demo (PE-Test): seconds per step: {', '.join(steps)}; "
                  f"screenshots in {shots}")


def _session(page, url: str, tmp_path: Path, picture: Path, clip: Path, shots: Path,
             mark) -> None:
    """The browser steps of :func:`test_the_page_in_a_browser`."""
    page.goto(url)
    page.wait_for_selector("#upload input[type=file]", state="attached")
    mark("page ready")  # since the command started
    # an image through every mode
    page.set_input_files("#upload input[type=file]", str(picture))
    _new_src(page, "#output img", None)
    outputs: dict[str, np.ndarray] = {}
    src = None
    modes = page.eval_on_selector_all("#mode input[type=radio]",
                                      "els => els.map(e => e.value)")
    assert modes == list(all_modes())
    for mode in [*modes[1:], modes[0]]:  # features (shown first) last
        page.click(f"#mode label[data-testid={mode}-radio-label]")
        _new_src(page, "#output img", src)
        _status_shows(page, mode)
        image, src = _png(page, "#output img")
        assert image.shape == (120, 160, 3) and image.std() > 5, mode
        assert has_banner(image), mode
        outputs[mode] = image
        page.screenshot(path=str(shots / f"mode_{mode}.png"))
        mark(mode)
    for i, a in enumerate(modes):
        for b in modes[i + 1:]:
            assert np.abs(outputs[a].astype(int) - outputs[b].astype(int)).mean() > 1, \
                (a, b)
    # the layer slider redraws the features
    page.fill("#layer input[type=number]", "0")
    page.press("#layer input[type=number]", "Enter")
    page.dispatch_event("#layer input[type=range]", "pointerup")
    _new_src(page, "#output img", src)
    layer0, src = _png(page, "#output img")
    assert np.abs(layer0.astype(int) - outputs["features"].astype(int)).mean() > 1
    mark("layer")
    # bad uploads: a message in the page, and the server keeps serving
    for name, message in (("notes.txt", "Invalid file type"),
                          ("large.png", "exceed the maximum allowed size"),
                          ("broken.png", "broken.png:")):
        _clear_upload(page)
        page.set_input_files("#upload input[type=file]", str(tmp_path / name))
        if name == "broken.png":
            _status_shows(page, message)
        else:
            page.wait_for_selector(f".toast-body:has-text('{message}')", timeout=30_000)
    page.screenshot(path=str(shots / "bad_upload.png"))
    mark("bad uploads")
    # a clip in track mode: a WebM the browser plays; a click picks the object
    _clear_upload(page)
    page.click("#mode label[data-testid=track-radio-label]")
    page.set_input_files("#upload input[type=file]", str(clip))
    page.wait_for_selector("#video-output video", timeout=60_000)
    _status_shows(page, "6 frames annotated")
    video = page.request.get(page.get_attribute("#video-output video", "src")).body()
    assert video[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a WebM file
    box = page.query_selector("#output img").bounding_box()
    src = page.get_attribute("#output img", "src")
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    _status_shows(page, "picked box")
    page.screenshot(path=str(shots / "clip_track.png"), full_page=True)
    mark("clip")
    # the webcam (Chromium's fake camera) as a stream
    page.click("button[role=tab]:has-text('Webcam')")
    page.click("#webcam button:has-text('Click to Access Webcam')")
    page.click("#webcam button:has-text('Record')")
    page.wait_for_selector("#webcam-output img", timeout=60_000)
    _status_shows(page, "track", "#webcam-status")
    page.screenshot(path=str(shots / "webcam.png"))
    mark("webcam")
