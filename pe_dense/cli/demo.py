"""Live demo: PE-Spatial features, depth, segmentation, detections or tracking on a camera,
video, folder of frames, stream URL or the built-in sample clip.

Keys: 1-6 (or f d s e t x) switch mode: features, depth, seg, det, track, text (text needs
--prompts); m next mode, space pause, c snapshot, r reset (refit PCA / re-pick the object), h hide
the HUD, q or Esc quit; drag a box to track an object. Frames of any size are resized to the
network input: --resolution short side, the long side capped at a detector's square size.
A bad frame in a folder is skipped with a warning.
Headless (servers, tests): --headless --output out.mp4 and/or --save-frames DIR.
In a browser (remote servers, notebooks, Spaces): --web [--port N] [--host H] serves a page with
every mode on uploaded images and clips and the browser's webcam; --from hf://owner/repo (or a
folder from pe-dense push) runs a shared trained model.
Exit codes: 0 done (end of video or quit), 2 bad arguments (or --port in use), 3 source not
found, 4 source unreadable, 5 stream dropped, 6 no display, 7 checkpoint/config mismatch or mode
unavailable.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from pe_dense.cli.runtime_opts import add_runtime_arguments

log = logging.getLogger(__name__)

def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pe_dense.demo.keys import all_modes


    parser.add_argument("--source", help="camera index (0), video file, folder of frames, image, "
                        "stream URL, or 'sample'; default: camera 0, else the built-in clip")
    parser.add_argument("--mode", default="features", choices=all_modes(),
                        help="the first mode (a registered task adds its own)")
    parser.add_argument("--model", default="PE-Spatial-T16-512",
                        help="PE variant name or timm/<model name> (default %(default)s)")
    parser.add_argument("--weights", help="backbone checkpoint (path or hf://facebook/NAME)")
    parser.add_argument("--config", help="trained task config (with --checkpoint)")
    parser.add_argument("--checkpoint", help="trained task checkpoint (with --config)")
    parser.add_argument("--resolution", type=int, default=512,
                        help="network input short side in pixels (default 512; a trained "
                        "detector's square size caps the long side)")
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                        help="auto: bf16 on GPUs that support it, fp32 on CPU")
    parser.add_argument("--layer", type=int, default=-1, help="block for features/track modes")
    parser.add_argument("--pca-frames", type=int, default=4, help="frames the PCA is fitted on")
    parser.add_argument("--score-thresh", type=float, default=0.5, help="det mode threshold")
    parser.add_argument("--track-box", help="x0,y0,x1,y1 pixels of the object to track")
    parser.add_argument("--prompts", help="text mode: comma-separated prompts, e.g. 'sky,road,car' "
                        "(PE-Core --model, or any backbone with --bridge)")
    parser.add_argument("--bridge", help="text mode: a text bridge file (pe-dense train "
                        "configs/open_vocab/..., work_dir/bridge.pth) for PE-Spatial models")
    parser.add_argument("--headless", action="store_true", help="no window: write files")
    parser.add_argument("--output", help="annotated video file (.mp4, .avi)")
    parser.add_argument("--output-fps", type=float, help="frame rate written to --output "
                        "(default: the video's, 10 for cameras and streams)")
    parser.add_argument("--save-frames", metavar="DIR", help="annotated frames as PNGs")
    parser.add_argument("--snapshot-dir", default="outputs/snapshots", help="for the c key")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after N frames")
    parser.add_argument("--cycle-every", type=int, default=0, metavar="N",
                        help="switch to the next mode every N frames (a tour of all modes)")
    parser.add_argument("--sample-frames", type=int, default=32,
                        help="length of the built-in sample clip")
    parser.add_argument("--no-hud", action="store_true", help="hide the heads-up display")
    _add_web_arguments(parser)
    add_runtime_arguments(parser, "a variant exported with --layers including --layer and "
                          "--dynamic (features/track modes), or a task config exported with "
                          "--dynamic, run with that --config --checkpoint")


def _add_web_arguments(parser: argparse.ArgumentParser) -> None:
    """--from (a shared model) and the browser demo's options."""
    parser.add_argument("--from", dest="pretrained", metavar="REPO",
                        help="a shared trained model instead of --config/--checkpoint: "
                        "hf://owner/repo or a folder with config.py + model.safetensors")
    web = parser.add_argument_group("browser demo")
    web.add_argument("--web", action="store_true", help="serve the demo as a web page "
                     "(Gradio: pip install 'pe-dense[web]') instead of opening a window")
    web.add_argument("--port", type=int, help="--web: port (default 7860, or the next free "
                     "one; 0: any free port)")
    web.add_argument("--host", default="127.0.0.1", help="--web: address to listen on "
                     "(0.0.0.0 for other machines; default %(default)s)")
    web.add_argument("--max-upload-mb", type=float, default=50.0,
                     help="--web: largest upload accepted (default %(default)s)")
    web.add_argument("--max-video-frames", type=int, default=150,
                     help="--web: frames of an uploaded clip that are annotated "
                     "(default %(default)s)")


def _parse_box(text: str | None) -> tuple[int, int, int, int] | None:
    if not text:
        return None
    try:
        x0, y0, x1, y1 = (int(v) for v in text.split(","))
    except ValueError as exc:
        raise ValueError(f"--track-box {text}: expected x0,y0,x1,y1 in pixels") from exc
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"--track-box {text}: need x1 > x0 and y1 > y0")
    return x0, y0, x1, y1


def _model_options(args: argparse.Namespace):
    """The demo's :class:`~pe_dense.demo.build.ModelOptions` from the parsed arguments."""
    from pe_dense.demo.build import ModelOptions

    if args.onnx and args.runtime == "torch":
        raise ValueError("--onnx runs with --runtime onnxruntime; add it (or drop --onnx)")
    prompts = tuple(p.strip() for p in (args.prompts or "").split(",") if p.strip())
    if args.mode == "text" and not prompts:
        raise ValueError("--mode text needs --prompts, e.g. --prompts 'sky,road,car'")
    return ModelOptions(
        model=args.model, weights=args.weights, config=args.config,
        checkpoint=args.checkpoint, resolution=args.resolution, device=args.device,
        precision=args.precision, layer=args.layer, pca_frames=args.pca_frames,
        track_box=_parse_box(args.track_box), score_thresh=args.score_thresh,
        runtime=args.runtime, onnx=args.onnx, prompts=prompts, bridge=args.bridge)


def _demo_options(args: argparse.Namespace):
    """The loop's :class:`~pe_dense.demo.app.DemoOptions`; the text mode joins the mode tour
    (``m``, ``--cycle-every``) only when there are prompts."""
    from pe_dense.demo.app import DemoOptions
    from pe_dense.demo.keys import all_modes, tour_modes

    modes = all_modes() if args.prompts else tour_modes()
    return DemoOptions(
        mode=args.mode, headless=args.headless, output=args.output,
        save_frames=args.save_frames, snapshot_dir=args.snapshot_dir,
        max_frames=args.max_frames, cycle_every=args.cycle_every, show_hud=not args.no_hud,
        output_fps=args.output_fps, modes=modes)


def _resolve_pretrained(args: argparse.Namespace):
    """``--from REPO``: the repository's config.py and model.safetensors become --config and
    --checkpoint; returns its :class:`~pe_dense.engine.hub.PretrainedFiles` (None without)."""
    if not args.pretrained:
        return None
    if args.config or args.checkpoint:
        raise ValueError("--from replaces --config/--checkpoint; pass one or the other")
    from pe_dense.engine.hub import resolve_pretrained

    files = resolve_pretrained(args.pretrained)
    args.config, args.checkpoint = str(files.config), str(files.weights)
    return files


def _from_repo(runtime, files) -> None:
    """``--from REPO``: the screen names the repository; a repository of untrained weights
    gets the banner on every output."""
    if files is None:
        return
    backbone = files.meta.get("backbone")
    runtime.model_name = f"{files.source}" + (f" ({backbone})" if backbone else "")
    if files.random_weights:
        runtime.weights_note = f"random weights ({files.source} says so: not a trained model)"


def run_web(args: argparse.Namespace) -> int:
    """``--web``: serve the page until Ctrl-C."""
    from pe_dense.demo.build import build_runtime
    from pe_dense.demo.keys import all_modes, tour_modes
    from pe_dense.demo.service import DemoService
    from pe_dense.demo.web import WebOptions, find_port, serve

    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own requests, one per line
    port = find_port(args.host, args.port)  # a taken --port fails before the model is built
    files = _resolve_pretrained(args)
    model_opts = _model_options(args)
    runtime, task = build_runtime(model_opts)
    _from_repo(runtime, files)
    modes = all_modes() if model_opts.prompts else tour_modes()
    if args.mode not in modes:
        raise ValueError(f"--mode {args.mode}: choose one of {', '.join(modes)}")
    modes = (args.mode, *(m for m in modes if m != args.mode))
    service = DemoService(runtime, model_opts, task, modes, max_upload_mb=args.max_upload_mb,
                          max_video_frames=args.max_video_frames)
    options = WebOptions(host=args.host, port=port, max_upload_mb=args.max_upload_mb,
                         max_video_frames=args.max_video_frames)
    page, url = serve(service, options)
    print(f"pe-dense demo: serving {runtime.model_name} on {url} (Ctrl-C stops)", flush=True)
    try:
        page.block_thread()
    finally:
        page.close()
    return 0


def run(args: argparse.Namespace) -> int:
    from pe_dense.cli.common import print_written
    from pe_dense.demo.app import DemoApp, summary_lines
    from pe_dense.demo.build import build_runtime, mode_factory
    from pe_dense.demo.errors import DemoError
    from pe_dense.demo.output import display_available
    from pe_dense.demo.sources import open_source

    try:
        if args.web:
            return run_web(args)
        files = _resolve_pretrained(args)
        if not args.headless and not display_available():
            from pe_dense.demo.errors import NoDisplay

            raise NoDisplay("no display available (DISPLAY/WAYLAND_DISPLAY unset): run with "
                            "--headless --output out.mp4 (or --save-frames DIR)")
        model_opts = _model_options(args)
        runtime, task = build_runtime(model_opts)
        _from_repo(runtime, files)
        source = open_source(args.source, sample_frames=args.sample_frames)
        options = _demo_options(args)
        app = DemoApp(source, runtime, mode_factory(runtime, model_opts, task), options)
        start, cpu_start, start_wall = time.perf_counter(), time.process_time(), time.time() - 1
        frames = app.run()
    except DemoError as exc:
        if getattr(args, "debug", False):
            raise
        from pe_dense.cli.common import error_lines

        print("\n".join(error_lines("demo", exc, getattr(args, "verbose", False))),
              file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("pe-dense demo: interrupted", file=sys.stderr)
        return 130
    cpu = time.process_time() - cpu_start
    # up to the last frame shown (a window may stay open on it at the end of a video)
    seconds = (app.output_times[1] if app.output_times else time.perf_counter()) - start
    print("\n".join(summary_lines(app, frames, seconds, cpu, [args.output, args.save_frames])))
    for target in (args.output, args.save_frames):
        print_written(target, start_wall)
    return 0
