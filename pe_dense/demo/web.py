"""The demo in a browser (``pe-dense demo --web``): a Gradio page over the demo's own modes.

The page offers every mode of the demo (features with a layer slider, depth, segmentation,
detections, tracking, and text prompts when the demo has them) on an uploaded image, an
uploaded clip (annotated frame by frame into a WebM the browser plays) or the browser's webcam
as a stream. The work is done by :class:`pe_dense.demo.service.DemoService`, which runs the
same mode classes as the OpenCV demo; every output made with random weights carries the
banner. Bad uploads (too large, not an image or video, undecodable) give a message in the page
and the server keeps serving. Gradio is imported only here, when the page is built.

Element ids the browser test relies on: ``mode``, ``layer``, ``prompts``, ``upload``,
``output``, ``video-output``, ``status``, ``webcam``, ``webcam-output``, ``webcam-status``.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pe_dense.demo.errors import DemoError
from pe_dense.demo.service import DemoService, ModeUnavailable, UploadError

__all__ = ["WebOptions", "PortInUse", "build_page", "serve", "find_port"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 7860


class PortInUse(DemoError, exit_code=2):
    """The port asked for with --port is taken."""


@dataclass
class WebOptions:
    """Where and how the page is served. ``port`` None: 7860, or the next free port when it
    is taken; an explicit port that is taken is a :class:`PortInUse` error."""

    host: str = "127.0.0.1"
    port: int | None = None
    max_upload_mb: float = 50.0
    max_video_frames: int = 150
    stream_every: float = 0.2  # seconds between webcam frames sent by the browser


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def find_port(host: str, port: int | None) -> int:
    """The port to serve on: ``port`` if free (0: any free one), else :class:`PortInUse`;
    None: 7860 or the next free one of the 100 after it."""
    if port == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            return int(s.getsockname()[1])
    if port is not None:
        if not _port_free(host, port):
            raise PortInUse(f"port {port} on {host} is in use (another demo or server?): pass "
                            "another --port N, or --port 0 for any free one")
        return port
    for candidate in range(DEFAULT_PORT, DEFAULT_PORT + 100):
        if _port_free(host, candidate):
            if candidate != DEFAULT_PORT:
                log.warning("port %d is in use; serving on %d", DEFAULT_PORT, candidate)
            return candidate
    raise PortInUse(f"ports {DEFAULT_PORT}-{DEFAULT_PORT + 99} on {host} are all in use: pass "
                    "--port N (0 for any free one)")


def _header(service: DemoService) -> str:
    rt = service.runtime
    lines = [f"## pe-dense demo: {rt.model_name}",
             f"{rt.device.type} {rt.precision}, network input short side {rt.resolution} px. "
             "Upload an image or a clip (or use the webcam tab), then pick a mode."]
    if rt.random_weights:
        lines.append(f"**Random weights**: {rt.weights_note}. Every output carries a red "
                     "banner.")
    return "\n\n".join(lines)


def _message(exc: BaseException) -> str:
    return f"**Cannot show this:** {exc}"


class _Handlers:
    """The page's event handlers around the service (outputs as Gradio values/updates)."""

    def __init__(self, service: DemoService, out_dir: Path) -> None:
        self.service, self.out_dir = service, out_dir
        self.last_size: tuple[int, int] | None = None  # (H, W) of the last upload output

    def upload(self, path: str | None, mode: str, layer: float, prompts: str
               ) -> Iterator[tuple[Any, Any, str]]:
        """Uploaded file -> (output image, output video, status Markdown); a clip yields
        each annotated frame as it is made, then the WebM."""
        import gradio as gr

        no_video = gr.update(value=None, visible=False)
        if not path:
            yield None, no_video, "Upload an image or a video clip."
            return
        try:
            self.service.set_prompts(prompts)
            kind, image = self.service.check_upload(path)
            if kind == "image":
                out = self.service.run_image(image, mode, int(layer))
                self.last_size = out.image.shape[:2]
                yield out.image, no_video, out.markdown()
                return
            for out, count, video in self.service.run_clip(path, mode, self.out_dir,
                                                           int(layer)):
                self.last_size = out.image.shape[:2]
                if video is None:
                    yield out.image, gr.update(), f"frame {count}: {out.status}"
                else:
                    yield out.image, gr.update(value=str(video), visible=True), \
                        f"{count} frames annotated\n\n{out.markdown()}"
        except (UploadError, ModeUnavailable) as exc:
            gr.Warning(str(exc))
            yield None, no_video, _message(exc)
        except Exception as exc:  # keep serving: say what failed, log the traceback
            log.exception("processing %s failed", path)
            gr.Warning(f"{type(exc).__name__}: {exc}")
            yield None, no_video, _message(f"{type(exc).__name__}: {exc}")

    def new_upload(self, path: str | None, mode: str, layer: float, prompts: str
                   ) -> Iterator[tuple[Any, Any, str]]:
        """A new file: forget the object picked on the previous one, then :meth:`upload`."""
        self.service.track_box = None
        yield from self.upload(path, mode, layer, prompts)

    def pick(self, path: str | None, mode: str, layer: float, prompts: str,
             evt: Any) -> Iterator[tuple[Any, Any, str]]:
        """A click at ``evt.index`` (x, y pixels) on the output: in track mode, follow the
        object under it (the upload runs again from its first frame); other modes ignore it."""
        import gradio as gr

        index = getattr(evt, "index", None)
        if mode != "track" or not path or not index or self.last_size is None:
            yield gr.update(), gr.update(), gr.update()
            return
        self.service.pick(index[0], index[1], self.last_size)
        yield from self.upload(path, mode, layer, prompts)

    def frame(self, image: Any, mode: str, layer: float, prompts: str) -> tuple[Any, str]:
        """One webcam frame -> (output image, status); state is kept across frames."""
        if image is None:
            return None, "Start the webcam (allow the browser to use it)."
        try:
            self.service.set_prompts(prompts)
            out = self.service.run_image(image, mode, int(layer), fresh=False)
        except ModeUnavailable as exc:
            return None, _message(exc)
        except Exception as exc:  # keep streaming: say what failed, log the traceback
            log.exception("webcam frame failed")
            return None, _message(f"{type(exc).__name__}: {exc}")
        return out.image, out.markdown()


def _controls(service: DemoService) -> tuple[Any, Any, Any]:
    """The mode radio, the features layer slider and the prompts box (inside a Blocks)."""
    import gradio as gr

    depth = service.depth
    with gr.Row():
        mode = gr.Radio(list(service.modes), value=service.modes[0], label="Mode",
                        info="track: click an object in the output to follow it",
                        elem_id="mode", scale=3)
        layer = gr.Slider(0, max(0, (depth or 1) - 1), step=1,
                          value=(service.opts.layer % depth) if depth else 0,
                          label="Features layer (0-based block)", elem_id="layer",
                          visible=bool(depth), scale=2)
        prompts = gr.Textbox(", ".join(service.opts.prompts),
                             label="Text prompts (comma-separated; Enter applies)",
                             elem_id="prompts", visible="text" in service.modes, scale=2)
    return mode, layer, prompts


def _tabs(options: WebOptions) -> dict[str, Any]:
    """The Upload and Webcam tabs (inside a Blocks); their components by name."""
    import gradio as gr

    c: dict[str, Any] = {}
    with gr.Tabs():
        with gr.Tab("Upload"):
            with gr.Row():
                c["upload"] = gr.File(label=f"Image or video (up to {options.max_upload_mb:g} "
                                      "MB)", file_types=["image", "video"], elem_id="upload")
                c["output"] = gr.Image(label="Output", format="png", interactive=False,
                                       elem_id="output")
            c["video"] = gr.Video(label="Annotated clip", visible=False, interactive=False,
                                  height=360, elem_id="video-output")
            c["status"] = gr.Markdown("Upload an image or a video clip.", elem_id="status")
        with gr.Tab("Webcam"):
            with gr.Row():
                c["cam"] = gr.Image(sources=["webcam"], streaming=True, label="Webcam",
                                    elem_id="webcam")
                c["cam_out"] = gr.Image(label="Output", format="jpeg", interactive=False,
                                        elem_id="webcam-output")
            c["cam_status"] = gr.Markdown(elem_id="webcam-status")
    return c


def build_page(service: DemoService, options: WebOptions, out_dir: str | os.PathLike) -> Any:
    """The Gradio ``Blocks`` page over ``service`` (not launched)."""
    import gradio as gr

    handlers = _Handlers(service, Path(out_dir))
    with gr.Blocks(title="pe-dense demo", analytics_enabled=False) as page:
        gr.Markdown(_header(service), elem_id="header")
        mode, layer, prompts = _controls(service)
        c = _tabs(options)
        run = {"fn": handlers.upload, "inputs": [c["upload"], mode, layer, prompts],
               "outputs": [c["output"], c["video"], c["status"]],
               "concurrency_id": "model", "concurrency_limit": 1}
        c["upload"].change(**{**run, "fn": handlers.new_upload})

        def on_select(path: Any, mode_name: Any, layer_value: Any, text: Any, evt: Any
                      ) -> Iterator[tuple[Any, Any, str]]:
            yield from handlers.pick(path, mode_name, layer_value, text, evt)

        on_select.__annotations__ = {"evt": gr.SelectData}  # how Gradio passes the click
        c["output"].select(**{**run, "fn": on_select})
        mode.change(**run)
        layer.release(**run)
        prompts.submit(**run)
        c["cam"].stream(handlers.frame, [c["cam"], mode, layer, prompts],
                        [c["cam_out"], c["cam_status"]], stream_every=options.stream_every,
                        concurrency_id="model", concurrency_limit=1, show_progress="hidden")
    return page


def serve(service: DemoService, options: WebOptions) -> tuple[Any, str]:
    """Build the page and serve it on ``options.host``:port in a thread; returns (page, URL).
    ``page.block_thread()`` waits until Ctrl-C, ``page.close()`` stops the server."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home, offline too
    try:
        import gradio  # noqa: F401
    except ImportError as exc:
        raise ImportError("the browser demo needs Gradio: pip install 'pe-dense[web]'") from exc
    port = find_port(options.host, options.port)
    out_dir = Path(tempfile.mkdtemp(prefix="pe-dense-web-"))
    page = build_page(service, options, out_dir)
    page.queue(default_concurrency_limit=1)
    _, url, _ = page.launch(
        server_name=options.host, server_port=port, prevent_thread_lock=True, quiet=True,
        show_error=True, ssr_mode=False, max_file_size=int(options.max_upload_mb * 1e6),
        allowed_paths=[str(out_dir)], footer_links=[])
    log.info("pe-dense demo serving on %s", url)
    return page, url
