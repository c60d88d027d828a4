"""Benchmark the browser demo: how soon the page is ready, and each mode's latency on one frame.

1. **Page ready**: Chromium (the system's, driven by Playwright) is started first, as a user's
   browser already is; then ``pe-dense demo --web --model MODEL --resolution R`` is started and
   timed to three points: the server prints its URL, the URL answers HTTP 200, and the page has
   rendered its upload control in the browser (``#upload input``). The server's CPU seconds up
   to its URL are recorded too: on a busy machine they say what the wall time would be on an
   idle one.
2. **Per mode, through the page**: one frame (``--image``, resized to ``--height`` x width)
   is uploaded, and every mode is clicked in turn for ``--rounds`` rounds; the time from the
   click to the new output picture in the page (request, inference, PNG encoding, transfer,
   display) is recorded: the first round includes building the mode (its random heads), the
   median of the other rounds is the steady latency.
3. **Per mode, in process**: :class:`pe_dense.demo.service.DemoService` ``run_image`` on the
   same frame (inference and drawing, no web), median of ``--rounds`` - 1 runs after a first,
   with the demo's stage timings of the last run.

Prints a Markdown table (for docs/benchmarks.md) and writes ``--json``. The load average is
recorded before and after: on a shared machine the figures are upper bounds.

    OMP_NUM_THREADS=1 .venv/bin/python tools/bench_web_demo.py --json outputs/bench_web.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _frame(path: Path | None, height: int) -> np.ndarray:
    """(height, W, 3) uint8: ``path`` resized to ``height`` rows (a gradient without it)."""
    if path is not None and path.is_file():
        image = Image.open(path).convert("RGB")
        width = round(image.width * height / image.height)
        return np.asarray(image.resize((width, height), Image.BILINEAR))
    y, x = np.mgrid[0:height, 0:height * 4 // 3]
    return np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_for_url(proc: subprocess.Popen, log: Path, start: float
                  ) -> tuple[str, float, float]:
    """(URL, wall seconds, CPU seconds of the server) when the server prints its URL."""
    while proc.poll() is None:
        found = re.search(r"serving .* on (http://\S+) ", log.read_text())
        if found:
            return found.group(1), time.perf_counter() - start, _cpu_seconds(proc.pid)
        time.sleep(0.05)
    raise RuntimeError(f"the demo exited:\n{log.read_text()[-3000:]}")


def _http_ok(url: str, start: float) -> float:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.05)


def through_the_page(args: argparse.Namespace, frame_path: Path, out: Path) -> dict:
    from playwright.sync_api import sync_playwright

    result: dict = {}
    log = out / "server.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        start = time.perf_counter()
        with open(log, "w") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-c", "import sys; from pe_dense.cli import main; "
                 "sys.exit(main())", "demo", "--web", "--port", "0", "--model", args.model,
                 "--resolution", str(args.resolution)],
                cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            url, result["url_printed_s"], result["server_cpu_s"] = _wait_for_url(proc, log,
                                                                                 start)
            result["http_200_s"] = _http_ok(url, start)
            page.goto(url)
            page.wait_for_selector("#upload input[type=file]", state="attached")
            result["page_ready_s"] = time.perf_counter() - start
            page.set_input_files("#upload input[type=file]", str(frame_path))
            page.wait_for_selector("#output img")
            modes = page.eval_on_selector_all("#mode input[type=radio]",
                                              "els => els.map(e => e.value)")
            times: dict[str, list[float]] = {m: [] for m in modes}
            src = page.get_attribute("#output img", "src")
            for _ in range(args.rounds):
                for mode in [*modes[1:], modes[0]]:
                    t0 = time.perf_counter()
                    page.click(f"#mode label[data-testid={mode}-radio-label]")
                    page.wait_for_function(
                        "prev => { const i = document.querySelector('#output img'); "
                        "return i && i.src !== prev; }", arg=src, timeout=120_000)
                    times[mode].append(time.perf_counter() - t0)
                    src = page.get_attribute("#output img", "src")
            page.screenshot(path=str(out / "page.png"))
            result["page_modes_s"] = times
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            browser.close()
    return result


def in_process(args: argparse.Namespace, frame: np.ndarray) -> dict:
    from pe_dense.demo.build import ModelOptions, build_runtime
    from pe_dense.demo.keys import tour_modes
    from pe_dense.demo.service import DemoService

    opts = ModelOptions(model=args.model, resolution=args.resolution, device="cpu")
    runtime, task = build_runtime(opts)
    service = DemoService(runtime, opts, task, tour_modes())
    result = {}
    for mode in service.modes:
        times = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            service.run_image(frame, mode)
            times.append(time.perf_counter() - t0)
        result[mode] = {"first_s": times[0], "median_s": statistics.median(times[1:]),
                        "stages_ms": dict(service.timer.ms), "input": runtime.input_size}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="PE-Spatial-T16-512")
    parser.add_argument("--resolution", type=int, default=384)
    parser.add_argument("--height", type=int, default=384, help="frame height in pixels")
    parser.add_argument("--image", type=Path,
                        default=ROOT.parent / "shared" / "data" / "images" / "cars.jpg")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench-web-"))
    frame = _frame(args.image, args.height)
    frame_path = out / "frame.png"
    Image.fromarray(frame).save(frame_path)
    report = {"model": args.model, "resolution": args.resolution, "frame": list(frame.shape),
              "threads": os.environ.get("OMP_NUM_THREADS"), "load_before": os.getloadavg()}
    report["page"] = through_the_page(args, frame_path, out)
    report["service"] = in_process(args, frame)
    report["load_after"] = os.getloadavg()
    page, service = report["page"], report["service"]
    print(f"{args.model}, frame {frame.shape[1]}x{frame.shape[0]}, --resolution "
          f"{args.resolution}, OMP_NUM_THREADS={report['threads']}, load "
          f"{report['load_before'][0]:.1f} -> {report['load_after'][0]:.1f}")
    print(f"page: URL printed {page['url_printed_s']:.1f} s (server CPU time until then "
          f"{page['server_cpu_s']:.1f} s), HTTP 200 {page['http_200_s']:.1f} s, page ready "
          f"{page['page_ready_s']:.1f} s after the command started")
    print("\n| mode | network input | page, first (s) | page, steady (s) | in process, steady "
          "(ms) | stages (ms) |\n|---|---|---|---|---|---|")
    for mode, times in page["page_modes_s"].items():
        s = service.get(mode)
        stages = " ".join(f"{k} {v:.0f}" for k, v in s["stages_ms"].items()) if s else ""
        size = f"{s['input'][1]}x{s['input'][0]}" if s and s["input"] else ""
        steady = f"{1e3 * s['median_s']:.0f}" if s else ""
        print(f"| {mode} | {size} | {times[0]:.2f} | {statistics.median(times[1:]):.2f} | "
              f"{steady} | {stages} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=str))
    print(f"\nscreenshot: {out / 'page.png'}")


if __name__ == "__main__":
    main()
